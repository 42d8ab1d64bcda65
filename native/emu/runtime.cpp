// The CUDA runtime calls of the backend, on the host, for the emulated device:
//  - streams run lazily: work queued on a stream runs only when something waits for it
//    (cudaStreamSynchronize, cudaDeviceSynchronize, cudaEventSynchronize, a copy to pageable host
//    memory, cudaFree), so a missing synchronization gives wrong numbers instead of passing by luck;
//  - device memory lives in an arena that is readable only while device work runs, so host code
//    that dereferences a device pointer faults (CAE_EMU_DEVICE_MEMORY=heap uses malloc instead, so
//    that AddressSanitizer sees every block's bounds);
//  - copies from pageable host memory take the data when called (as the driver stages them),
//    copies from or to pinned memory when they run;
//  - stream capture records the queued work into a graph, which a launch queues again;
//  - a fault inside a kernel is sticky: every later call returns it, as on the device;
//  - launch configurations are checked as the device checks them, with its error codes.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cae_emu_api.h"
#include "emu_internal.h"

// A hook at the start of every emulated stream, so that a stand-in library working on host memory
// (the fake cuBLASLt of the tests) can queue its work in stream order.
struct CaeEmuStreamHook {
    uint64_t magic;  // 0xcae0e3a1a7005eed
    // fn(data) runs in stream order (again at every replay of a graph that captured it);
    // release(data) when nothing can run it any more.
    void (*enqueue_host)(void* stream, void (*fn)(void*), void* data, void (*release)(void*));
};

namespace {

constexpr uint64_t kStreamMagic = 0xcae0e3a1a7005eedull;

struct Op {
    uint64_t seq = 0;
    std::function<void()> run;
};

}  // namespace

struct CUgraph_st {
    std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> ops;
};
struct CUstream_st {
    CaeEmuStreamHook hook;
    std::deque<Op> queue;
    uint64_t next_seq = 1;
    CUgraph_st* capture = nullptr;
    bool capture_invalid = false;
};
struct CUevent_st {
    CUstream_st* stream = nullptr;
    uint64_t seq = 0;
};

