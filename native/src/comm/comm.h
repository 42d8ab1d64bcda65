// Communicators: what a data-parallel step needs from the processes of a job (rank, size,
// sum of host buffers, broadcast, barrier, abort). One process alone is a communicator of size
// 1; MPI is opened at run time (dlopen), so libcae loads and runs where no MPI is installed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace cae {

class Communicator {
public:
    virtual ~Communicator() = default;

    virtual int rank() const = 0;
    virtual int size() const = 0;
    // Rank and size among the processes of this machine (for choosing a GPU).
    virtual int local_rank() const = 0;
    virtual int local_size() const = 0;
    // "single", or the MPI library's version line.
    virtual std::string library() const = 0;

    // In place, on host memory: data[i] = sum over ranks of data[i]. Collective: every rank calls
    // it with the same count, in the same order as every other collective.
    virtual void allreduce_sum(float* data, int64_t count) = 0;
    virtual void allreduce_sum(double* data, int64_t count) = 0;
    // data (bytes on host memory) of `root` copied to every rank.
    virtual void broadcast(void* data, int64_t bytes, int root) = 0;
    virtual void barrier() = 0;
    // Ends every process of the job with `code` (MPI_Abort); returns only when size() is 1.
    virtual void abort(int code) = 0;
};

// Sums of device buffers between the ranks' devices (NCCL), queued in the order of the stream it
// was made for. Every rank calls it with the same count, in the same order.
class DeviceCommunicator {
public:
    virtual ~DeviceCommunicator() = default;
    // "NCCL 2.21.5"
    virtual std::string library() const = 0;
    // In place, on device memory: data[i] = the mean over ranks of data[i].
    virtual void allreduce_mean(float* data, int64_t count) = 0;
};

// A communicator of one process.
std::unique_ptr<Communicator> make_single_communicator();

// MPI's world (a duplicate of MPI_COMM_WORLD), MPI initialized here when the caller has not
// (and then finalized at process exit). `mpi_comm` (optional)
// points to an MPI_Comm of the caller's to duplicate instead of the world. Throws
// CAE_ERR_UNSUPPORTED when no usable MPI library can be opened.
std::unique_ptr<Communicator> make_mpi_communicator(const void* mpi_comm);

// NCCL (the library at CAE_NCCL_LIBRARY, else libnccl.so.2) between the devices of `host`'s ranks,
// working on `stream` (a cudaStream_t of the calling thread's current device); its unique id is
// broadcast over `host`. Collective over `host`. When some rank cannot open a usable NCCL, every
// rank gets nullptr and `why_not` says which ranks and why; a failure to connect throws CAE_ERR_COMM.
std::unique_ptr<DeviceCommunicator> make_nccl_communicator(Communicator& host, void* stream, std::string* why_not);

// Whether the environment says this process was started by an MPI launcher (mpirun, srun) in a
// job of more than one process.
bool launched_by_mpi();

}  // namespace cae
