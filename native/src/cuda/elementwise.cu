// Element-wise and row-wise ops: fill, axpy, row copies, bias, GELU and the LayerScale residual.
// Grid-stride loops over flat indices; the column sums (bias, LayerScale gradients) use the
// deterministic two-pass reduction of kernels.cuh.
#include <cuda_bf16.h>

#include "cuda/cuda_backend.h"
#include "cuda/kernels.cuh"

namespace cae::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void fill_kernel(float* __restrict__ x, float value, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) x[i] = value;
}

__global__ void axpy_kernel(float* __restrict__ y, const float* __restrict__ x, float alpha, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) y[i] += alpha * x[i];
}

// dst[r, c] = src[r, c] (ADD: +=) for a rows x cols block; ld_src may be 0 (one source row).
template <bool ADD>
__global__ void rows_kernel(float* __restrict__ dst, int64_t ld_dst, const float* __restrict__ src, int64_t ld_src,
                            int64_t rows, int64_t cols) {
    const int64_t n = rows * cols;
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t r = i / cols, c = i - r * cols;
        const float v = src[r * ld_src + c];
        float* d = dst + r * ld_dst + c;
        if (ADD) {
            *d += v;
        } else {
            *d = v;
        }
    }
}

__global__ void add_bias_kernel(float* __restrict__ out, int64_t ld, const float* __restrict__ bias, int64_t rows,
                                int64_t cols) {
    const int64_t n = rows * cols;
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t r = i / cols, c = i - r * cols;
        out[r * ld + c] += bias[c];
    }
}

// Phi(x) = 0.5 erfc(-x / sqrt 2), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
__device__ __forceinline__ float normal_cdf(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
__device__ __forceinline__ float normal_pdf(float x) { return 0.39894228040143268f * expf(-0.5f * x * x); }

// An fp32 out may alias x: each element is read, then written, by the same thread.
template <typename T>
__global__ void gelu_forward_kernel(T* out, const float* x, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const float v = x[i];
        store_out(out + i, v * normal_cdf(v));
    }
}

// dx += dout * GELU'(x), or for a bf16 dx its rounding written
template <typename T>
__global__ void gelu_backward_kernel(T* __restrict__ dx, const float* __restrict__ dout, const float* __restrict__ x,
                                     int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const float v = x[i];
        store_grad(dx + i, dout[i] * (normal_cdf(v) + v * normal_pdf(v)));
    }
}

// out = x + s[b] gamma[c] y; out may alias x (same element, same thread).
__global__ void residual_forward_kernel(float* out, const float* x, const float* __restrict__ y,
                                        const float* __restrict__ gamma, const float* __restrict__ scale, int64_t T,
                                        int64_t C, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t r = i / C, c = i - r * C;
        const float s = scale ? scale[r / T] : 1.0f;
        const float f = gamma ? s * gamma[c] : s;
        out[i] = x[i] + f * y[i];
    }
}

// dx += dout; dy += s[b] gamma[c] dout, or for a bf16 dy its rounding written (either may be null).
template <typename T>
__global__ void residual_backward_kernel(float* __restrict__ dx, T* __restrict__ dy, const float* __restrict__ dout,
                                         const float* __restrict__ gamma, const float* __restrict__ scale, int64_t T_,
                                         int64_t C, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const float d = dout[i];
        if (dx) dx[i] += d;
        if (dy) {
            const int64_t r = i / C, c = i - r * C;
            const float s = scale ? scale[r / T_] : 1.0f;
            const float f = gamma ? s * gamma[c] : s;
            store_grad(dy + i, f * d);
        }
    }
}

struct BiasGrad {
    const float* dout;
    int64_t ld;
    __device__ void operator()(int64_t r, int64_t c, double* v) const { v[0] = dout[r * ld + c]; }
};

// An operand's element as a GEMM reads it: fp32, or its bf16 value (a16's, or a's rounded).
struct OperandValue {
    const float* a;
    const __nv_bfloat16* a16;
    int64_t ld;
    bool bf16;
    __device__ void operator()(int64_t r, int64_t c, double* v) const {
        const int64_t i = r * ld + c;
        if (!bf16) {
            v[0] = a[i];
        } else {
            v[0] = __bfloat162float(a16 != nullptr ? a16[i] : __float2bfloat16_rn(a[i]));
        }
    }
};

// s[b] * (dout * y) in double, as the CPU backend sums it.
struct GammaGrad {
    const float* dout;
    const float* y;
    const float* scale;
    int64_t T, C;
    __device__ void operator()(int64_t r, int64_t c, double* v) const {
        const double s = scale ? static_cast<double>(scale[r / T]) : 1.0;
        v[0] = s * (static_cast<double>(dout[r * C + c]) * static_cast<double>(y[r * C + c]));
    }
};

}  // namespace

