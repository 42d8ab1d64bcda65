// Bugs planted in small kernels and host code, each beside its correct form: a test passes when the
// emulator runs the correct form right and catches the planted bug (a wrong value, NaN poison, a
// kernel fault, a runtime error, or a crash that names the cause).
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cae_emu_api.h"
#include "harness.h"
#include "kernels.h"
#include "mma_tile.h"

using namespace emu_test;

namespace {

// ---- (a) a block reduction without its barriers, under every order of the threads

constexpr int kSumBlocks = 4;

// Child: prints "sum BLOCK EXPECTED CORRECT BUGGY" per block, for the order in CAE_EMU_ORDER.
void child_block_sum(const std::vector<std::string>&) {
    std::vector<float> x(kSumBlocks * kReduceThreads);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i * 37 % 11) - 5);  // exact sums
    float* dx = device_floats(x.size());
    float* dout = device_floats(kSumBlocks);
    to_device(dx, x);
    launch_block_sum(dx, dout, kSumBlocks, true);
    const std::vector<float> correct = from_device(dout, kSumBlocks);
    launch_block_sum(dx, dout, kSumBlocks, false);
    const std::vector<float> buggy = from_device(dout, kSumBlocks);
    for (int b = 0; b < kSumBlocks; ++b) {
        double expected = 0;
        for (int i = 0; i < kReduceThreads; ++i) expected += x[b * kReduceThreads + i];
        std::printf("sum %d %.9g %.9g %.9g\n", b, expected, correct[b], buggy[b]);
    }
}

void missing_barrier(const std::vector<std::string>&) {
    struct Run {
        const char* order;
        const char* seed;
    };
    const Run runs[] = {{"forward", "1"}, {"reverse", "1"}, {"shuffle", "1"}, {"shuffle", "2"}};
    int detecting = 0;
    for (const Run& r : runs) {
        const ChildResult c = run_self({"child_block_sum"}, {{"CAE_EMU_ORDER", r.order}, {"CAE_EMU_SEED", r.seed}});
        int lines = 0, correct_ok = 0, buggy_wrong = 0, buggy_nan = 0;
        size_t pos = 0;
        while ((pos = c.out.find("sum ", pos)) != std::string::npos) {
            int b;
            double expected, correct, buggy;
            if (std::sscanf(c.out.c_str() + pos, "sum %d %lf %lf %lf", &b, &expected, &correct, &buggy) == 4) {
                ++lines;
                correct_ok += correct == expected;
                buggy_nan += std::isnan(buggy);
                buggy_wrong += !(buggy == expected);
            }
            pos += 4;
        }
        if (!check(c.exit_code == 0 && lines == kSumBlocks, "CAE_EMU_ORDER=%s seed %s: child ran (exit %d, signal %d)",
                   r.order, r.seed, c.exit_code, c.signal)) {
            std::fputs(head(c.out + c.err, 12).c_str(), stdout);
            continue;
        }
        check(correct_ok == kSumBlocks, "CAE_EMU_ORDER=%-7s seed %s: with barriers %d/%d block sums exact", r.order,
              r.seed, correct_ok, kSumBlocks);
        std::printf("       CAE_EMU_ORDER=%-7s seed %s: without barriers %d/%d block sums wrong (%d NaN)%s\n", r.order,
                    r.seed, buggy_wrong, kSumBlocks, buggy_nan, buggy_wrong ? "" : ": this order hides the bug");
        detecting += buggy_wrong > 0;
    }
    check(detecting >= 1, "the missing __syncthreads shows in %d of 4 runs (at least 1 required)", detecting);
}

// ---- (b) mma fragments a1 and a2 swapped

void swapped_fragments(const std::vector<std::string>&) {
    std::mt19937 rng(11);
    const MmaTile t = random_mma_tile(rng);
    const MmaError good = mma_error(t, run_mma_tile(t, false));
    const MmaError bad = mma_error(t, run_mma_tile(t, true));
    check(good.max_ratio <= 1.0, "correct fragments: max |d - ref| = %.3g (%.3g tol, <= 1 required)", good.max_abs,
          good.max_ratio);
    check(bad.max_abs >= 0.1, "a1 <-> a2 swapped: max |d - ref| = %.3g (>= 0.1 required: values are O(1))",
          bad.max_abs);
}

