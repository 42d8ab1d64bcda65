// The MPI communicator: Open MPI opened with dlopen and called through its C ABI, declared here
// (handles are pointers to the library's predefined objects, found by dlsym). Errors on our
// communicator are returned (MPI_ERRORS_RETURN) and thrown as CAE_ERR_COMM with MPI's message.
#include <dlfcn.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "comm/comm.h"
#include "comm/library.h"
#include "common/error.h"

namespace cae {
namespace {

using Handle = void*;  // MPI_Comm, MPI_Datatype, MPI_Op, MPI_Info, MPI_Errhandler in Open MPI

constexpr int kThreadSerialized = 2;   // MPI_THREAD_SERIALIZED
constexpr int kCommTypeShared = 0;     // MPI_COMM_TYPE_SHARED
constexpr int kMaxString = 256;        // MPI_MAX_ERROR_STRING, MPI_MAX_LIBRARY_VERSION_STRING
void* const kInPlace = reinterpret_cast<void*>(1);  // MPI_IN_PLACE

struct MpiApi {
    void* lib = nullptr;
    std::string path;
    int (*Initialized)(int*) = nullptr;
    int (*Finalized)(int*) = nullptr;
    int (*Init_thread)(int*, char***, int, int*) = nullptr;
    int (*Finalize)() = nullptr;
    int (*Comm_dup)(Handle, Handle*) = nullptr;
    int (*Comm_free)(Handle*) = nullptr;
    int (*Comm_rank)(Handle, int*) = nullptr;
    int (*Comm_size)(Handle, int*) = nullptr;
    int (*Comm_split_type)(Handle, int, int, Handle, Handle*) = nullptr;
    int (*Comm_set_errhandler)(Handle, Handle) = nullptr;
    int (*Allreduce)(const void*, void*, int, Handle, Handle, Handle) = nullptr;
    int (*Bcast)(void*, int, Handle, int, Handle) = nullptr;
    int (*Barrier)(Handle) = nullptr;
    int (*Abort)(Handle, int) = nullptr;
    int (*Error_string)(int, char*, int*) = nullptr;
    int (*Get_library_version)(char*, int*) = nullptr;
    Handle comm_world = nullptr, info_null = nullptr, errors_return = nullptr;
    Handle type_float = nullptr, type_double = nullptr, type_byte = nullptr, op_sum = nullptr;
};

template <class F>
void bind(MpiApi& api, F& fn, const char* name) {
    fn = reinterpret_cast<F>(dlsym(api.lib, name));
    if (fn == nullptr) fail(CAE_ERR_UNSUPPORTED, "the MPI library ", api.path, " has no ", name);
}

Handle object(MpiApi& api, const char* name) {
    void* p = dlsym(api.lib, name);
    if (p == nullptr) fail(CAE_ERR_UNSUPPORTED, "the MPI library ", api.path, " has no ", name);
    return p;
}

// Opens the MPI library once per process: CAE_MPI_LIBRARY when set, else Open MPI's libmpi.so.40.
MpiApi& api() {
    static MpiApi a;
    static std::string error;
    static std::once_flag once;
    std::call_once(once, [] {
        // RTLD_GLOBAL: Open MPI's own plugins resolve symbols of libmpi and libopen-pal.
        OpenedLibrary opened = open_library("CAE_MPI_LIBRARY", {"libmpi.so.40", "libmpi.so"}, RTLD_NOW | RTLD_GLOBAL);
        a.lib = opened.handle;
        a.path = opened.path;
        const std::string& tried = opened.tried;
        if (a.lib == nullptr) {
            error = cat("no MPI library could be opened (", tried,
                        "); install Open MPI (Debian: openmpi-bin) or set CAE_MPI_LIBRARY to its libmpi.so");
            return;
        }
        try {
            if (dlsym(a.lib, "ompi_mpi_comm_world") == nullptr) {
                fail(CAE_ERR_UNSUPPORTED, "the MPI library ", a.path,
                     " is not Open MPI (no ompi_mpi_comm_world); only Open MPI is supported");
            }
            bind(a, a.Initialized, "MPI_Initialized");
            bind(a, a.Finalized, "MPI_Finalized");
            bind(a, a.Init_thread, "MPI_Init_thread");
            bind(a, a.Finalize, "MPI_Finalize");
            bind(a, a.Comm_dup, "MPI_Comm_dup");
            bind(a, a.Comm_free, "MPI_Comm_free");
            bind(a, a.Comm_rank, "MPI_Comm_rank");
            bind(a, a.Comm_size, "MPI_Comm_size");
            bind(a, a.Comm_split_type, "MPI_Comm_split_type");
            bind(a, a.Comm_set_errhandler, "MPI_Comm_set_errhandler");
            bind(a, a.Allreduce, "MPI_Allreduce");
            bind(a, a.Bcast, "MPI_Bcast");
            bind(a, a.Barrier, "MPI_Barrier");
            bind(a, a.Abort, "MPI_Abort");
            bind(a, a.Error_string, "MPI_Error_string");
            bind(a, a.Get_library_version, "MPI_Get_library_version");
            a.comm_world = object(a, "ompi_mpi_comm_world");
            a.info_null = object(a, "ompi_mpi_info_null");
            a.errors_return = object(a, "ompi_mpi_errors_return");
            a.type_float = object(a, "ompi_mpi_float");
            a.type_double = object(a, "ompi_mpi_double");
            a.type_byte = object(a, "ompi_mpi_byte");
            a.op_sum = object(a, "ompi_mpi_op_sum");
        } catch (const Error& e) {
            error = e.what();
            a.Init_thread = nullptr;
        }
    });
    if (!error.empty()) fail(CAE_ERR_UNSUPPORTED, error);
    return a;
}

void check(int rc, const char* what) {
    if (rc == 0) return;  // MPI_SUCCESS
    char text[kMaxString] = {0};
    int len = 0;
    std::string message = api().Error_string(rc, text, &len) == 0 ? std::string(text, static_cast<size_t>(len))
                                                                    : cat("error code ", rc);
    fail(CAE_ERR_COMM, what, " failed: ", message);
}

// MPI initialized here is finalized at process exit, after every communicator is gone (a job
// whose processes exit without MPI_Finalize is reported as failed by mpirun).
std::mutex g_mutex;

void finalize_at_exit() {
    int finalized = 1;
    if (api().Finalized(&finalized) == 0 && !finalized) api().Finalize();
}

class MpiCommunicator final : public Communicator {
public:
    explicit MpiCommunicator(const void* user_comm) {
        MpiApi& a = api();
        std::lock_guard<std::mutex> lock(g_mutex);
        int initialized = 0, finalized = 0;
        check(a.Initialized(&initialized), "MPI_Initialized");
        check(a.Finalized(&finalized), "MPI_Finalized");
        if (finalized) fail(CAE_ERR_COMM, "MPI was already finalized in this process: it cannot start again");
        if (!initialized) {
            CAE_REQUIRE(user_comm == nullptr, "an MPI communicator was passed but MPI is not initialized");
            // Open MPI's stack-trace handlers would replace the JVM's own SIGSEGV/SIGBUS handling.
            setenv("OMPI_MCA_opal_signal", "", 0);
            int provided = 0;
            check(a.Init_thread(nullptr, nullptr, kThreadSerialized, &provided), "MPI_Init_thread");
            std::atexit(finalize_at_exit);
        }
        Handle base = user_comm != nullptr ? *static_cast<const Handle*>(user_comm) : a.comm_world;
        check(a.Comm_dup(base, &comm_), "MPI_Comm_dup");
        check(a.Comm_set_errhandler(comm_, a.errors_return), "MPI_Comm_set_errhandler");
        check(a.Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        check(a.Comm_size(comm_, &size_), "MPI_Comm_size");
        Handle local = nullptr;
        check(a.Comm_split_type(comm_, kCommTypeShared, rank_, a.info_null, &local), "MPI_Comm_split_type");
        check(a.Comm_rank(local, &local_rank_), "MPI_Comm_rank (local)");
        check(a.Comm_size(local, &local_size_), "MPI_Comm_size (local)");
        check(a.Comm_free(&local), "MPI_Comm_free");
        char version[kMaxString] = {0};
        int len = 0;
        if (a.Get_library_version(version, &len) == 0) {
            library_.assign(version, static_cast<size_t>(len));
            size_t eol = library_.find_first_of(",\n");
            if (eol != std::string::npos) library_.resize(eol);
        } else {
            library_ = "MPI";
        }
    }

    ~MpiCommunicator() override {
        std::lock_guard<std::mutex> lock(g_mutex);
        int finalized = 1;
        if (api().Finalized(&finalized) == 0 && !finalized) api().Comm_free(&comm_);
    }

    int rank() const override { return rank_; }
    int size() const override { return size_; }
    int local_rank() const override { return local_rank_; }
    int local_size() const override { return local_size_; }
    std::string library() const override { return library_; }

    void allreduce_sum(float* data, int64_t count) override { allreduce(data, count, api().type_float, 4); }
    void allreduce_sum(double* data, int64_t count) override { allreduce(data, count, api().type_double, 8); }

    void broadcast(void* data, int64_t bytes, int root) override {
        CAE_REQUIRE(root >= 0 && root < size_, "root is ", root, ", the communicator has ", size_, " ranks");
        char* p = static_cast<char*>(data);
        for (int64_t done = 0; done < bytes;) {
            const int n = static_cast<int>(std::min<int64_t>(bytes - done, INT_MAX));
            check(api().Bcast(p + done, n, api().type_byte, root, comm_), "MPI_Bcast");
            done += n;
        }
    }

    void barrier() override { check(api().Barrier(comm_), "MPI_Barrier"); }

    void abort(int code) override { api().Abort(comm_, code); }

private:
    void allreduce(void* data, int64_t count, Handle type, int64_t elem) {
        char* p = static_cast<char*>(data);
        for (int64_t done = 0; done < count;) {
            const int n = static_cast<int>(std::min<int64_t>(count - done, int64_t(1) << 30));
            check(api().Allreduce(kInPlace, p + done * elem, n, type, api().op_sum, comm_), "MPI_Allreduce");
            done += n;
        }
    }

    Handle comm_ = nullptr;
    int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
    std::string library_;
};

int env_int(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return -1;
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    return end != nullptr && *end == '\0' && n > 0 && n < INT_MAX ? static_cast<int>(n) : -1;
}

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const void* mpi_comm) {
    return std::make_unique<MpiCommunicator>(mpi_comm);
}

bool launched_by_mpi() {
    // Open MPI's mpirun, then PMI launchers (srun, hydra), then a Slurm job step.
    for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"}) {
        int n = env_int(name);
        if (n > 0) return n > 1;
    }
    return false;
}

}  // namespace cae
