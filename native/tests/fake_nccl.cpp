// A stand-in for libnccl with the documented semantics of the entry points libcae uses, summing
// HOST memory between the processes of one machine through a shared-memory segment named by the
// unique id, so that the NCCL path of the data-parallel step runs where there is no GPU: ranks
// given different ids never meet and time out. ncclFloat32 with ncclSum or ncclAvg only; ncclAvg
// multiplies every rank's values by 1/nranks before the sum, as NCCL does for floating point.
// Every rank adds the ranks' values in rank order, so all get the same bits.
// On the CUDA emulator's streams (a hook at the start of the stream object, see
// native/emu/runtime.cpp) the all-reduce is queued in stream order, reading and writing the buffer
// when the stream runs, as the device would.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>

namespace {

constexpr int kSuccess = 0, kSystemError = 2, kInvalidArgument = 4, kRemoteError = 6;
constexpr int kFloat32 = 7, kSum = 0, kAvg = 4;
constexpr size_t kChunk = size_t(1) << 18;  // floats per rank and round
constexpr auto kTimeout = std::chrono::seconds(120);

struct UniqueId {
    char internal[128];
};

struct Shared {
    std::atomic<int> arrived;
    std::atomic<int> generation;
    alignas(64) float slots[1];  // nranks x kChunk
};

struct Comm {
    int nranks = 0, rank = 0;
    std::string name;
    Shared* shared = nullptr;
    size_t bytes = 0;
    std::atomic<int> async_error{kSuccess};
    std::string last_error;
};

thread_local std::string g_last_error;

// Every rank of the communicator; false after kTimeout without the others.
bool barrier(Comm& c) {
    Shared& s = *c.shared;
    const int gen = s.generation.load();
    if (s.arrived.fetch_add(1) + 1 == c.nranks) {
        s.arrived.store(0);
        s.generation.fetch_add(1);
        return true;
    }
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (s.generation.load() == gen) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    return true;
}

struct AllReduce {
    Comm* comm;
    float* recv;
    const float* send;
    size_t count;
    bool average;
};

int run(const AllReduce& job) {
    Comm& c = *job.comm;
    const float scale = job.average ? 1.0f / static_cast<float>(c.nranks) : 1.0f;
    for (size_t done = 0; done < job.count; done += kChunk) {
        const size_t n = std::min(kChunk, job.count - done);
        float* mine = c.shared->slots + static_cast<size_t>(c.rank) * kChunk;
        for (size_t i = 0; i < n; ++i) mine[i] = job.send[done + i] * scale;
        if (!barrier(c)) return kRemoteError;
        for (size_t i = 0; i < n; ++i) {
            float sum = 0.0f;
            for (int r = 0; r < c.nranks; ++r) sum += c.shared->slots[static_cast<size_t>(r) * kChunk + i];
            job.recv[done + i] = sum;
        }
        if (!barrier(c)) return kRemoteError;  // nobody refills the slots before everyone read them
    }
    return kSuccess;
}

void run_queued(void* data) {
    const AllReduce& job = *static_cast<AllReduce*>(data);
    const int rc = run(job);
    if (rc != kSuccess) {
        job.comm->async_error.store(rc);
        std::fprintf(stderr, "fake NCCL: rank %d timed out waiting for the other ranks\n", job.comm->rank);
    }
}
void release_queued(void* data) { delete static_cast<AllReduce*>(data); }

// The start of a stream of the CUDA emulator (native/emu/runtime.cpp): a way to queue host work.
struct EmulatorStream {
    uint64_t magic;
    void (*enqueue_host)(void* stream, void (*fn)(void*), void* data, void (*release)(void*));
};
constexpr uint64_t kEmulatorStreamMagic = 0xcae0e3a1a7005eedull;

int fail(int rc, const std::string& why) {
    g_last_error = why;
    return rc;
}

}  // namespace

extern "C" {

int ncclGetVersion(int* version) {
    *version = 21805;
    return kSuccess;
}

const char* ncclGetErrorString(int rc) {
    switch (rc) {
        case kSuccess: return "no error";
        case kSystemError: return "unhandled system error";
        case kInvalidArgument: return "invalid argument";
        case kRemoteError: return "remote process exited or there was a network error";
        default: return "fake NCCL error";
    }
}

const char* ncclGetLastError(void* comm) {
    (void)comm;
    return g_last_error.c_str();
}

int ncclGetUniqueId(UniqueId* id) {
    std::memset(id, 0, sizeof(*id));
    std::random_device rd;
    std::snprintf(id->internal, sizeof(id->internal), "/cae-fake-nccl-%d-%08x%08x", static_cast<int>(getpid()), rd(),
                  rd());
    return kSuccess;
}

int ncclCommInitRank(void** out, int nranks, UniqueId id, int rank) {
    if (nranks < 1 || rank < 0 || rank >= nranks) return fail(kInvalidArgument, "rank or nranks out of range");
    if (std::strncmp(id.internal, "/cae-fake-nccl-", 15) != 0 || id.internal[127] != '\0')
        return fail(kInvalidArgument, "not a unique id of this library");
    auto* c = new Comm;
    c->nranks = nranks;
    c->rank = rank;
    c->name = id.internal;
    c->bytes = offsetof(Shared, slots) + static_cast<size_t>(nranks) * kChunk * sizeof(float);
    const int fd = shm_open(c->name.c_str(), O_CREAT | O_RDWR, 0600);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(c->bytes)) != 0) {
        if (fd >= 0) close(fd);
        delete c;
        return fail(kSystemError, "shm_open or ftruncate failed");
    }
    void* p = mmap(nullptr, c->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        delete c;
        return fail(kSystemError, "mmap failed");
    }
    c->shared = static_cast<Shared*>(p);
    if (!barrier(*c)) {
        munmap(p, c->bytes);
        delete c;
        return fail(kRemoteError, "the other ranks did not join");
    }
    if (rank == 0) shm_unlink(c->name.c_str());  // every rank has it mapped now
    *out = c;
    return kSuccess;
}

int ncclCommDestroy(void* comm) {
    auto* c = static_cast<Comm*>(comm);
    if (c == nullptr) return kInvalidArgument;
    munmap(c->shared, c->bytes);
    delete c;
    return kSuccess;
}

int ncclCommAbort(void* comm) { return ncclCommDestroy(comm); }

int ncclCommGetAsyncError(void* comm, int* error) {
    *error = static_cast<Comm*>(comm)->async_error.load();
    return kSuccess;
}

int ncclAllReduce(const void* send, void* recv, size_t count, int type, int op, void* comm, void* stream) {
    if (type != kFloat32) return fail(kInvalidArgument, "the fake supports ncclFloat32 only");
    if (op != kSum && op != kAvg) return fail(kInvalidArgument, "the fake supports ncclSum and ncclAvg only");
    AllReduce job{static_cast<Comm*>(comm), static_cast<float*>(recv), static_cast<const float*>(send), count,
                  op == kAvg};
    if (stream != nullptr) {
        EmulatorStream hook;
        std::memcpy(&hook, stream, sizeof(hook));
        if (hook.magic == kEmulatorStreamMagic) {
            hook.enqueue_host(stream, &run_queued, new AllReduce(job), &release_queued);
            return kSuccess;
        }
    }
    return run(job);
}

}  // extern "C"