namespace cae_emu {

namespace {

std::recursive_mutex g_mutex;  // one device: calls from several host threads take turns
cudaError_t g_sticky = cudaSuccess;
std::string g_fault;
thread_local cudaError_t tls_last_error = cudaSuccess;
int g_current_device = 0;
uint64_t g_launch_sequence = 0;
std::mutex g_counts_mutex;  // kernels enter from the threads that run their blocks
std::map<std::string, long> g_launch_counts;
std::map<const void*, int> g_max_dynamic_smem;
std::set<CUstream_st*> g_streams;
CUstream_st* g_legacy_stream = nullptr;

// ---- device memory

constexpr size_t kArenaBytes = size_t{64} << 30;  // reserved address space, committed on use
constexpr size_t kDeviceMemoryBytes = size_t{16} << 30;  // what the device reports
constexpr size_t kAlign = 256;

class DeviceMemory {
public:
    void* allocate(size_t bytes) {
        const size_t size = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
        if (live_bytes_ + size > kDeviceMemoryBytes) return nullptr;
        char* p = nullptr;
        size_t usable = size;
        if (options().heap_memory) {
            // The exact size, so that AddressSanitizer reports a read even one byte past the end.
            usable = std::max<size_t>(bytes, 1);
            void* q = nullptr;
            if (posix_memalign(&q, kAlign, usable) != 0) return nullptr;
            p = static_cast<char*>(q);
        } else {
            reserve();
            for (auto it = free_.begin(); it != free_.end(); ++it) {
                if (it->second >= size) {
                    p = base_ + it->first;
                    const size_t off = it->first, rest = it->second - size;
                    free_.erase(it);
                    if (rest) free_.emplace(off + size, rest);
                    break;
                }
            }
            if (p == nullptr) {
                if (top_ + size > kArenaBytes) return nullptr;
                p = base_ + top_;
                const size_t old_end = protected_end();
                top_ += size;
                if (open_ && protected_end() > old_end)
                    mprotect(base_ + old_end, protected_end() - old_end, PROT_READ | PROT_WRITE);
            }
        }
        // cudaMalloc does not clear memory: NaN bytes, so that reading what nobody wrote shows.
        const bool was_open = open_;
        open();
        std::memset(p, 0xff, usable);
        if (!was_open) close();
        live_.emplace(p, usable);
        live_bytes_ += size;
        return p;
    }
    bool release(void* ptr) {
        char* p = static_cast<char*>(ptr);
        auto it = live_.find(p);
        if (it == live_.end()) return false;
        const size_t size = (it->second + kAlign - 1) / kAlign * kAlign;
        live_.erase(it);
        live_bytes_ -= size;
        if (options().heap_memory) {
            std::free(p);
            return true;
        }
        if (size >= (size_t{1} << 20)) madvise(p, size, MADV_DONTNEED);  // give the pages back (reads 0 later)
        size_t off = static_cast<size_t>(p - base_), len = size;
        auto next = free_.lower_bound(off);
        if (next != free_.end() && next->first == off + len) {
            len += next->second;
            next = free_.erase(next);
        }
        if (next != free_.begin()) {
            auto prev = std::prev(next);
            if (prev->first + prev->second == off) {
                off = prev->first;
                len += prev->second;
                free_.erase(prev);
            }
        }
        free_.emplace(off, len);
        return true;
    }
    // The live block holding p (its start and size), or {nullptr, 0}.
    std::pair<char*, size_t> block_of(const void* ptr) const {
        const char* p = static_cast<const char*>(ptr);
        auto it = live_.upper_bound(const_cast<char*>(p));
        if (it == live_.begin()) return {nullptr, 0};
        --it;
        if (p < it->first + it->second) return {it->first, it->second};
        return {nullptr, 0};
    }
    bool in_arena(const void* p) const {
        return base_ != nullptr && static_cast<const char*>(p) >= base_ && static_cast<const char*>(p) < base_ + kArenaBytes;
    }
    // Device memory is readable and writable only while device work runs. The arena is backed by
    // 2 MiB pages where the kernel allows it, which makes these changes of protection cheap.
    void open() {
        if (base_ && !open_ && top_) mprotect(base_, protected_end(), PROT_READ | PROT_WRITE);
        open_ = true;
    }
    void close() {
        if (base_ && open_ && top_) mprotect(base_, protected_end(), PROT_NONE);
        open_ = false;
    }
    bool is_open() const { return open_; }
    size_t live_bytes() const { return live_bytes_; }

private:
    static constexpr size_t kHugePage = size_t{2} << 20;
    size_t protected_end() const { return (top_ + kHugePage - 1) / kHugePage * kHugePage; }
    void reserve() {
        if (base_) return;
        void* p = mmap(nullptr, kArenaBytes + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            std::fprintf(stderr, "cae emulator: cannot reserve %zu bytes of address space for device memory\n",
                         kArenaBytes);
            std::abort();
        }
        const uintptr_t aligned = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) / kHugePage * kHugePage;
        base_ = reinterpret_cast<char*>(aligned);
        madvise(base_, kArenaBytes, MADV_HUGEPAGE);
    }
    char* base_ = nullptr;
    size_t top_ = 0;
    bool open_ = false;
    std::map<size_t, size_t> free_;  // offset -> bytes
    std::map<char*, size_t> live_;
    size_t live_bytes_ = 0;
};

DeviceMemory& device_memory() {
    static DeviceMemory* m = new DeviceMemory();  // never destroyed: static destructors may still free
    return *m;
}

std::map<char*, size_t>& pinned() {
    static auto* m = new std::map<char*, size_t>();
    return *m;
}

bool is_pinned(const void* ptr) {
    const char* p = static_cast<const char*>(ptr);
    auto& m = pinned();
    auto it = m.upper_bound(const_cast<char*>(p));
    if (it == m.begin()) return false;
    --it;
    return p < it->first + it->second;
}

bool is_device(const void* p) { return device_memory().block_of(p).first != nullptr; }

// ---- errors

cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess) tls_last_error = e;
    return e;
}

// The sticky error, if any, as the result of a call.
bool sticky(cudaError_t* out) {
    if (g_sticky == cudaSuccess) return false;
    *out = set_error(g_sticky);
    return true;
}

// ---- streams

CUstream_st* resolve(cudaStream_t s) {
    if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return g_legacy_stream;
    return g_streams.count(s) ? s : nullptr;
}