// ---- (c) off-by-one: a shared tile loaded one element short; a read one past a device block

void off_by_one_shared(const std::vector<std::string>&) {
    std::vector<float> x(kTile);
    for (int i = 0; i < kTile; ++i) x[i] = static_cast<float>(i) + 0.5f;
    float* dx = device_floats(kTile);
    float* dout = device_floats(kTile);
    to_device(dx, x);
    launch_tile_reverse(dx, dout, kTile);
    std::vector<float> out = from_device(dout, kTile);
    int exact = 0;
    for (int i = 0; i < kTile; ++i) exact += out[i] == x[kTile - 1 - i];
    check(exact == kTile, "loader bound kTile: %d/%d elements exact", exact, kTile);
    launch_tile_reverse(dx, dout, kTile - 1);
    out = from_device(dout, kTile);
    int nan = 0;
    exact = 0;
    for (int i = 0; i < kTile; ++i) {
        nan += std::isnan(out[i]);
        exact += out[i] == x[kTile - 1 - i];
    }
    check(std::isnan(out[0]) && nan == 1 && exact == kTile - 1,
          "loader bound kTile - 1: out[0] = %g reads the unwritten element (NaN poison required), %d NaN, %d/%d exact",
          out[0], nan, exact, kTile - 1);
}

// A buffer of n values with a tail of NaN bytes the test owns (as a guard): the off-by-one read of
// x[n] gives NaN in every memory mode and order, where zeros would pass for a plausible value.
void off_by_one_padding(const std::vector<std::string>&) {
    const int n = 1000, guard = 64;
    float* dx = device_floats(n + guard);
    float* dout = device_floats(n);
    check_error(cudaMemset(dx, 0xff, (n + guard) * sizeof(float)), cudaSuccess, "cudaMemset of the guard");
    to_device(dx, std::vector<float>(n, 1.0f));
    launch_neighbour_sum(dx, dout, n, n);
    std::vector<float> out = from_device(dout, n);
    int exact = 0;
    for (int i = 0; i < n; ++i) exact += out[i] == (i + 1 < n ? 2.0f : 1.0f);
    check(exact == n, "read bound n: %d/%d exact", exact, n);
    launch_neighbour_sum(dx, dout, n, n + 1);
    out = from_device(dout, n);
    int nan = 0;
    exact = 0;
    for (int i = 0; i < n; ++i) {
        nan += std::isnan(out[i]);
        exact += out[i] == 2.0f;
    }
    check(std::isnan(out[n - 1]) && nan == 1 && exact == n - 1,
          "read bound n + 1: out[n-1] = %g (NaN from the guard required), %d NaN, %d/%d exact", out[n - 1], nan, exact,
          n - 1);
}

// A fresh child's device blocks: 4 KiB for the output, then x, so that x ends 2 MiB into the arena,
// where the memory readable during device work ends (it opens in steps of a page up to 2 MiB).
// The kernel covers only the last kTail elements of x: x[n] is one past the block.
constexpr size_t kArenaEnd = size_t{2} << 20;
constexpr int kTail = 128;

// Child: the correct read, then the planted one; the latter must not return.
void child_read_past_end(const std::vector<std::string>&) {
    const size_t n = (kArenaEnd - 4096) / sizeof(float);
    float* dout = device_floats(4096 / sizeof(float));
    float* dx = device_floats(n);
    to_device(dx, std::vector<float>(n, 1.0f));
    float* tail = dx + (n - kTail);
    launch_neighbour_sum(tail, dout, kTail, kTail);
    const std::vector<float> out = from_device(dout, kTail);
    int exact = 0;
    for (int i = 0; i < kTail; ++i) exact += out[i] == (i + 1 < kTail ? 2.0f : 1.0f);
    std::printf("correct %d/%d\n", exact, kTail);
    std::fflush(stdout);
    launch_neighbour_sum(tail, dout, kTail, kTail + 1);
    const std::vector<float> bad = from_device(dout, kTail);
    std::printf("returned: out[n-1] = %g\n", bad[kTail - 1]);
}

