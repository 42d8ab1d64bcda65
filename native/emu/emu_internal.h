// Shared between the emulator's execution engine (exec.cpp) and its runtime (runtime.cpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "cuda_emu.h"

namespace cae_emu {

// Device limits the emulated device reports and enforces (those of an H100 / sm_90).
constexpr size_t kStaticSharedLimit = 48 * 1024;
constexpr size_t kDefaultDynamicSharedLimit = 48 * 1024;
constexpr size_t kOptinSharedLimit = 232448;  // 227 KiB

enum class Order { Forward, Reverse, Shuffle };

struct Options {
    Order order = Order::Forward;   // CAE_EMU_ORDER=forward|reverse|shuffle
    bool shuffle_blocks = false;    // CAE_EMU_BLOCKS=shuffle
    uint64_t seed = 1;              // CAE_EMU_SEED
    unsigned threads = 1;           // CAE_EMU_THREADS: OS threads running the blocks of a launch (default: cores)
    std::string broken_kernel;      // CAE_EMU_BREAK_KERNEL=name: its threads return at once (a wrong device, for tests)
    bool heap_memory = false;       // CAE_EMU_DEVICE_MEMORY=heap (for ASan), else the guarded arena
};
const Options& options();

// One execution of a queued launch.
struct ActiveLaunch {
    std::string site;
    LaunchConfig cfg;
    KernelBody* body;
    std::atomic<const char*> name{nullptr};  // the __global__ function, known once a thread entered it
    uint64_t sequence = 0;
};

// Runs every block of a launch; returns the first fault, or "".
std::string run_launch(ActiveLaunch& launch);
// The launch and block the calling OS thread is running (null outside kernels).
const ActiveLaunch* running_launch();
uint3 running_block();
void count_launch(const char* name);

}  // namespace cae_emu