struct OpenDevice {
    bool was_open;
    OpenDevice() : was_open(device_memory().is_open()) { device_memory().open(); }
    ~OpenDevice() {
        if (!was_open) device_memory().close();
    }
};

// Runs the queued work of s up to and including sequence number `upto`.
void flush(CUstream_st* s, uint64_t upto = UINT64_MAX) {
    if (s->queue.empty() || s->queue.front().seq > upto) return;
    OpenDevice open;
    while (!s->queue.empty() && s->queue.front().seq <= upto) {
        Op op = std::move(s->queue.front());
        s->queue.pop_front();
        if (g_sticky == cudaSuccess) op.run();  // after a fault, queued work is dropped
    }
}

void flush_all() {
    flush(g_legacy_stream);
    for (CUstream_st* s : g_streams) flush(s);
}

// Queues op on s, or records it into the graph s is capturing.
void enqueue(CUstream_st* s, std::function<void()> run) {
    if (s->capture) {
        s->capture->ops.push_back(std::move(run));
        return;
    }
    s->queue.push_back(Op{s->next_seq++, std::move(run)});
}

// A call that must wait for s while it is being captured invalidates the capture.
bool capturing_refuses(CUstream_st* s, cudaError_t* out) {
    if (s && s->capture) {
        s->capture_invalid = true;
        *out = set_error(cudaErrorStreamCaptureUnsupported);
        return true;
    }
    return false;
}

bool any_capture() {
    for (CUstream_st* s : g_streams)
        if (s->capture) return true;
    return false;
}

void hook_enqueue_host(void* stream, void (*fn)(void*), void* data, void (*release)(void*)) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    std::shared_ptr<void> owned(data, release);
    CUstream_st* s = resolve(static_cast<cudaStream_t>(stream));
    if (s == nullptr) return;
    enqueue(s, [fn, owned] { fn(owned.get()); });
}

CUstream_st* new_stream() {
    auto* s = new CUstream_st();
    s->hook.magic = kStreamMagic;
    s->hook.enqueue_host = &hook_enqueue_host;
    return s;
}

struct Init {
    Init() { g_legacy_stream = new_stream(); }
};

void init() {
    static Init once;
}

// ---- the launch-coverage log (CAE_EMU_LAUNCH_LOG): one line per kernel, written at exit

void write_launch_log() {
    const char* path = std::getenv("CAE_EMU_LAUNCH_LOG");
    if (path == nullptr || *path == '\0') return;
    std::FILE* f = std::fopen(path, "w");
    if (f == nullptr) return;
    std::lock_guard<std::mutex> lock(g_counts_mutex);
    for (const auto& [name, n] : g_launch_counts) std::fprintf(f, "%s %ld\n", name.c_str(), n);
    std::fclose(f);
}

// ---- host access to device memory: a fault in the arena outside device work names itself

struct sigaction g_previous_segv;

void on_segv(int sig, siginfo_t* info, void* context) {
    const void* addr = info->si_addr;
    const ActiveLaunch* l = running_launch();
    char msg[512];
    int n = 0;
    if (l != nullptr) {
        const char* name = l->name.load();
        const uint3 block = running_block();
        n = std::snprintf(msg, sizeof(msg),
                          "cae emulator: illegal memory access at %p in kernel %s (launched as %s), block (%u, %u, %u)\n",
                          addr, name ? name : "?", l->site.c_str(), block.x, block.y, block.z);
    } else if (device_memory().in_arena(addr)) {
        n = std::snprintf(msg, sizeof(msg),
                          "cae emulator: host code dereferenced device memory at %p (device memory is readable only "
                          "by kernels and copies)\n",
                          addr);
    }
    if (n > 0) {
        (void)!write(2, msg, static_cast<size_t>(std::min<int>(n, sizeof(msg) - 1)));
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
        return;
    }
    if (g_previous_segv.sa_flags & SA_SIGINFO) {
        if (g_previous_segv.sa_sigaction) g_previous_segv.sa_sigaction(sig, info, context);
    } else if (g_previous_segv.sa_handler != SIG_DFL && g_previous_segv.sa_handler != SIG_IGN) {
        g_previous_segv.sa_handler(sig);
    } else {
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
    }
}

