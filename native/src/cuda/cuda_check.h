// Checking CUDA calls: every runtime call goes through CAE_CUDA_CHECK, every kernel launch is
// followed by CAE_CUDA_CHECK_LAUNCH. A failure throws cae::Error naming the call and the
// runtime's message (CAE_ERR_OUT_OF_MEMORY for allocation failures, CAE_ERR_DEVICE otherwise);
// nothing aborts the process.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>

#include "common/error.h"
#include "cuda/options.h"

namespace cae::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
    const cae_status status =
        err == cudaErrorMemoryAllocation ? CAE_ERR_OUT_OF_MEMORY : CAE_ERR_DEVICE;
    fail(status, call, " failed: ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") at ", file, ":",
         line);
}

// CAE_CUDA_SYNC=1 (options.h): synchronize the device after every kernel launch, so that a fault is
// reported at the kernel that caused it. Read once per process.
inline bool debug_sync() {
    static const bool on = Options::from_environment().sync;
    return on;
}

// Ceiling division for grid sizes.
template <class T>
inline T ceil_div(T a, T b) {
    return (a + b - 1) / b;
}

// Blocks for a 1-D grid-stride loop over n elements: enough to fill the device, never more
// than the grid limit.
inline unsigned int grid_for(int64_t n, int threads, int64_t max_blocks = 4096) {
    int64_t blocks = ceil_div<int64_t>(n, threads);
    if (blocks < 1) blocks = 1;
    if (blocks > max_blocks) blocks = max_blocks;
    return static_cast<unsigned int>(blocks);
}

}  // namespace cae::cuda

#define CAE_CUDA_CHECK(call)                                                              \
    do {                                                                                  \
        cudaError_t cae_cuda_err_ = (call);                                               \
        if (cae_cuda_err_ != cudaSuccess) {                                               \
            cudaGetLastError(); /* clear a non-sticky error so the next call is clean */ \
            ::cae::cuda::throw_cuda_error(cae_cuda_err_, #call, __FILE__, __LINE__);      \
        }                                                                                 \
    } while (0)

// After a <<<...>>> launch: configuration errors (grid too large, too much shared memory)
// are reported here; faults inside a kernel surface at the next synchronizing call (or here,
// naming the kernel, with CAE_CUDA_SYNC=1). A sticky fault of an earlier kernel may also
// surface here under this kernel's name.
#define CAE_CUDA_CHECK_LAUNCH(kernel_name)                                                \
    do {                                                                                  \
        cudaError_t cae_cuda_err_ = cudaGetLastError();                                   \
        if (cae_cuda_err_ == cudaSuccess && ::cae::cuda::debug_sync())                    \
            cae_cuda_err_ = cudaDeviceSynchronize();                                      \
        if (cae_cuda_err_ != cudaSuccess) {                                               \
            ::cae::cuda::throw_cuda_error(cae_cuda_err_, "launch of " kernel_name, __FILE__, __LINE__); \
        }                                                                                 \
    } while (0)