void read_past_allocation(const std::vector<std::string>&) {
    const std::string correct_line = "correct " + std::to_string(kTail) + "/" + std::to_string(kTail);
    {
        const ChildResult c = run_self({"child_read_past_end"}, {{"CAE_EMU_DEVICE_MEMORY", "arena"}, asan_without_segv_handler()});
        check(contains(c.out, correct_line), "arena: the in-bounds read is exact (%s)", correct_line.c_str());
        const bool ok = c.signal == SIGSEGV && contains(c.err, "illegal memory access") &&
                        contains(c.err, "neighbour_sum_kernel");
        if (!check(ok, "arena: reading x[n] dies with SIGSEGV (signal %d, exit %d) and names the kernel", c.signal,
                   c.exit_code))
            std::fputs(head(c.out + c.err, 12).c_str(), stdout);
        else
            std::fputs(head(c.err, 1).c_str(), stdout);
    }
#if defined(__SANITIZE_ADDRESS__)
    {
        const ChildResult c = run_self({"child_read_past_end"}, {{"CAE_EMU_DEVICE_MEMORY", "heap"}});
        check(contains(c.out, correct_line), "heap: the in-bounds read is exact (%s)", correct_line.c_str());
        if (!check(contains(c.err, "heap-buffer-overflow") && c.exit_code != 0,
                   "heap under AddressSanitizer: reading x[n] is a heap-buffer-overflow (exit %d, signal %d)",
                   c.exit_code, c.signal))
            std::fputs(head(c.out + c.err, 12).c_str(), stdout);
    }
#else
    std::printf("       heap memory: not checked without AddressSanitizer (asan.sh checks it)\n");
#endif
}

// ---- (d) a full-mask shuffle after lanes of the warp returned

void shuffle_after_exit(const std::vector<std::string>&) {
    std::vector<float> x(32);
    for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i);
    float* dx = device_floats(32);
    float* dout = device_floats(1);
    to_device(dx, x);
    launch_warp_sum(dx, dout, 32);
    const float sum = from_device(dout, 1)[0];
    check(sum == 496.0f, "all 32 lanes: warp sum %g (496 expected)", sum);
    check(std::string(cae_emu_last_fault()).empty(), "no fault yet");
    launch_warp_sum(dx, dout, 16);
    check_error(cudaGetLastError(), cudaSuccess, "the launch itself");
    check_error(cudaDeviceSynchronize(), cudaErrorLaunchFailure, "cudaDeviceSynchronize after lanes 16..31 returned");
    const std::string fault = cae_emu_last_fault();
    check(contains(fault, "warp_sum_kernel") && contains(fault, "has exited"),
          "the fault names the kernel and the exited lane: \"%s\"", fault.c_str());
    void* p = nullptr;
    check_error(cudaMalloc(&p, 16), cudaErrorLaunchFailure, "a later cudaMalloc (the error is sticky)");
}

// Not a bug: the halves of a warp shuffling among themselves with disjoint masks is legal (since
// Volta), and the emulator must run it as two meetings, not report a fault.
void disjoint_masks(const std::vector<std::string>&) {
    std::vector<float> x(32);
    for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i);
    float* dx = device_floats(32);
    float* dout = device_floats(32);
    to_device(dx, x);
    launch_half_warp_sums(dx, dout);
    check_error(cudaDeviceSynchronize(), cudaSuccess, "two half-warp shuffles with disjoint masks");
    const std::vector<float> out = from_device(dout, 32);
    int right = 0;
    for (int i = 0; i < 32; ++i) right += out[i] == (i < 16 ? 120.0f : 376.0f);
    check(right == 32, "%d/32 lanes hold their half's sum (120 and 376)", right);
    check(std::string(cae_emu_last_fault()).empty(), "no fault: \"%s\"", cae_emu_last_fault());
}

