// LayerNorm over the last dimension and the per-row normalization of pixel targets: one warp
// per row, row statistics summed in double as the CPU backend does. The weight and bias
// gradients are deterministic column sums (kernels.cuh).
#include <cuda_bf16.h>

#include <cmath>

#include "cuda/cuda_backend.h"
#include "cuda/kernels.cuh"

namespace cae::cuda {

namespace {

constexpr int kRowsPerBlock = 8;  // one warp per row
constexpr int kRowThreads = kRowsPerBlock * kWarp;

unsigned int row_blocks(int64_t rows) { return static_cast<unsigned int>(ceil_div<int64_t>(rows, kRowsPerBlock)); }

// One warp normalizes one row xr [C] into o (fp32, or its bf16 rounding), with the row statistics
// in double; lane 0 writes mean and rstd (either may be null). Lane l reads elements l, l + 32, ...
// only, so a caller may have just written them from the same lanes.
template <class Out>
__device__ __forceinline__ void layernorm_row(Out* __restrict__ o, float* __restrict__ mean, float* __restrict__ rstd,
                                              const float* xr, const float* __restrict__ weight,
                                              const float* __restrict__ bias, int64_t row, int64_t C, float eps,
                                              int lane) {
    double sum = 0.0;
    for (int64_t c = lane; c < C; c += kWarp) sum += xr[c];
    const double mu = warp_sum(sum) / static_cast<double>(C);
    double sq = 0.0;
    for (int64_t c = lane; c < C; c += kWarp) {
        const double d = static_cast<double>(xr[c]) - mu;
        sq += d * d;
    }
    const double var = warp_sum(sq) / static_cast<double>(C);
    const float rs = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
    const float m = static_cast<float>(mu);
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = rs;
    }
    for (int64_t c = lane; c < C; c += kWarp) {
        const float xhat = (xr[c] - m) * rs;
        store_out(o + c, xhat * (weight ? weight[c] : 1.0f) + (bias ? bias[c] : 0.0f));
    }
}

// x [rows, C] -> out (fp32, or its bf16 rounding); mean, rstd [rows] (either may be null).
// Biased variance.
template <class Out>
__global__ void __launch_bounds__(kRowThreads)
    layernorm_forward_kernel(Out* __restrict__ out, float* __restrict__ mean, float* __restrict__ rstd,
                             const float* __restrict__ x, const float* __restrict__ weight,
                             const float* __restrict__ bias, int64_t rows, int64_t C, float eps) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= rows) return;  // the whole warp leaves together
    layernorm_row(out + row * C, mean, rstd, x + row * C, weight, bias, row, C, eps, lane);
}

// mid = x + s[b] gamma[c] y (the expression of residual_forward_kernel), then the LayerNorm of
// mid as layernorm_forward_kernel computes it.
template <class Out>
__global__ void __launch_bounds__(kRowThreads)
    residual_layernorm_kernel(float* __restrict__ mid, Out* __restrict__ out, float* __restrict__ mean,
                              float* __restrict__ rstd, const float* __restrict__ x, const float* __restrict__ y,
                              const float* __restrict__ gamma, const float* __restrict__ scale,
                              const float* __restrict__ weight, const float* __restrict__ bias, int64_t rows,
                              int64_t T, int64_t C, float eps) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= rows) return;
    const float s = scale ? scale[row / T] : 1.0f;
    const float* xr = x + row * C;
    const float* yr = y + row * C;
    float* mr = mid + row * C;
    for (int64_t c = lane; c < C; c += kWarp) {
        const float f = gamma ? s * gamma[c] : s;
        mr[c] = xr[c] + f * yr[c];
    }
    layernorm_row(out + row * C, mean, rstd, mr, weight, bias, row, C, eps, lane);
}

// dx += rstd (g - mean(g) - xhat mean(g xhat)), g = dout * weight, sums in double.
__global__ void __launch_bounds__(kRowThreads)
    layernorm_backward_dx_kernel(float* __restrict__ dx, const float* __restrict__ dout, const float* __restrict__ x,
                                 const float* __restrict__ weight, const float* __restrict__ mean,
                                 const float* __restrict__ rstd, int64_t rows, int64_t C) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= rows) return;
    const float* xr = x + row * C;
    const float* d = dout + row * C;
    const float m = mean[row], rs = rstd[row];
    double sum_g = 0.0, sum_gx = 0.0;
    for (int64_t c = lane; c < C; c += kWarp) {
        const float g = d[c] * (weight ? weight[c] : 1.0f);
        const float xhat = (xr[c] - m) * rs;
        sum_g += g;
        sum_gx += g * xhat;
    }
    const float mean_g = static_cast<float>(warp_sum(sum_g) / static_cast<double>(C));
    const float mean_gx = static_cast<float>(warp_sum(sum_gx) / static_cast<double>(C));
    float* o = dx + row * C;
    for (int64_t c = lane; c < C; c += kWarp) {
        const float g = d[c] * (weight ? weight[c] : 1.0f);
        const float xhat = (xr[c] - m) * rs;
        o[c] += rs * (g - mean_g - xhat * mean_gx);
    }
}