void CudaBackend::fill(float* x, float value, int64_t n) {
    if (n <= 0) return;
    use_device();
    fill_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(x, value, n);
    CAE_CUDA_CHECK_LAUNCH("fill_kernel");
}

void CudaBackend::axpy(float* y, const float* x, float alpha, int64_t n) {
    if (n <= 0) return;
    use_device();
    axpy_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(y, x, alpha, n);
    CAE_CUDA_CHECK_LAUNCH("axpy_kernel");
}

void CudaBackend::copy_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                            int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
    use_device();
    rows_kernel<false><<<grid_for(rows * cols, kThreads), kThreads, 0, stream_>>>(dst, ld_dst, src, ld_src, rows, cols);
    CAE_CUDA_CHECK_LAUNCH("rows_kernel<copy>");
}

void CudaBackend::add_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                           int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
    use_device();
    rows_kernel<true><<<grid_for(rows * cols, kThreads), kThreads, 0, stream_>>>(dst, ld_dst, src, ld_src, rows, cols);
    CAE_CUDA_CHECK_LAUNCH("rows_kernel<add>");
}

void CudaBackend::add_bias(float* out, int64_t ld, const float* bias, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
    use_device();
    add_bias_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, stream_>>>(out, ld, bias, rows, cols);
    CAE_CUDA_CHECK_LAUNCH("add_bias_kernel");
}

void CudaBackend::bias_backward(float* dbias, const float* dout, int64_t ld, int64_t rows, int64_t cols) {
    if (dbias == nullptr || rows <= 0 || cols <= 0) return;
    use_device();
    Scratch partials(*this, column_partials_size(1, rows, cols) * sizeof(double));
    float* const outs[1] = {dbias};
    column_sums<1>(outs, partials.as<double>(), rows, cols, BiasGrad{dout, ld}, stream_);
}

void CudaBackend::operand_column_sums(float* out, const float* a, const uint16_t* a16, int64_t ld, int64_t rows,
                                      int64_t cols, bool bf16) {
    if (cols <= 0) return;
    fill(out, 0.0f, cols);
    if (rows <= 0) return;
    Scratch partials(*this, column_partials_size(1, rows, cols) * sizeof(double));
    float* const outs[1] = {out};
    column_sums<1>(outs, partials.as<double>(), rows, cols,
                   OperandValue{a, reinterpret_cast<const __nv_bfloat16*>(a16), ld, bf16}, stream_);
}

void CudaBackend::gelu_forward(Dest out, const float* x, int64_t n) {
    if (n <= 0) return;
    use_device();
    with_dest(out, [&](auto* o) { gelu_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(o, x, n); });
    CAE_CUDA_CHECK_LAUNCH("gelu_forward_kernel");
}

void CudaBackend::gelu_backward(Dest dx, const float* dout, const float* x, int64_t n) {
    if (dx.empty() || n <= 0) return;
    use_device();
    with_dest(dx, [&](auto* d) {
        gelu_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(d, dout, x, n);
    });
    CAE_CUDA_CHECK_LAUNCH("gelu_backward_kernel");
}

void CudaBackend::residual_forward(float* out, const float* x, const float* y, const float* gamma,
                                   const float* sample_scale, int64_t B, int64_t T, int64_t C) {
    const int64_t n = B * T * C;
    if (n <= 0) return;
    use_device();
    residual_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(out, x, y, gamma, sample_scale, T, C, n);
    CAE_CUDA_CHECK_LAUNCH("residual_forward_kernel");
}

void CudaBackend::residual_backward(float* dx, Dest dy, float* dgamma, const float* dout, const float* y,
                                    const float* gamma, const float* sample_scale, int64_t B, int64_t T, int64_t C) {
    const int64_t rows = B * T, n = rows * C;
    if (n <= 0) return;
    use_device();
    if (dx || !dy.empty()) {
        with_dest(dy, [&](auto* d) {
            residual_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(dx, d, dout, gamma, sample_scale,
                                                                                     T, C, n);
        });
        CAE_CUDA_CHECK_LAUNCH("residual_backward_kernel");
    }
    if (dgamma) {
        Scratch partials(*this, column_partials_size(1, rows, C) * sizeof(double));
        float* const outs[1] = {dgamma};
        column_sums<1>(outs, partials.as<double>(), rows, C, GammaGrad{dout, y, sample_scale, T, C}, stream_);
    }
}

}  // namespace cae::cuda