// A kernel compiled with __launch_bounds__(64) runs with 64 threads per block and is refused with 128.
void launch_bounds(const std::vector<std::string>&) {
    const int n = 256;
    float* dx = device_floats(n);
    launch_bounded_fill(dx, n, 64);
    check_error(cudaDeviceSynchronize(), cudaSuccess, "64 threads per block, as its __launch_bounds__(64) allows");
    const std::vector<float> x = from_device(dx, n);
    int ones = 0;
    for (float v : x) ones += v == 1.0f;
    check(ones == n, "%d/%d elements written", ones, n);
    launch_bounded_fill(dx, n, 128);
    check_error(cudaDeviceSynchronize(), cudaErrorLaunchFailure, "128 threads per block, above __launch_bounds__(64)");
    const std::string fault = cae_emu_last_fault();
    check(contains(fault, "bounded_fill_kernel") && contains(fault, "__launch_bounds__(64)"),
          "the fault names the kernel and its bound: \"%s\"", fault.c_str());
}

// ---- (e) a host read of a pinned buffer without waiting for the copy

void missing_stream_sync(const std::vector<std::string>&) {
    const int n = 1000;
    cudaStream_t s;
    check_error(cudaStreamCreate(&s), cudaSuccess, "cudaStreamCreate");
    float* dx = device_floats(n);
    float* host = nullptr;
    check_error(cudaMallocHost(reinterpret_cast<void**>(&host), n * sizeof(float)), cudaSuccess, "cudaMallocHost");
    for (int i = 0; i < n; ++i) host[i] = -1.0f;
    launch_fill(dx, n, 0.0f, dim3((n + 255) / 256), dim3(256), s);
    check_error(cudaMemcpyAsync(host, dx, n * sizeof(float), cudaMemcpyDeviceToHost, s), cudaSuccess,
                "cudaMemcpyAsync into pinned memory");
    int arrived = 0;
    for (int i = 0; i < n; ++i) arrived += host[i] == static_cast<float>(i);
    check(arrived == 0, "read without synchronizing: %d/%d values arrived (0 required: the copy has not run)", arrived, n);
    check_error(cudaStreamSynchronize(s), cudaSuccess, "cudaStreamSynchronize");
    arrived = 0;
    for (int i = 0; i < n; ++i) arrived += host[i] == static_cast<float>(i);
    check(arrived == n, "read after cudaStreamSynchronize: %d/%d values arrived", arrived, n);

    // An event recorded after the copy is the other correct wait.
    cudaEvent_t done;
    check_error(cudaEventCreate(&done), cudaSuccess, "cudaEventCreate");
    launch_fill(dx, n, 1000.0f, dim3((n + 255) / 256), dim3(256), s);
    check_error(cudaMemcpyAsync(host, dx, n * sizeof(float), cudaMemcpyDeviceToHost, s), cudaSuccess, "cudaMemcpyAsync");
    check_error(cudaEventRecord(done, s), cudaSuccess, "cudaEventRecord");
    arrived = 0;
    for (int i = 0; i < n; ++i) arrived += host[i] == static_cast<float>(i) + 1000.0f;
    check(arrived == 0, "second copy, before the event: %d/%d arrived (0 required)", arrived, n);
    check_error(cudaEventSynchronize(done), cudaSuccess, "cudaEventSynchronize");
    arrived = 0;
    for (int i = 0; i < n; ++i) arrived += host[i] == static_cast<float>(i) + 1000.0f;
    check(arrived == n, "second copy, after the event: %d/%d arrived", arrived, n);
    cudaEventDestroy(done);
    cudaFreeHost(host);
    cudaFree(dx);
    cudaStreamDestroy(s);
}

// ---- (f) launch configurations the device refuses

