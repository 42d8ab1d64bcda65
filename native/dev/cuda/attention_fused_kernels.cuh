// The fused attention kernels (the steps of attention_fused.h run by one thread block) and their
// launch, defined as templates over the head dim. Each attention_fused_hd*.cu instantiates them
// for a few head dims (CAE_FUSED_ATTENTION_KERNELS): with unrolled loops they are slow to compile,
// and separate files build in parallel. fused_attention.cu dispatches to them.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "attention_fused.h"
#include "cuda/cuda_check.h"

namespace cae::cuda::fused_kernels {

// Launches pass P's kernel for head dim HD (the caller checks the launch).
template <int HD>
void launch(fused::Pass pass, dim3 grid, size_t smem_bytes, const fused::Args& a, cudaStream_t stream);
// Lets pass P's kernel for head dim HD use `bytes` of dynamic shared memory.
template <int HD>
void set_max_smem(fused::Pass pass, int bytes);

#ifdef CAE_FUSED_ATTENTION_DEFINE_KERNELS
// One block: per step, the cooperative load of the step's tiles between two barriers (skipped,
// barriers included, when the previous step left them in place; the same decision in every
// thread), then the thread's row work. Threads without a row still load and reach the barriers.
template <int HD, fused::Pass P>
__global__ void __launch_bounds__(fused::kRows) fused_kernel(fused::Args a) {
    extern __shared__ __align__(16) float smem[];
    const int64_t pair = blockIdx.y, tile = blockIdx.x;
    const int tid = static_cast<int>(threadIdx.x);
    fused::RowState<HD> r;
    const int steps = fused::step_count<HD, P>(a);
    for (int s = 0; s < steps; ++s) {
        const unsigned what = fused::step_loads<HD, P>(a, s);
        if (what) {
            __syncthreads();
            fused::step_load<HD, P>(a, pair, s, what, smem, tid);
            __syncthreads();
        }
        fused::step_work<HD, P>(a, pair, tile, s, smem, tid, r);
    }
}

template <int HD>
void launch(fused::Pass pass, dim3 grid, size_t smem_bytes, const fused::Args& a, cudaStream_t stream) {
    switch (pass) {
        case fused::Pass::Forward:
            fused_kernel<HD, fused::Pass::Forward><<<grid, fused::kRows, smem_bytes, stream>>>(a);
            break;
        case fused::Pass::BackwardQ:
            fused_kernel<HD, fused::Pass::BackwardQ><<<grid, fused::kRows, smem_bytes, stream>>>(a);
            break;
        case fused::Pass::BackwardK:
            fused_kernel<HD, fused::Pass::BackwardK><<<grid, fused::kRows, smem_bytes, stream>>>(a);
            break;
    }
}

template <int HD>
void set_max_smem(fused::Pass pass, int bytes) {
    const auto attr = cudaFuncAttributeMaxDynamicSharedMemorySize;
    switch (pass) {
        case fused::Pass::Forward:
            CAE_CUDA_CHECK(cudaFuncSetAttribute(fused_kernel<HD, fused::Pass::Forward>, attr, bytes));
            break;
        case fused::Pass::BackwardQ:
            CAE_CUDA_CHECK(cudaFuncSetAttribute(fused_kernel<HD, fused::Pass::BackwardQ>, attr, bytes));
            break;
        case fused::Pass::BackwardK:
            CAE_CUDA_CHECK(cudaFuncSetAttribute(fused_kernel<HD, fused::Pass::BackwardK>, attr, bytes));
            break;
    }
}

#define CAE_FUSED_ATTENTION_KERNELS(HD)                                                                        \
    template void launch<HD>(fused::Pass, dim3, size_t, const fused::Args&, cudaStream_t);                     \
    template void set_max_smem<HD>(fused::Pass, int)
#endif

}  // namespace cae::cuda::fused_kernels
