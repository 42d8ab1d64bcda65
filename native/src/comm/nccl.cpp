// The device communicator: NCCL opened with dlopen and called through its C API, declared here
// (ncclComm_t and cudaStream_t are pointers; ncclUniqueId is 128 bytes passed by value). The
// unique id goes from rank 0 to the others over the host communicator.
#include <dlfcn.h>

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "comm/comm.h"
#include "comm/library.h"
#include "common/error.h"

namespace cae {
namespace {

struct NcclUniqueId {
    char internal[128];
};
using NcclComm = void*;

constexpr int kSuccess = 0;      // ncclSuccess
constexpr int kInProgress = 7;   // ncclInProgress
constexpr int kFloat32 = 7;      // ncclFloat32
constexpr int kAvg = 4;          // ncclAvg (NCCL 2.10 and later)
constexpr int kFirstWithAvg = 21000;

struct NcclApi {
    void* lib = nullptr;
    std::string path;
    int version = 0;
    int (*GetVersion)(int*) = nullptr;
    int (*GetUniqueId)(NcclUniqueId*) = nullptr;
    int (*CommInitRank)(NcclComm*, int, NcclUniqueId, int) = nullptr;
    int (*CommDestroy)(NcclComm) = nullptr;
    int (*CommAbort)(NcclComm) = nullptr;
    int (*CommGetAsyncError)(NcclComm, int*) = nullptr;
    int (*AllReduce)(const void*, void*, size_t, int, int, NcclComm, void*) = nullptr;
    const char* (*GetErrorString)(int) = nullptr;
    const char* (*GetLastError)(NcclComm) = nullptr;  // NCCL 2.13 and later; may be absent
};

template <class F>
bool bind(NcclApi& api, F& fn, const char* name, std::string* error) {
    fn = reinterpret_cast<F>(dlsym(api.lib, name));
    if (fn == nullptr && error->empty()) *error = cat("the NCCL library ", api.path, " has no ", name);
    return fn != nullptr;
}

// Opens NCCL once per process; on failure, the reason.
const NcclApi& api(std::string* error) {
    static NcclApi a;
    static std::string failure;
    static std::once_flag once;
    std::call_once(once, [] {
        OpenedLibrary opened = open_library("CAE_NCCL_LIBRARY", {"libnccl.so.2", "libnccl.so"}, RTLD_NOW | RTLD_LOCAL);
        a.lib = opened.handle;
        a.path = opened.path;
        const std::string& tried = opened.tried;
        if (a.lib == nullptr) {
            failure = cat("no NCCL library could be opened (", tried,
                          "); install NCCL (a CUDA install's libnccl.so.2, or the nvidia-nccl wheel) or set "
                          "CAE_NCCL_LIBRARY to its path");
            return;
        }
        bool ok = bind(a, a.GetVersion, "ncclGetVersion", &failure) &&
                  bind(a, a.GetUniqueId, "ncclGetUniqueId", &failure) &&
                  bind(a, a.CommInitRank, "ncclCommInitRank", &failure) &&
                  bind(a, a.CommDestroy, "ncclCommDestroy", &failure) &&
                  bind(a, a.CommAbort, "ncclCommAbort", &failure) &&
                  bind(a, a.CommGetAsyncError, "ncclCommGetAsyncError", &failure) &&
                  bind(a, a.AllReduce, "ncclAllReduce", &failure) &&
                  bind(a, a.GetErrorString, "ncclGetErrorString", &failure);
        if (!ok) return;
        a.GetLastError = reinterpret_cast<const char* (*)(NcclComm)>(dlsym(a.lib, "ncclGetLastError"));
        if (a.GetVersion(&a.version) != kSuccess) {
            failure = cat("ncclGetVersion of ", a.path, " failed");
        } else if (a.version < kFirstWithAvg) {
            failure = cat("the NCCL library ", a.path, " is version code ", a.version,
                          "; 2.10 or later is needed (ncclAvg)");
        }
    });
    *error = failure;
    return a;
}

std::string version_text(int code) {
    // Since 2.9: major * 10000 + minor * 100 + patch (before: major * 1000 + minor * 100 + patch).
    return cat(code / 10000, ".", (code % 10000) / 100, ".", code % 100);
}

class NcclCommunicator final : public DeviceCommunicator {
public:
    NcclCommunicator(const NcclApi& a, Communicator& host, void* stream) : api_(a), stream_(stream) {
        NcclUniqueId id;
        std::memset(&id, 0, sizeof(id));
        int rc = host.rank() == 0 ? api_.GetUniqueId(&id) : kSuccess;
        // Every rank learns whether rank 0 got an id, so that none waits for a peer that will not come.
        double failed = rc == kSuccess ? 0 : 1;
        host.allreduce_sum(&failed, 1);
        if (failed != 0) {
            fail(CAE_ERR_COMM, "ncclGetUniqueId failed on rank 0",
                 host.rank() == 0 ? cat(": ", api_.GetErrorString(rc)) : std::string());
        }
        host.broadcast(&id, sizeof(id), 0);
        rc = api_.CommInitRank(&comm_, host.size(), id, host.rank());
        if (rc != kSuccess) fail(CAE_ERR_COMM, "ncclCommInitRank failed on rank ", host.rank(), ": ", message(rc));
        library_ = cat("NCCL ", version_text(api_.version));
    }

    ~NcclCommunicator() override {
        if (comm_ == nullptr) return;
        int async = kSuccess;
        if (api_.CommGetAsyncError(comm_, &async) == kSuccess && (async == kSuccess || async == kInProgress)) {
            api_.CommDestroy(comm_);
        } else {
            api_.CommAbort(comm_);
        }
    }

    std::string library() const override { return library_; }

    void allreduce_mean(float* data, int64_t count) override {
        const int rc = api_.AllReduce(data, data, static_cast<size_t>(count), kFloat32, kAvg, comm_, stream_);
        if (rc != kSuccess) fail(CAE_ERR_COMM, "ncclAllReduce of ", count, " floats failed: ", message(rc));
    }

private:
    std::string message(int rc) const {
        std::string m = api_.GetErrorString(rc);
        if (api_.GetLastError != nullptr && comm_ != nullptr) {
            const char* last = api_.GetLastError(comm_);
            if (last != nullptr && *last != '\0') m += cat(" (", last, ")");
        }
        return m;
    }

    const NcclApi& api_;
    void* stream_;
    NcclComm comm_ = nullptr;
    std::string library_;
};

}  // namespace

std::unique_ptr<DeviceCommunicator> make_nccl_communicator(Communicator& host, void* stream, std::string* why_not) {
    std::string error;
    const NcclApi& a = api(&error);
    // Every rank learns which ranks cannot use NCCL: all use it, or none does.
    std::vector<double> unusable(static_cast<size_t>(host.size()), 0.0);
    unusable[static_cast<size_t>(host.rank())] = error.empty() ? 0 : 1;
    host.allreduce_sum(unusable.data(), static_cast<int64_t>(unusable.size()));
    std::string ranks;
    for (int r = 0; r < host.size(); ++r) {
        if (unusable[static_cast<size_t>(r)] != 0) ranks += cat(ranks.empty() ? "" : ", ", r);
    }
    if (!ranks.empty()) {
        if (why_not != nullptr) {
            *why_not = error.empty() ? cat("NCCL is not usable on rank ", ranks) : cat("rank ", host.rank(), ": ", error);
        }
        return nullptr;
    }
    return std::make_unique<NcclCommunicator>(a, host, stream);
}

}  // namespace cae