void launch_checks(const std::vector<std::string>&) {
    float* dx = device_floats(2048);
    const long fills = cae_emu_launch_count("fill_kernel");
    launch_fill(dx, 2048, 0.0f, dim3(1), dim3(1025), nullptr);
    check_error(cudaGetLastError(), cudaErrorInvalidConfiguration, "1025 threads per block");
    check_error(cudaGetLastError(), cudaSuccess, "cudaGetLastError again (the error is not sticky)");
    launch_fill(dx, 2048, 0.0f, dim3(1, 65536), dim3(32), nullptr);
    check_error(cudaGetLastError(), cudaErrorInvalidConfiguration, "grid.y = 65536");
    launch_fill(dx, 2048, 0.0f, dim3(1, 1, 65536), dim3(32), nullptr);
    check_error(cudaGetLastError(), cudaErrorInvalidConfiguration, "grid.z = 65536");
    launch_fill(dx, 2048, 0.0f, dim3(1), dim3(1, 1, 65), nullptr);
    check_error(cudaGetLastError(), cudaErrorInvalidConfiguration, "block.z = 65");
    launch_fill(dx, 2048, 0.0f, dim3(2), dim3(1024), nullptr);
    check_error(cudaGetLastError(), cudaSuccess, "1024 threads per block, grid.y = 1");
    check_error(cudaDeviceSynchronize(), cudaSuccess, "cudaDeviceSynchronize");
    check(cae_emu_launch_count("fill_kernel") == fills + 1, "fill_kernel ran %ld time(s) (1: the refused launches never run)",
          cae_emu_launch_count("fill_kernel") - fills);

    const int floats = 49 * 1024 / 4;  // 49 KiB: above the 48 KiB a kernel gets without opting in
    float* dout = device_floats(floats);
    launch_dynamic_smem(dout, floats);
    check_error(cudaGetLastError(), cudaErrorInvalidValue, "49 KiB of dynamic shared memory without the attribute");
    check(cae_emu_launch_count("dynamic_smem_kernel") == 0, "the refused kernel did not run");
    check_error(allow_dynamic_smem(49 * 1024), cudaSuccess, "cudaFuncSetAttribute(MaxDynamicSharedMemorySize, 49 KiB)");
    launch_dynamic_smem(dout, floats);
    check_error(cudaGetLastError(), cudaSuccess, "49 KiB after opting in");
    const std::vector<float> out = from_device(dout, floats);
    int exact = 0;
    for (int i = 0; i < floats; ++i) exact += out[i] == static_cast<float>(floats - 1 - i);
    check(exact == floats, "the 49 KiB buffer round trip: %d/%d exact", exact, floats);
    launch_dynamic_smem(dout, floats + 1);
    check_error(cudaGetLastError(), cudaErrorInvalidValue, "4 bytes more than the attribute allows");
    cudaFree(dx);
    cudaFree(dout);
}

// ---- (g) host code dereferencing a device pointer

void child_host_deref(const std::vector<std::string>&) {
    float* dx = device_floats(64);
    check_error(cudaMemset(dx, 0, 64 * sizeof(float)), cudaSuccess, "cudaMemset");
    const std::vector<float> v = from_device(dx, 64);
    std::printf("copy ok %g, device pointer %d\n", v[63], cae_emu_is_device_pointer(dx));
    std::fflush(stdout);
    const float leaked = *static_cast<volatile float*>(dx);
    std::printf("returned: read %g\n", leaked);
}

void host_deref(const std::vector<std::string>&) {
    const ChildResult c = run_self({"child_host_deref"}, {{"CAE_EMU_DEVICE_MEMORY", "arena"}, asan_without_segv_handler()});
    check(contains(c.out, "copy ok 0, device pointer 1"), "the copy through the runtime works, the pointer is device memory");
    const bool ok = c.signal == SIGSEGV && contains(c.err, "host code dereferenced device memory") &&
                    !contains(c.out, "returned");
    if (!check(ok, "the host read dies with SIGSEGV (signal %d, exit %d) and the emulator's message", c.signal, c.exit_code))
        std::fputs(head(c.out + c.err, 12).c_str(), stdout);
    else
        std::fputs(head(c.err, 1).c_str(), stdout);
}