// Installed only where nothing else handles SIGSEGV (a test program, not a JVM, whose handler
// must stay first).
void install_segv_handler() {
    struct sigaction current;
    sigaction(SIGSEGV, nullptr, &current);
    if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler != SIG_DFL) return;
    if (current.sa_flags & SA_SIGINFO) return;
    static char alt_stack[64 * 1024];
    stack_t ss{};
    ss.ss_sp = alt_stack;
    ss.ss_size = sizeof(alt_stack);
    sigaltstack(&ss, nullptr);
    struct sigaction sa{};
    sa.sa_sigaction = &on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_segv);
}

struct ProcessSetup {
    ProcessSetup() {
        install_segv_handler();
        std::atexit(&write_launch_log);
    }
};
ProcessSetup g_process_setup;

}  // namespace

const Options& options() {
    static const Options o = [] {
        Options r;
        const char* order = std::getenv("CAE_EMU_ORDER");
        if (order && std::strcmp(order, "reverse") == 0) r.order = Order::Reverse;
        if (order && std::strcmp(order, "shuffle") == 0) r.order = Order::Shuffle;
        const char* blocks = std::getenv("CAE_EMU_BLOCKS");
        r.shuffle_blocks = blocks && std::strcmp(blocks, "shuffle") == 0;
        const char* seed = std::getenv("CAE_EMU_SEED");
        if (seed && *seed) r.seed = std::strtoull(seed, nullptr, 10);
        const char* mem = std::getenv("CAE_EMU_DEVICE_MEMORY");
        r.heap_memory = mem && std::strcmp(mem, "heap") == 0;
        const char* broken = std::getenv("CAE_EMU_BREAK_KERNEL");
        if (broken) r.broken_kernel = broken;
        const char* threads = std::getenv("CAE_EMU_THREADS");
        const long n = threads && *threads ? std::strtol(threads, nullptr, 10) : static_cast<long>(std::thread::hardware_concurrency());
        r.threads = static_cast<unsigned>(std::clamp<long>(n, 1, 64));
        return r;
    }();
    return o;
}

void count_launch(const char* name) {
    std::lock_guard<std::mutex> lock(g_counts_mutex);
    ++g_launch_counts[name];
}

void enqueue_launch(const void* key, const char* site, const LaunchConfig& cfg, KernelBody* body) {
    std::unique_ptr<KernelBody> owned(body);
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    init();
    cudaError_t err;
    if (sticky(&err)) return;
    const dim3 b = cfg.block, g = cfg.grid;
    const uint64_t threads = uint64_t{b.x} * b.y * b.z;
    if (b.x == 0 || b.y == 0 || b.z == 0 || b.x > 1024 || b.y > 1024 || b.z > 64 || threads > 1024 || g.x == 0 ||
        g.y == 0 || g.z == 0 || g.x > 2147483647u || g.y > 65535 || g.z > 65535) {
        set_error(cudaErrorInvalidConfiguration);
        return;
    }
    size_t limit = kDefaultDynamicSharedLimit;
    if (key) {
        auto it = g_max_dynamic_smem.find(key);
        if (it != g_max_dynamic_smem.end()) limit = static_cast<size_t>(it->second);
    }
    if (cfg.smem > limit) {
        set_error(cudaErrorInvalidValue);
        return;
    }
    CUstream_st* s = resolve(cfg.stream);
    if (s == nullptr) {
        set_error(cudaErrorInvalidResourceHandle);
        return;
    }
    std::shared_ptr<KernelBody> shared_body(owned.release());
    std::string site_name = site;
    enqueue(s, [site_name, cfg, shared_body] {
        ActiveLaunch l{site_name, cfg, shared_body.get()};
        l.sequence = ++g_launch_sequence;
        const std::string fault = run_launch(l);
        if (!fault.empty()) {
            const char* name = l.name.load();
            g_fault = "kernel " + std::string(name ? name : site_name.c_str()) + " (launched as " + site_name +
                      "): " + fault;
            std::fprintf(stderr, "cae emulator: %s\n", g_fault.c_str());
            g_sticky = cudaErrorLaunchFailure;
        }
    });
}

}  // namespace cae_emu

using namespace cae_emu;

#define CAE_EMU_API extern "C" __attribute__((visibility("default")))

// ---- errors and devices

