// Token selection (gather / scatter-add of rows by index) and patch extraction.
#include "cuda/cuda_backend.h"
#include "cuda/kernels.cuh"

namespace cae::cuda {

namespace {

constexpr int kThreads = 256;

// out[b, j, :] = x[b, idx[b, j], :] (+= when ACC); x batch stride may be 0.
template <bool ACC>
__global__ void gather_tokens_kernel(float* __restrict__ out, int64_t out_bstride, const float* __restrict__ x,
                                     int64_t x_bstride, const int32_t* __restrict__ idx, int64_t n_sel, int64_t C,
                                     int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t r = i / C, c = i - r * C;  // r = b * n_sel + j
        const int64_t b = r / n_sel, j = r - b * n_sel;
        const float v = x[b * x_bstride + static_cast<int64_t>(idx[r]) * C + c];
        float* o = out + b * out_bstride + j * C + c;
        if (ACC) {
            *o += v;
        } else {
            *o = v;
        }
    }
}

// dx[b, idx[b, j], :] += dout[b, j, :] with distinct indices per b and disjoint batches
// (dx_bstride != 0): no two threads touch one element.
__global__ void scatter_add_kernel(float* __restrict__ dx, int64_t dx_bstride, const float* __restrict__ dout,
                                   int64_t dout_bstride, const int32_t* __restrict__ idx, int64_t n_sel, int64_t C,
                                   int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t r = i / C, c = i - r * C;
        const int64_t b = r / n_sel, j = r - b * n_sel;
        dx[b * dx_bstride + static_cast<int64_t>(idx[r]) * C + c] += dout[b * dout_bstride + j * C + c];
    }
}

// dx_bstride == 0: every b adds into the same rows. One thread per column walks (b, j) in
// order, so additions into one element happen in b order, as in the CPU backend.
__global__ void scatter_add_shared_kernel(float* __restrict__ dx, const float* __restrict__ dout,
                                          int64_t dout_bstride, const int32_t* __restrict__ idx, int64_t B,
                                          int64_t n_sel, int64_t C) {
    for (int64_t c = global_thread(); c < C; c += grid_threads()) {
        for (int64_t b = 0; b < B; ++b)
            for (int64_t j = 0; j < n_sel; ++j)
                dx[static_cast<int64_t>(idx[b * n_sel + j]) * C + c] += dout[b * dout_bstride + j * C + c];
    }
}

// img [B, C, H, W] -> out [B, n_sel, C*p*p]: row (b, j) is patch idx[b * n_sel + j] of image b,
// or patch j when idx is null (n_sel = gh*gw: every patch); one thread per output element.
template <bool CHANNELS_FIRST>
__global__ void patchify_kernel(float* __restrict__ out, const float* __restrict__ img,
                                const int32_t* __restrict__ idx, int64_t C, int64_t H, int64_t W, int64_t p,
                                int64_t gw, int64_t n_sel, int64_t n) {
    const int64_t P = C * p * p;
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t row = i / P, w = i - row * P;  // row = b * n_sel + j
        const int64_t b = row / n_sel;
        const int64_t token = idx != nullptr ? static_cast<int64_t>(idx[row]) : row - b * n_sel;
        const int64_t gy = token / gw, gx = token - gy * gw;
        int64_t c, py, px;
        if (CHANNELS_FIRST) {  // (c, py, px)
            c = w / (p * p);
            py = (w / p) % p;
            px = w % p;
        } else {  // (py, px, c)
            c = w % C;
            px = (w / C) % p;
            py = w / (C * p);
        }
        out[i] = img[((b * C + c) * H + gy * p + py) * W + gx * p + px];
    }
}

}  // namespace

void CudaBackend::gather_tokens(float* out, int64_t out_bstride, const float* x, int64_t x_bstride,
                                const int32_t* idx, int64_t B, int64_t n_sel, int64_t C, bool accumulate) {
    const int64_t n = B * n_sel * C;
    if (B <= 0 || n_sel <= 0 || C <= 0) return;
    use_device();
    if (accumulate) {
        gather_tokens_kernel<true><<<grid_for(n, kThreads), kThreads, 0, stream_>>>(out, out_bstride, x, x_bstride, idx,
                                                                                   n_sel, C, n);
    } else {
        gather_tokens_kernel<false><<<grid_for(n, kThreads), kThreads, 0, stream_>>>(out, out_bstride, x, x_bstride,
                                                                                    idx, n_sel, C, n);
    }
    CAE_CUDA_CHECK_LAUNCH("gather_tokens_kernel");
}

void CudaBackend::scatter_add_tokens(float* dx, int64_t dx_bstride, const float* dout, int64_t dout_bstride,
                                     const int32_t* idx, int64_t B, int64_t n_sel, int64_t C) {
    if (dx == nullptr || B <= 0 || n_sel <= 0 || C <= 0) return;
    use_device();
    if (dx_bstride == 0 && B > 1) {
        scatter_add_shared_kernel<<<grid_for(C, 128), 128, 0, stream_>>>(dx, dout, dout_bstride, idx, B, n_sel, C);
        CAE_CUDA_CHECK_LAUNCH("scatter_add_shared_kernel");
        return;
    }
    const int64_t n = B * n_sel * C;
    scatter_add_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(dx, dx_bstride, dout, dout_bstride, idx, n_sel,
                                                                       C, n);
    CAE_CUDA_CHECK_LAUNCH("scatter_add_kernel");
}

void CudaBackend::launch_patchify(float* out, const float* img, const int32_t* idx, int64_t B, int64_t n_sel, int64_t C,
                                  int64_t H, int64_t W, int64_t p, PatchOrder order) {
    const int64_t gw = W / p, n = B * n_sel * C * p * p;
    if (B <= 0 || n_sel <= 0 || C <= 0 || gw <= 0) return;
    use_device();
    if (order == PatchOrder::ChannelsFirst) {
        patchify_kernel<true><<<grid_for(n, kThreads), kThreads, 0, stream_>>>(out, img, idx, C, H, W, p, gw, n_sel, n);
    } else {
        patchify_kernel<false><<<grid_for(n, kThreads), kThreads, 0, stream_>>>(out, img, idx, C, H, W, p, gw, n_sel, n);
    }
    CAE_CUDA_CHECK_LAUNCH("patchify_kernel");
}

void CudaBackend::patchify(float* out, const float* img, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p,
                           PatchOrder order) {
    if (p <= 0 || H / p <= 0) return;
    launch_patchify(out, img, nullptr, B, (H / p) * (W / p), C, H, W, p, order);
}

void CudaBackend::patchify_gather(float* out, const float* img, const int32_t* idx, int64_t B, int64_t n_sel,
                                  int64_t C, int64_t H, int64_t W, int64_t p, PatchOrder order) {
    if (p <= 0) return;
    launch_patchify(out, img, idx, B, n_sel, C, H, W, p, order);
}

}  // namespace cae::cuda
