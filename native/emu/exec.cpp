// Running a kernel launch on the host: every block in turn (in launch order or shuffled), every
// CUDA thread of a block as a fiber on the calling OS thread. Fibers switch only where CUDA threads
// meet: __syncthreads (all live threads of the block) and warp collectives (all lanes of a mask).
// Between two meeting points the fibers of a block run one after the other, forward, reversed or
// shuffled (CAE_EMU_ORDER), so a result that depends on that order shows up as a difference.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "emu_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define CAE_EMU_ASAN 1
#endif

extern "C" void cae_emu_switch(void** save_sp, void* new_sp);
extern "C" void cae_emu_fiber_start();

namespace cae_emu {

thread_local ThreadState* tls_thread = nullptr;

namespace {

constexpr size_t kStackBytes = size_t{256} << 10;
constexpr size_t kGuardBytes = 4096;
constexpr int kWarpSize = 32;

enum class State { Ready, AtBarrier, AtWarp, Done };

struct Fiber {
    ThreadState ts;
    void* sp = nullptr;
    State state = State::Ready;
    int lane = 0;
    unsigned mask = 0;
    Resolve resolve = nullptr;
    unsigned char in[64];
    void* out = nullptr;
    size_t out_bytes = 0;
};

struct BlockRun {
    std::vector<Fiber> fibers;
    std::vector<std::pair<const void*, void*>> shared;  // static __shared__ variables by key
    size_t static_bytes = 0;
    void* dynamic = nullptr;
    void* scheduler_sp = nullptr;
    Fiber* current = nullptr;
    std::string fault;
#ifdef CAE_EMU_ASAN
    const void* host_stack_bottom = nullptr;
    size_t host_stack_size = 0;
#endif
};

thread_local BlockRun* tls_block = nullptr;
thread_local ActiveLaunch* tls_launch = nullptr;
thread_local std::vector<void*> tls_stacks;

void* stack_at(size_t i) {
    while (tls_stacks.size() <= i) {
        void* p = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (p == MAP_FAILED) {
            std::fprintf(stderr, "cae emulator: cannot map a fiber stack\n");
            std::abort();
        }
        mprotect(p, kGuardBytes, PROT_NONE);  // a stack overflow faults instead of corrupting
        tls_stacks.push_back(p);
    }
    return tls_stacks[i];
}

// Switches from the running fiber back to the block's scheduler.
void to_scheduler() {
    BlockRun* b = tls_block;
    Fiber* f = b->current;
#ifdef CAE_EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(f->state == State::Done ? nullptr : &fake, b->host_stack_bottom, b->host_stack_size);
    cae_emu_switch(&f->sp, b->scheduler_sp);
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
    cae_emu_switch(&f->sp, b->scheduler_sp);
#endif
    tls_thread = &b->current->ts;
}

}  // namespace

extern "C" void cae_emu_fiber_main() {
#ifdef CAE_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &tls_block->host_stack_bottom, &tls_block->host_stack_size);
#endif
    tls_launch->body->run();
    tls_block->current->state = State::Done;
    to_scheduler();
    std::abort();  // a finished fiber is never resumed
}

namespace {

void prepare_fiber(Fiber& f, size_t index) {
    char* base = static_cast<char*>(stack_at(index));
    uintptr_t top = reinterpret_cast<uintptr_t>(base + kGuardBytes + kStackBytes) & ~uintptr_t{15};
    // The frame cae_emu_switch pops: r15, r14, r13, r12, rbx, rbp, then the return address
    // (cae_emu_fiber_start), which calls cae_emu_fiber_main with a 16-byte aligned stack.
    void** sp = reinterpret_cast<void**>(top - 64);
    for (int i = 0; i < 6; ++i) sp[i] = nullptr;
    sp[6] = reinterpret_cast<void*>(&cae_emu_fiber_start);
    sp[7] = nullptr;
    f.sp = sp;
}

void resume(BlockRun& b, Fiber& f) {
    b.current = &f;
    tls_thread = &f.ts;
#ifdef CAE_EMU_ASAN
    void* fake = nullptr;
    const size_t index = static_cast<size_t>(&f - b.fibers.data());
    __sanitizer_start_switch_fiber(&fake, static_cast<char*>(stack_at(index)) + kGuardBytes, kStackBytes);
    cae_emu_switch(&b.scheduler_sp, f.sp);
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
    cae_emu_switch(&b.scheduler_sp, f.sp);
#endif
    tls_thread = nullptr;
}

std::string where(const Fiber& f) {
    char s[160];
    std::snprintf(s, sizeof(s), "block (%u, %u, %u), thread (%u, %u, %u)", f.ts.block_idx.x, f.ts.block_idx.y,
                  f.ts.block_idx.z, f.ts.thread_idx.x, f.ts.thread_idx.y, f.ts.thread_idx.z);
    return s;
}

std::string hex_mask(unsigned mask) {
    char s[16];
    std::snprintf(s, sizeof(s), "0x%08x", mask);
    return s;
}

// Resolves the warp meetings whose lanes have all arrived; false when none could be. Lanes of one
// warp may meet in disjoint groups (each with its own mask, as divergent code does); masks that
// overlap without being equal, or a named lane that exited or does not exist, are faults.
bool resolve_warps(BlockRun& b) {
    bool any = false;
    const int lanes_total = static_cast<int>(b.fibers.size());
    const size_t warps = (b.fibers.size() + kWarpSize - 1) / kWarpSize;
    for (size_t w = 0; w < warps && b.fault.empty(); ++w) {
        const int first = static_cast<int>(w) * kWarpSize;
        const int count = std::min(kWarpSize, lanes_total - first);
        unsigned handled = 0;
        for (int l = 0; l < count; ++l) {
            const Fiber& f = b.fibers[first + l];
            if (f.state != State::AtWarp || (handled >> l & 1u)) continue;
            const unsigned mask = f.mask;
            const Resolve resolve = f.resolve;
            bool complete = true;
            for (int m = 0; m < kWarpSize; ++m) {
                if (!(mask >> m & 1u)) continue;
                if (m >= count || b.fibers[first + m].state == State::Done) {
                    b.fault = "a warp collective with mask " + hex_mask(mask) + " names lane " + std::to_string(m) +
                              ", which " + (m >= count ? "does not exist (the block ends inside this warp)" : "has exited") +
                              " (warp " + std::to_string(w) + " of " + where(f) + ")";
                    return false;
                }
                const Fiber& g = b.fibers[first + m];
                if (g.state != State::AtWarp) {
                    complete = false;
                } else if (g.mask != mask || g.resolve != resolve) {
                    b.fault = "lanes of one warp meet at different warp collectives or with overlapping masks " +
                              hex_mask(mask) + " and " + hex_mask(g.mask) + " (" + where(g) + ")";
                    return false;
                }
            }
            handled |= mask;
            if (!complete) continue;
            unsigned char in[kWarpSize][64], out[kWarpSize][64];
            std::memset(in, 0, sizeof(in));
            for (int m = 0; m < count; ++m) {
                if (mask >> m & 1u) std::memcpy(in[m], b.fibers[first + m].in, 64);
            }
            resolve(in, out, mask);
            for (int m = 0; m < count; ++m) {
                if (!(mask >> m & 1u)) continue;
                Fiber& g = b.fibers[first + m];
                std::memcpy(g.out, out[m], g.out_bytes);
                g.state = State::Ready;
            }
            any = true;
        }
    }
    return any;
}

void run_block(BlockRun& b, const ActiveLaunch& launch, uint3 block_idx, std::mt19937_64& rng) {
    const dim3 bd = launch.cfg.block;
    const size_t n = static_cast<size_t>(bd.x) * bd.y * bd.z;
    b.fibers.assign(n, Fiber{});
    b.fault.clear();
    for (size_t i = 0; i < n; ++i) {
        Fiber& f = b.fibers[i];
        f.ts.thread_idx = uint3{static_cast<unsigned>(i % bd.x), static_cast<unsigned>(i / bd.x % bd.y),
                                static_cast<unsigned>(i / (static_cast<size_t>(bd.x) * bd.y))};
        f.ts.block_idx = block_idx;
        f.ts.block_dim = bd;
        f.ts.grid_dim = launch.cfg.grid;
        f.lane = static_cast<int>(i % kWarpSize);
        prepare_fiber(f, i);
    }
    std::vector<size_t> order(n);
    const Order mode = options().order;
    for (;;) {
        std::iota(order.begin(), order.end(), size_t{0});
        if (mode == Order::Reverse) std::reverse(order.begin(), order.end());
        if (mode == Order::Shuffle) std::shuffle(order.begin(), order.end(), rng);
        bool ran = false;
        for (size_t i : order) {
            Fiber& f = b.fibers[i];
            if (f.state != State::Ready) continue;
            resume(b, f);
            ran = true;
            if (!b.fault.empty()) break;
        }
        if (!b.fault.empty()) break;
        if (resolve_warps(b)) continue;
        if (!b.fault.empty()) break;
        size_t done = 0, at_barrier = 0, at_warp = 0;
        for (const Fiber& f : b.fibers) {
            done += f.state == State::Done;
            at_barrier += f.state == State::AtBarrier;
            at_warp += f.state == State::AtWarp;
        }
        if (done == n) break;
        if (at_barrier + done == n) {  // every live thread reached __syncthreads
            for (Fiber& f : b.fibers)
                if (f.state == State::AtBarrier) f.state = State::Ready;
            continue;
        }
        if (!ran) {
            const Fiber* w = nullptr;
            for (const Fiber& f : b.fibers)
                if (f.state == State::AtWarp) w = &f;
            b.fault = "deadlock: " + std::to_string(at_barrier) + " thread(s) wait at __syncthreads while " +
                      std::to_string(at_warp) + " wait at a warp collective that cannot complete" +
                      (w ? " (" + where(*w) + ")" : std::string());
            break;
        }
    }
    for (auto& [key, p] : b.shared) std::free(p);
    b.shared.clear();
    b.static_bytes = 0;
}

}  // namespace

void syncthreads() {
    BlockRun* b = tls_block;
    b->current->state = State::AtBarrier;
    to_scheduler();
}

void warp_collective(unsigned mask, Resolve resolve, const void* in, size_t in_bytes, void* out, size_t out_bytes) {
    BlockRun* b = tls_block;
    Fiber* f = b->current;
    if (!(mask >> f->lane & 1u)) kernel_fault("a warp collective whose mask leaves out the calling lane");
    f->state = State::AtWarp;
    f->mask = mask;
    f->resolve = resolve;
    std::memset(f->in, 0, sizeof(f->in));
    std::memcpy(f->in, in, in_bytes);
    f->out = out;
    f->out_bytes = out_bytes;
    to_scheduler();
}

void resolve_shuffle(const unsigned char (*in)[64], unsigned char (*out)[64], unsigned lanes) {
    for (int l = 0; l < kWarpSize; ++l) {
        if (!(lanes >> l & 1u)) continue;
        ShuffleIn s;
        std::memcpy(&s, in[l], sizeof(s));
        ShuffleIn src;
        std::memcpy(&src, in[s.src], sizeof(src));
        // A source lane outside the mask gives an undefined value on the device: NaN bytes here.
        if (!(lanes >> s.src & 1u)) std::memset(src.value, 0xff, sizeof(src.value));
        std::memcpy(out[l], src.value, sizeof(src.value));
    }
}

[[noreturn]] void kernel_fault(const char* what) {
    BlockRun* b = tls_block;
    b->fault = std::string(what) + " (" + where(*b->current) + ")";
    b->current->state = State::Done;
    to_scheduler();
    std::abort();
}

void kernel_entry(const char* name, long max_threads) {
    ActiveLaunch* l = tls_launch;
    const dim3 b = l->cfg.block;
    if (max_threads > 0 && static_cast<long>(b.x) * b.y * b.z > max_threads) {
        kernel_fault(("launched with " + std::to_string(static_cast<long>(b.x) * b.y * b.z) +
                      " threads per block, above its __launch_bounds__(" + std::to_string(max_threads) + ")")
                         .c_str());
    }
    if (!options().broken_kernel.empty() && options().broken_kernel == name) {  // leaves its outputs unwritten
        tls_block->current->state = State::Done;
        to_scheduler();
    }
    const char* expected = nullptr;
    if (l->name.load(std::memory_order_relaxed) == nullptr && l->name.compare_exchange_strong(expected, name)) {
        count_launch(name);
    }
}

void* shared_static(const void* key, size_t bytes, size_t align) {
    BlockRun* b = tls_block;
    for (auto& [k, p] : b->shared)
        if (k == key) return p;
    b->static_bytes += bytes;
    if (b->static_bytes > kStaticSharedLimit) {
        kernel_fault(("static shared memory of " + std::to_string(b->static_bytes) + " bytes exceeds the 48 KiB limit")
                         .c_str());
    }
    if (b->static_bytes + tls_launch->cfg.smem > kOptinSharedLimit) {
        kernel_fault("static and dynamic shared memory together exceed the device's opt-in limit");
    }
    void* p = std::aligned_alloc(std::max<size_t>(align, 16), (bytes + 15) / 16 * 16);
    std::memset(p, 0xff, bytes);  // NaN in every float and double: an unwritten read shows
    b->shared.emplace_back(key, p);
    return p;
}

void* shared_dynamic() { return tls_block->dynamic; }

namespace {

// OS threads that run blocks of a launch beside the calling thread: started once, kept for the
// process (never joined: they wait for work until the process ends).
class BlockPool {
public:
    // Runs fn on `helpers` pool threads and on the calling thread; returns when all are done.
    void run(unsigned helpers, const std::function<void()>& fn) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            while (threads_.size() < helpers) {
                const unsigned index = static_cast<unsigned>(threads_.size());
                threads_.emplace_back([this, index] { loop(index); });
                threads_.back().detach();
            }
            job_ = &fn;
            wanted_ = helpers;
            pending_ = helpers;
            ++generation_;
        }
        start_.notify_all();
        fn();
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [this] { return pending_ == 0; });
        job_ = nullptr;
    }