CAE_EMU_API cudaError_t cudaGetLastError(void) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    const cudaError_t e = tls_last_error;
    tls_last_error = g_sticky;  // a sticky error stays
    return e;
}

CAE_EMU_API cudaError_t cudaPeekAtLastError(void) { return tls_last_error; }

CAE_EMU_API const char* cudaGetErrorName(cudaError_t e) {
    switch (e) {
        case cudaSuccess: return "cudaSuccess";
        case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
        case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
        case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
        case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
        case cudaErrorNotReady: return "cudaErrorNotReady";
        case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
        case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
        case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
        case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
        case cudaErrorIllegalState: return "cudaErrorIllegalState";
        case cudaErrorNotSupported: return "cudaErrorNotSupported";
        default: return "cudaErrorUnknown";
    }
}

CAE_EMU_API const char* cudaGetErrorString(cudaError_t e) {
    switch (e) {
        case cudaSuccess: return "no error";
        case cudaErrorInvalidValue: return "invalid argument";
        case cudaErrorMemoryAllocation: return "out of memory";
        case cudaErrorInvalidConfiguration: return "invalid configuration argument";
        case cudaErrorInvalidDevice: return "invalid device ordinal";
        case cudaErrorInvalidResourceHandle: return "invalid resource handle";
        case cudaErrorNotReady: return "device not ready";
        case cudaErrorLaunchFailure: return "unspecified launch failure (emulator: see cae_emu_last_fault)";
        case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
        case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
        case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
        case cudaErrorNotSupported: return "operation not supported";
        default: return "unknown error";
    }
}

CAE_EMU_API cudaError_t cudaGetDeviceCount(int* count) {
    init();
    *count = 1;
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaDriverGetVersion(int* v) {
    *v = 13000;
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaSetDevice(int device) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    init();
    cudaError_t err;
    if (sticky(&err)) return err;
    if (device != 0) return set_error(cudaErrorInvalidDevice);
    g_current_device = device;
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaGetDevice(int* device) {
    *device = g_current_device;
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
    if (device != 0) return set_error(cudaErrorInvalidDevice);
    std::memset(p, 0, sizeof(*p));
    std::snprintf(p->name, sizeof(p->name), "CAE host emulator (sm_90 model)");
    p->totalGlobalMem = kDeviceMemoryBytes;
    p->sharedMemPerBlock = kStaticSharedLimit;
    p->sharedMemPerBlockOptin = kOptinSharedLimit;
    p->sharedMemPerMultiprocessor = 233472;
    p->regsPerBlock = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = 1024;
    p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647;
    p->maxGridSize[1] = 65535;
    p->maxGridSize[2] = 65535;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 4;
    p->maxThreadsPerMultiProcessor = 2048;
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
    if (device != 0) return set_error(cudaErrorInvalidDevice);
    switch (attr) {
        case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(kOptinSharedLimit); return cudaSuccess;
        case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(kStaticSharedLimit); return cudaSuccess;
        case cudaDevAttrMultiProcessorCount: *value = 4; return cudaSuccess;
        case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
        case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
        case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
        case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
        default:
            std::fprintf(stderr, "cae emulator: cudaDeviceGetAttribute(%d) is not modelled\n", static_cast<int>(attr));
            return set_error(cudaErrorInvalidValue);
    }
}

CAE_EMU_API cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    *total = kDeviceMemoryBytes;
    *free_bytes = kDeviceMemoryBytes - device_memory().live_bytes();
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (value < 0 || static_cast<size_t>(value) > kOptinSharedLimit) return set_error(cudaErrorInvalidValue);
        g_max_dynamic_smem[func] = value;
        return cudaSuccess;
    }
    if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
    return set_error(cudaErrorInvalidValue);
}

// ---- memory

CAE_EMU_API cudaError_t cudaMalloc(void** p, size_t bytes) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    init();
    cudaError_t err;
    if (sticky(&err)) return err;
    *p = device_memory().allocate(bytes);
    return *p ? cudaSuccess : set_error(cudaErrorMemoryAllocation);
}

CAE_EMU_API cudaError_t cudaFree(void* p) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (p == nullptr) return cudaSuccess;
    if (!any_capture()) flush_all();  // cudaFree waits for the device
    if (!device_memory().release(p)) return set_error(cudaErrorInvalidValue);
    return g_sticky;
}

