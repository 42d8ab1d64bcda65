// Mean squared error and the L2 norm: sums of squares in double, deterministic. Pass 1: a fixed
// grid (a function of n only) where each thread adds its grid-stride elements and each block
// adds its threads in a fixed tree; pass 2: one block adds the block sums in a fixed order and
// writes the scalar. The scalar stays on the device.
#include <algorithm>
#include <cmath>

#include "cuda/cuda_backend.h"
#include "cuda/kernels.cuh"

namespace cae::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;

int sum_blocks(int64_t n) {
    return static_cast<int>(std::min<int64_t>(kMaxBlocks, std::max<int64_t>(1, ceil_div<int64_t>(n, kThreads * 8))));
}

// partial[block] = sum of (a - b)^2 over the block's elements (b == null: 0); the difference in
// float, its square and the sum in double, as the CPU backend does.
__global__ void __launch_bounds__(kThreads)
    sum_squares_kernel(double* __restrict__ partial, const float* __restrict__ a, const float* __restrict__ b,
                       int64_t n) {
    __shared__ double shared[kWarp];
    double s = 0.0;
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const double d = b ? static_cast<double>(a[i] - b[i]) : static_cast<double>(a[i]);
        s += d * d;
    }
    s = block_sum(s, shared);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

enum class Finish { Mean, Sqrt };

// *out = float(total / n) or float(sqrt(total)).
template <Finish F>
__global__ void __launch_bounds__(kThreads)
    finish_kernel(float* __restrict__ out, const double* __restrict__ partial, int blocks, int64_t n) {
    __shared__ double shared[kWarp];
    double s = 0.0;
    for (int i = threadIdx.x; i < blocks; i += blockDim.x) s += partial[i];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) {
        *out = F == Finish::Mean ? static_cast<float>(s / static_cast<double>(n)) : static_cast<float>(sqrt(s));
    }
}

__global__ void mse_backward_kernel(float* __restrict__ dpred, const float* __restrict__ pred,
                                    const float* __restrict__ target, int64_t n, float coef) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) dpred[i] += coef * (pred[i] - target[i]);
}

__global__ void set_scalar_kernel(float* out, float value) { *out = value; }

}  // namespace

void CudaBackend::mse_forward(float* loss, const float* pred, const float* target, int64_t n) {
    use_device();
    if (n <= 0) {
        set_scalar_kernel<<<1, 1, 0, stream_>>>(loss, 0.0f);
        CAE_CUDA_CHECK_LAUNCH("set_scalar_kernel");
        return;
    }
    const int blocks = sum_blocks(n);
    Scratch partial(*this, blocks * sizeof(double));
    sum_squares_kernel<<<blocks, kThreads, 0, stream_>>>(partial.as<double>(), pred, target, n);
    CAE_CUDA_CHECK_LAUNCH("sum_squares_kernel");
    finish_kernel<Finish::Mean><<<1, kThreads, 0, stream_>>>(loss, partial.as<double>(), blocks, n);
    CAE_CUDA_CHECK_LAUNCH("finish_kernel<mean>");
}

void CudaBackend::mse_backward(float* dpred, const float* pred, const float* target, int64_t n, float scale) {
    if (dpred == nullptr || n <= 0) return;
    use_device();
    const float coef = static_cast<float>(2.0 * static_cast<double>(scale) / static_cast<double>(n));
    mse_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(dpred, pred, target, n, coef);
    CAE_CUDA_CHECK_LAUNCH("mse_backward_kernel");
}

void CudaBackend::l2_norm(float* out, const float* x, int64_t n) {
    use_device();
    if (n <= 0) {
        set_scalar_kernel<<<1, 1, 0, stream_>>>(out, 0.0f);
        CAE_CUDA_CHECK_LAUNCH("set_scalar_kernel");
        return;
    }
    const int blocks = sum_blocks(n);
    Scratch partial(*this, blocks * sizeof(double));
    sum_squares_kernel<<<blocks, kThreads, 0, stream_>>>(partial.as<double>(), x, nullptr, n);
    CAE_CUDA_CHECK_LAUNCH("sum_squares_kernel");
    finish_kernel<Finish::Sqrt><<<1, kThreads, 0, stream_>>>(out, partial.as<double>(), blocks, n);
    CAE_CUDA_CHECK_LAUNCH("finish_kernel<sqrt>");
}

}  // namespace cae::cuda