private:
    void loop(unsigned index) {
        uint64_t seen = 0;
        for (;;) {
            const std::function<void()>* job;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                start_.wait(lock, [&] { return generation_ != seen; });
                seen = generation_;
                if (index >= wanted_) continue;
                job = job_;
            }
            (*job)();
            std::lock_guard<std::mutex> lock(mutex_);
            if (--pending_ == 0) done_.notify_all();
        }
    }
    std::mutex mutex_;
    std::condition_variable start_, done_;
    std::vector<std::thread> threads_;
    const std::function<void()>* job_ = nullptr;
    unsigned wanted_ = 0, pending_ = 0;
    uint64_t generation_ = 0;
};

BlockPool& block_pool() {
    static BlockPool* pool = new BlockPool();
    return *pool;
}

thread_local uint3 tls_block_idx{};

}  // namespace

// Runs every block of one launch (called by the stream that executes it), on up to
// options().threads OS threads, each taking the next block of the (possibly shuffled) order.
// Blocks are independent on the device, so the result must not depend on which thread ran which.
std::string run_launch(ActiveLaunch& launch) {
    const dim3 g = launch.cfg.grid;
    const size_t blocks = static_cast<size_t>(g.x) * g.y * g.z;
    std::vector<size_t> order(blocks);
    std::iota(order.begin(), order.end(), size_t{0});
    const uint64_t launch_seed = options().seed ^ (launch.sequence * 0x9e3779b97f4a7c15ull);
    if (options().shuffle_blocks) {
        std::mt19937_64 rng(launch_seed);
        std::shuffle(order.begin(), order.end(), rng);
    }
    std::atomic<size_t> next{0};
    std::atomic<bool> stop{false};
    std::mutex fault_mutex;
    std::string fault;
    const std::function<void()> work = [&] {
        ActiveLaunch* prev_launch = tls_launch;
        BlockRun* prev_block = tls_block;
        BlockRun b;
        tls_launch = &launch;
        tls_block = &b;
        void* dynamic = launch.cfg.smem > 0 ? std::malloc(launch.cfg.smem) : nullptr;  // exact: ASan sees overruns
        while (!stop.load()) {
            const size_t k = next.fetch_add(1);
            if (k >= blocks) break;
            const size_t i = order[k];
            if (dynamic) std::memset(dynamic, 0xff, launch.cfg.smem);
            b.dynamic = dynamic;
            const uint3 idx{static_cast<unsigned>(i % g.x), static_cast<unsigned>(i / g.x % g.y),
                            static_cast<unsigned>(i / (static_cast<size_t>(g.x) * g.y))};
            tls_block_idx = idx;
            std::mt19937_64 rng(launch_seed + i);  // the thread order of a block: the same whoever runs it
            run_block(b, launch, idx, rng);
            if (!b.fault.empty()) {
                std::lock_guard<std::mutex> lock(fault_mutex);
                if (fault.empty()) fault = b.fault;
                stop.store(true);
            }
        }
        std::free(dynamic);
        tls_launch = prev_launch;
        tls_block = prev_block;
    };
    const unsigned threads = static_cast<unsigned>(std::min<size_t>(options().threads, blocks));
    if (threads <= 1) {
        work();
    } else {
        block_pool().run(threads - 1, work);
    }
    return fault;
}

uint3 running_block() { return tls_block_idx; }

const ActiveLaunch* running_launch() { return tls_launch; }

}  // namespace cae_emu