// ---- (h) stream capture into a graph

void graph_capture(const std::vector<std::string>&) {
    const int n = 300;
    cudaStream_t s;
    check_error(cudaStreamCreate(&s), cudaSuccess, "cudaStreamCreate");
    float* dx = device_floats(n);
    check_error(cudaMemset(dx, 0, n * sizeof(float)), cudaSuccess, "cudaMemset");
    const long adds = cae_emu_launch_count("add_kernel");
    check_error(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess, "cudaStreamBeginCapture");
    launch_add(dx, n, 1.0f, s);
    launch_add(dx, n, 2.0f, s);
    cudaGraph_t graph = nullptr;
    check_error(cudaStreamEndCapture(s, &graph), cudaSuccess, "cudaStreamEndCapture");
    check(cae_emu_launch_count("add_kernel") == adds && from_device(dx, n)[n - 1] == 0.0f,
          "captured work did not run at capture (x[n-1] = %g)", from_device(dx, n)[n - 1]);
    cudaGraphExec_t exec = nullptr;
    check_error(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess, "cudaGraphInstantiate");
    for (int launch = 1; launch <= 2; ++launch) {
        check_error(cudaGraphLaunch(exec, s), cudaSuccess, "cudaGraphLaunch");
        check_error(cudaStreamSynchronize(s), cudaSuccess, "cudaStreamSynchronize");
        const std::vector<float> x = from_device(dx, n);
        int exact = 0;
        for (float v : x) exact += v == 3.0f * launch;
        check(exact == n, "after graph launch %d: %d/%d elements = %g", launch, exact, n, 3.0f * launch);
    }
    check(cae_emu_launch_count("add_kernel") == adds + 4, "add_kernel ran %ld times (4 expected)",
          cae_emu_launch_count("add_kernel") - adds);

    // Waiting for a capturing stream is refused and spoils the capture.
    check_error(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess, "second cudaStreamBeginCapture");
    launch_add(dx, n, 1.0f, s);
    check_error(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize during capture");
    cudaGraph_t spoiled = reinterpret_cast<cudaGraph_t>(&graph);  // not null: EndCapture must clear it
    check_error(cudaStreamEndCapture(s, &spoiled), cudaErrorStreamCaptureInvalidated, "cudaStreamEndCapture after it");
    check(spoiled == nullptr, "no graph comes out of the spoiled capture");
    cudaGetLastError();
    check(from_device(dx, n)[0] == 6.0f, "the spoiled capture's work never ran (x[0] = %g, 6 expected)",
          from_device(dx, n)[0]);
    launch_add(dx, n, 1.0f, s);
    check_error(cudaStreamSynchronize(s), cudaSuccess, "the stream works after the spoiled capture");
    check(from_device(dx, n)[0] == 7.0f, "x[0] = %g (7 expected)", from_device(dx, n)[0]);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaFree(dx);
    cudaStreamDestroy(s);
}

}  // namespace

int main(int argc, char** argv) {
    return run_cases(argc, argv,
                     {
                         {"missing_barrier", missing_barrier},
                         {"swapped_fragments", swapped_fragments},
                         {"off_by_one_shared", off_by_one_shared},
                         {"off_by_one_padding", off_by_one_padding},
                         {"read_past_allocation", read_past_allocation},
                         {"shuffle_after_exit", shuffle_after_exit},
                         {"disjoint_masks", disjoint_masks},
                         {"launch_bounds", launch_bounds},
                         {"missing_stream_sync", missing_stream_sync},
                         {"launch_checks", launch_checks},
                         {"host_deref", host_deref},
                         {"graph_capture", graph_capture},
                         {"child_block_sum", child_block_sum, true},
                         {"child_read_past_end", child_read_past_end, true},
                         {"child_host_deref", child_host_deref, true},
                     });
}
