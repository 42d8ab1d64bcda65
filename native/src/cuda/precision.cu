// Mixed precision on the CUDA backend: the bf16 copies of tensors and the BF16 GEMM (operands
// rounded to bfloat16, fp32 accumulation; see GemmPrecision in backend/backend.h).
//  - cuBLASLt: bf16 A and B (the caller's copies, or rounded here into scratch), fp32 C and D,
//    CUBLAS_COMPUTE_32F: the tensor cores' bf16 path.
//  - fallback kernels: the operands rounded to bf16 *values* in fp32 scratch, then the one-pass
//    TF32 mma.sync kernel (or SIMT when forced): a bf16 value is exact in TF32 and the products
//    are exact in fp32, so this computes the same GEMM, more slowly.
#include <cuda_bf16.h>

#include "cuda/cuda_backend.h"
#include "cuda/kernels.cuh"

namespace cae::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void round_bf16_kernel(__nv_bfloat16* __restrict__ dst, const float* __restrict__ src, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) dst[i] = __float2bfloat16_rn(src[i]);
}

// dst[i] = float(bf16(src[i])), or float(src16[i]) when src16 is given.
__global__ void bf16_values_kernel(float* __restrict__ dst, const float* __restrict__ src,
                                   const __nv_bfloat16* __restrict__ src16, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        dst[i] = src16 != nullptr ? __bfloat162float(src16[i]) : __bfloat162float(__float2bfloat16_rn(src[i]));
    }
}

}  // namespace

void CudaBackend::round_to_bf16(uint16_t* dst, const float* src, int64_t n) {
    if (n <= 0) return;
    use_device();
    launch_round_bf16(dst, src, n);
}

void CudaBackend::launch_round_bf16(uint16_t* dst, const float* src, int64_t n) {
    round_bf16_kernel<<<grid_for(n, kThreads, 8192), kThreads, 0, stream_>>>(reinterpret_cast<__nv_bfloat16*>(dst),
                                                                            src, n);
    CAE_CUDA_CHECK_LAUNCH("round_bf16_kernel");
}

bool CudaBackend::run_gemm_bf16(const GemmArgs& g, bool fallback) {
    const int64_t span_a = gemm_span_a(g), span_b = gemm_span_b(g);
    if (gemm_kind_ == GemmKind::CublasLt) {
        GemmArgs r = g;
        std::unique_ptr<Scratch> sa, sb;
        if (r.a_bf16 == nullptr) {
            sa = std::make_unique<Scratch>(*this, static_cast<size_t>(span_a) * sizeof(uint16_t));
            launch_round_bf16(sa->as<uint16_t>(), g.a, span_a);
            r.a_bf16 = sa->as<uint16_t>();
        }
        if (r.b_bf16 == nullptr) {
            sb = std::make_unique<Scratch>(*this, static_cast<size_t>(span_b) * sizeof(uint16_t));
            launch_round_bf16(sb->as<uint16_t>(), g.b, span_b);
            r.b_bf16 = sb->as<uint16_t>();
        }
        if (cublaslt_->run(r)) return true;
        if (!fallback) return false;
        // No bf16 algorithm for this shape: the fallback below.
    }
    Scratch fa(*this, static_cast<size_t>(span_a) * sizeof(float)), fb(*this, static_cast<size_t>(span_b) * sizeof(float));
    bf16_values_kernel<<<grid_for(span_a, kThreads, 8192), kThreads, 0, stream_>>>(
        fa.as<float>(), g.a, reinterpret_cast<const __nv_bfloat16*>(g.a_bf16), span_a);
    CAE_CUDA_CHECK_LAUNCH("bf16_values_kernel");
    bf16_values_kernel<<<grid_for(span_b, kThreads, 8192), kThreads, 0, stream_>>>(
        fb.as<float>(), g.b, reinterpret_cast<const __nv_bfloat16*>(g.b_bf16), span_b);
    CAE_CUDA_CHECK_LAUNCH("bf16_values_kernel");
    GemmArgs r = g;
    r.precision = GemmPrecision::FP32;
    r.a = fa.as<float>();
    r.b = fb.as<float>();
    r.a_bf16 = r.b_bf16 = nullptr;
    if (gemm_kind_ == GemmKind::Simt) {
        gemm_simt(r, stream_);
    } else {
        gemm_mma(r, /*single_pass_tf32=*/true, stream_);  // exact on bf16 values
    }
    return true;
}

}  // namespace cae::cuda