CAE_EMU_API cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned int flags) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    cudaError_t err;
    if (sticky(&err)) return err;
    const size_t size = (std::max<size_t>(bytes, 1) + 4095) / 4096 * 4096;
    *p = std::aligned_alloc(4096, size);
    if (*p == nullptr) return set_error(cudaErrorMemoryAllocation);
    pinned().emplace(static_cast<char*>(*p), bytes);
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }

CAE_EMU_API cudaError_t cudaFreeHost(void* p) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (p == nullptr) return cudaSuccess;
    if (!any_capture()) flush_all();  // waits for the copies that read it
    auto it = pinned().find(static_cast<char*>(p));
    if (it == pinned().end()) return set_error(cudaErrorInvalidValue);
    pinned().erase(it);
    std::free(p);
    return g_sticky;
}

namespace {

bool valid_range(const void* p, size_t bytes, bool device) {
    if (!device) return true;
    auto [start, size] = device_memory().block_of(p);
    return start != nullptr && static_cast<const char*>(p) + bytes <= start + size;
}

cudaError_t memcpy_async(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream,
                         bool synchronous) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    init();
    cudaError_t err;
    if (sticky(&err)) return err;
    CUstream_st* s = resolve(stream);
    if (s == nullptr) return set_error(cudaErrorInvalidResourceHandle);
    if (bytes == 0) return cudaSuccess;
    const bool dst_dev = is_device(dst), src_dev = is_device(src);
    if (kind == cudaMemcpyDefault) {
        kind = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                       : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
    }
    const bool want_dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool want_src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (dst_dev != want_dst_dev || src_dev != want_src_dev || !valid_range(dst, bytes, dst_dev) ||
        !valid_range(src, bytes, src_dev)) {
        std::fprintf(stderr, "cae emulator: cudaMemcpy of %zu bytes, kind %d, from %p (%s) to %p (%s) is invalid\n", bytes,
                     static_cast<int>(kind), src, src_dev ? "device" : "host", dst, dst_dev ? "device" : "host");
        return set_error(cudaErrorInvalidValue);
    }
    const bool host_src_pageable = !src_dev && !is_pinned(src);
    const bool host_dst_pageable = !dst_dev && !is_pinned(dst);
    if (host_src_pageable && !s->capture) {
        // The driver stages pageable data before the call returns: the caller may reuse it at once.
        auto staged = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(src),
                                                                   static_cast<const unsigned char*>(src) + bytes);
        enqueue(s, [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); });
    } else {
        enqueue(s, [dst, src, bytes] { std::memcpy(dst, src, bytes); });
    }
    if (synchronous || host_dst_pageable) {
        // A copy into pageable memory returns when the data is there.
        if (capturing_refuses(s, &err)) return err;
        flush(s);
        return g_sticky == cudaSuccess ? cudaSuccess : set_error(g_sticky);
    }
    return cudaSuccess;
}

cudaError_t memset_async(void* dst, int value, size_t bytes, cudaStream_t stream) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    init();
    cudaError_t err;
    if (sticky(&err)) return err;
    CUstream_st* s = resolve(stream);
    if (s == nullptr) return set_error(cudaErrorInvalidResourceHandle);
    if (bytes == 0) return cudaSuccess;
    if (!valid_range(dst, bytes, true)) return set_error(cudaErrorInvalidValue);
    enqueue(s, [dst, value, bytes] { std::memset(dst, value, bytes); });
    return cudaSuccess;
}

}  // namespace

CAE_EMU_API cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                                        cudaStream_t stream) {
    return memcpy_async(dst, src, bytes, kind, stream, false);
}

CAE_EMU_API cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    init();
    flush_all();  // the legacy stream waits for the others
    return memcpy_async(dst, src, bytes, kind, nullptr, true);
}

CAE_EMU_API cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
    return memset_async(dst, value, bytes, stream);
}

CAE_EMU_API cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    init();
    cudaError_t err = memset_async(dst, value, bytes, nullptr);
    if (err == cudaSuccess) flush_all();
    return err;
}

// ---- streams and events

CAE_EMU_API cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    init();
    cudaError_t err;
    if (sticky(&err)) return err;
    CUstream_st* s = new_stream();
    g_streams.insert(s);
    *stream = s;
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }

CAE_EMU_API cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    CUstream_st* s = resolve(stream);
    if (s == nullptr || s == g_legacy_stream) return set_error(cudaErrorInvalidResourceHandle);
    flush(s);  // queued work still completes
    g_streams.erase(s);
    delete s->capture;
    delete s;
    return g_sticky;
}

CAE_EMU_API cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    init();
    CUstream_st* s = resolve(stream);
    if (s == nullptr) return set_error(cudaErrorInvalidResourceHandle);
    cudaError_t err;
    if (capturing_refuses(s, &err)) return err;
    flush(s);
    return g_sticky == cudaSuccess ? cudaSuccess : set_error(g_sticky);
}

CAE_EMU_API cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }

CAE_EMU_API cudaError_t cudaDeviceSynchronize(void) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    init();
    for (CUstream_st* s : g_streams) {
        cudaError_t err;
        if (capturing_refuses(s, &err)) return err;
    }
    flush_all();
    return g_sticky == cudaSuccess ? cudaSuccess : set_error(g_sticky);
}

CAE_EMU_API cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
    *event = new CUevent_st();
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }

CAE_EMU_API cudaError_t cudaEventDestroy(cudaEvent_t event) {
    delete event;
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    init();
    cudaError_t err;
    if (sticky(&err)) return err;
    CUstream_st* s = resolve(stream);
    if (s == nullptr || event == nullptr) return set_error(cudaErrorInvalidResourceHandle);
    if (s->capture) {
        s->capture->ops.push_back([] {});
        return cudaSuccess;
    }
    // The event completes with the work queued before it: the sequence number of that work.
    event->stream = s;
    event->seq = s->next_seq - 1;
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (event == nullptr) return set_error(cudaErrorInvalidResourceHandle);
    if (event->stream != nullptr && (event->stream == g_legacy_stream || g_streams.count(event->stream))) {
        cudaError_t err;
        if (capturing_refuses(event->stream, &err)) return err;
        flush(event->stream, event->seq);
    }
    return g_sticky == cudaSuccess ? cudaSuccess : set_error(g_sticky);
}

CAE_EMU_API cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }

CAE_EMU_API cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void* data) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    CUstream_st* s = resolve(stream);
    if (s == nullptr) return set_error(cudaErrorInvalidResourceHandle);
    enqueue(s, [fn, data] { fn(data); });
    return cudaSuccess;
}

// ---- graphs (stream capture)

CAE_EMU_API cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    cudaError_t err;
    if (sticky(&err)) return err;
    CUstream_st* s = resolve(stream);
    if (s == nullptr) return set_error(cudaErrorInvalidResourceHandle);
    if (s == g_legacy_stream || s->capture) return set_error(cudaErrorIllegalState);
    s->capture = new CUgraph_st();
    s->capture_invalid = false;
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    CUstream_st* s = resolve(stream);
    if (s == nullptr) return set_error(cudaErrorInvalidResourceHandle);
    if (s->capture == nullptr) return set_error(cudaErrorIllegalState);
    CUgraph_st* g = s->capture;
    s->capture = nullptr;
    if (s->capture_invalid) {
        delete g;
        *graph = nullptr;
        return set_error(cudaErrorStreamCaptureInvalidated);
    }
    *graph = g;
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags) {
    if (graph == nullptr) return set_error(cudaErrorInvalidValue);
    *exec = new CUgraphExec_st{graph->ops};
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}

CAE_EMU_API cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    cudaError_t err;
    if (sticky(&err)) return err;
    CUstream_st* s = resolve(stream);
    if (s == nullptr || exec == nullptr) return set_error(cudaErrorInvalidResourceHandle);
    for (const auto& op : exec->ops) enqueue(s, op);
    return cudaSuccess;
}

// ---- what the tests ask the emulator

CAE_EMU_API long cae_emu_launch_count(const char* name) {
    std::lock_guard<std::mutex> lock(g_counts_mutex);
    auto it = g_launch_counts.find(name);
    return it == g_launch_counts.end() ? 0 : it->second;
}

CAE_EMU_API const char* cae_emu_last_fault(void) { return g_fault.c_str(); }

CAE_EMU_API int cae_emu_is_device_pointer(const void* p) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    return is_device(p) ? 1 : 0;
}
