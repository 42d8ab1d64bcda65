// Token selection (gather / scatter-add of rows by index) and patch extraction.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/cpu_backend.h"
#include "cpu/parallel.h"

namespace cae::cpu {

namespace {

constexpr int64_t kStreamGrain = int64_t{1} << 15;  // elements per thread

}  // namespace

// out[b, j, :] = x[b, idx[b, j], :] (+= when accumulate)
void CpuBackend::gather_tokens(float* out, int64_t out_bstride, const float* x, int64_t x_bstride,
                               const int32_t* idx, int64_t B, int64_t n_sel, int64_t C,
                               bool accumulate) {
    const int64_t rows = B * n_sel;
    if (rows <= 0 || C <= 0) return;
#pragma omp parallel for num_threads(team_size(threads_, rows * C, kStreamGrain)) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t b = r / n_sel, j = r % n_sel;
        const float* src = x + b * x_bstride + static_cast<int64_t>(idx[r]) * C;
        float* dst = out + b * out_bstride + j * C;
        if (accumulate) {
            for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
        } else {
            std::memcpy(dst, src, C * sizeof(float));
        }
    }
}

// dx[b, idx[b, j], :] += dout[b, j, :]. The indices of one b are distinct, so the rows of one b
// may be written in parallel; with dx_bstride 0 every b adds into the same rows, in b order.
void CpuBackend::scatter_add_tokens(float* dx, int64_t dx_bstride, const float* dout,
                                    int64_t dout_bstride, const int32_t* idx, int64_t B,
                                    int64_t n_sel, int64_t C) {
    if (dx == nullptr || B <= 0 || n_sel <= 0 || C <= 0) return;
    const int team = team_size(threads_, B * n_sel * C, kStreamGrain);
    auto add_row = [&](int64_t b, int64_t j) {
        const float* src = dout + b * dout_bstride + j * C;
        float* dst = dx + b * dx_bstride + static_cast<int64_t>(idx[b * n_sel + j]) * C;
        for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
    };
    if (dx_bstride == 0) {
#pragma omp parallel num_threads(team)
        for (int64_t b = 0; b < B; ++b) {
#pragma omp for schedule(static)
            for (int64_t j = 0; j < n_sel; ++j) add_row(b, j);
        }
    } else {
#pragma omp parallel for num_threads(team) schedule(static)
        for (int64_t r = 0; r < B * n_sel; ++r) add_row(r / n_sel, r % n_sel);
    }
}

namespace {

// Patch (gy, gx) of one image [C, H, W] into `patch` (C p p values in `order`).
void write_patch(float* patch, const float* image, int64_t C, int64_t H, int64_t W, int64_t p, int64_t gy,
                 int64_t gx, PatchOrder order) {
    for (int64_t c = 0; c < C; ++c) {
        const float* plane = image + c * H * W + (gy * p) * W + gx * p;
        for (int64_t py = 0; py < p; ++py) {
            const float* src = plane + py * W;
            if (order == PatchOrder::ChannelsFirst) {
                std::memcpy(patch + (c * p + py) * p, src, p * sizeof(float));
            } else {
                for (int64_t px = 0; px < p; ++px) patch[(py * p + px) * C + c] = src[px];
            }
        }
    }
}

}  // namespace

// img [B, C, H, W] -> out [B, (H/p)(W/p), C p p]; patch (gy, gx) is token gy (W/p) + gx.
void CpuBackend::patchify(float* out, const float* img, int64_t B, int64_t C, int64_t H, int64_t W,
                          int64_t p, PatchOrder order) {
    const int64_t gh = H / p, gw = W / p, P = C * p * p;
    if (B <= 0 || gh <= 0 || gw <= 0 || C <= 0) return;
#pragma omp parallel for num_threads(team_size(threads_, B * gh * gw * P, kStreamGrain)) schedule(static)
    for (int64_t bg = 0; bg < B * gh; ++bg) {
        const int64_t b = bg / gh, gy = bg % gh;
        for (int64_t gx = 0; gx < gw; ++gx)
            write_patch(out + ((b * gh + gy) * gw + gx) * P, img + b * C * H * W, C, H, W, p, gy, gx, order);
    }
}

void CpuBackend::patchify_gather(float* out, const float* img, const int32_t* idx, int64_t B, int64_t n_sel,
                                 int64_t C, int64_t H, int64_t W, int64_t p, PatchOrder order) {
    const int64_t gw = W / p, P = C * p * p;
    if (B <= 0 || n_sel <= 0 || gw <= 0 || C <= 0) return;
#pragma omp parallel for num_threads(team_size(threads_, B * n_sel * P, kStreamGrain)) schedule(static)
    for (int64_t r = 0; r < B * n_sel; ++r) {
        const int64_t token = idx[r];
        write_patch(out + r * P, img + (r / n_sel) * C * H * W, C, H, W, p, token / gw, token % gw, order);
    }
}

}  // namespace cae::cpu