// [dout * xhat, dout] per element, for dweight and dbias.
struct LayerNormParamGrads {
    const float* dout;
    const float* x;
    const float* mean;
    const float* rstd;
    int64_t C;
    __device__ void operator()(int64_t r, int64_t c, double* v) const {
        const float d = dout[r * C + c];
        const float xhat = (x[r * C + c] - mean[r]) * rstd[r];
        v[0] = static_cast<double>(d) * xhat;
        v[1] = d;
    }
};

// In place per row of x [rows, P]: (x - mean) / sqrt(var + eps), var unbiased (P - 1); P = 1
// gives var 0 as in the CPU backend. Each element is read and written by the same lane.
__global__ void __launch_bounds__(kRowThreads)
    normalize_rows_kernel(float* __restrict__ x, int64_t rows, int64_t P, float eps) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= rows) return;
    float* xr = x + row * P;
    double sum = 0.0;
    for (int64_t c = lane; c < P; c += kWarp) sum += xr[c];
    const double mu = warp_sum(sum) / static_cast<double>(P);
    double sq = 0.0;
    for (int64_t c = lane; c < P; c += kWarp) {
        const double d = static_cast<double>(xr[c]) - mu;
        sq += d * d;
    }
    sq = warp_sum(sq);
    const double var = P > 1 ? sq / static_cast<double>(P - 1) : 0.0;
    const float inv = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
    const float m = static_cast<float>(mu);
    for (int64_t c = lane; c < P; c += kWarp) xr[c] = (xr[c] - m) * inv;
}

void check_rows(int64_t rows) {
    if (ceil_div<int64_t>(rows, kRowsPerBlock) > 0x7fffffff) fail(CAE_ERR_UNSUPPORTED, "too many rows: ", rows);
}

}  // namespace

void CudaBackend::layernorm_forward(Dest out, float* mean, float* rstd, const float* x, const float* weight,
                                    const float* bias, int64_t rows, int64_t C, float eps) {
    if (rows <= 0 || C <= 0) return;
    check_rows(rows);
    use_device();
    with_dest(out, [&](auto* o) {
        layernorm_forward_kernel<<<row_blocks(rows), kRowThreads, 0, stream_>>>(o, mean, rstd, x, weight, bias, rows, C,
                                                                                 eps);
    });
    CAE_CUDA_CHECK_LAUNCH("layernorm_forward_kernel");
}

void CudaBackend::residual_layernorm_forward(float* mid, Dest out, float* mean, float* rstd, const float* x,
                                             const float* y, const float* gamma, const float* sample_scale,
                                             const float* weight, const float* bias, int64_t B, int64_t T, int64_t C,
                                             float eps) {
    const int64_t rows = B * T;
    if (rows <= 0 || C <= 0) return;
    check_rows(rows);
    use_device();
    with_dest(out, [&](auto* o) {
        residual_layernorm_kernel<<<row_blocks(rows), kRowThreads, 0, stream_>>>(
            mid, o, mean, rstd, x, y, gamma, sample_scale, weight, bias, rows, T, C, eps);
    });
    CAE_CUDA_CHECK_LAUNCH("residual_layernorm_kernel");
}

void CudaBackend::layernorm_backward(float* dx, float* dweight, float* dbias, const float* dout, const float* x,
                                     const float* weight, const float* mean, const float* rstd, int64_t rows,
                                     int64_t C) {
    if (rows <= 0 || C <= 0 || (!dx && !dweight && !dbias)) return;
    check_rows(rows);
    use_device();
    if (dx) {
        layernorm_backward_dx_kernel<<<row_blocks(rows), kRowThreads, 0, stream_>>>(dx, dout, x, weight, mean, rstd,
                                                                                     rows, C);
        CAE_CUDA_CHECK_LAUNCH("layernorm_backward_dx_kernel");
    }
    if (dweight || dbias) {
        Scratch partials(*this, column_partials_size(2, rows, C) * sizeof(double));
        float* const outs[2] = {dweight, dbias};
        column_sums<2>(outs, partials.as<double>(), rows, C, LayerNormParamGrads{dout, x, mean, rstd, C}, stream_);
    }
}

void CudaBackend::normalize_rows(float* x, int64_t rows, int64_t P, float eps) {
    if (rows <= 0 || P <= 0) return;
    check_rows(rows);
    use_device();
    normalize_rows_kernel<<<row_blocks(rows), kRowThreads, 0, stream_>>>(x, rows, P, eps);
    CAE_CUDA_CHECK_LAUNCH("normalize_rows_kernel");
}

}  // namespace cae::cuda
