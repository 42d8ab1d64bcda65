// Element-wise and row-wise ops of the CPU backend: fill, axpy, row copies, bias, GELU and the
// LayerScale residual. Memory-bound loops split into contiguous ranges across the team.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "cpu/cpu_backend.h"
#include "cpu/parallel.h"
#include "cpu/simd.h"

namespace cae::cpu {

namespace {

constexpr int64_t kStreamGrain = int64_t{1} << 16;  // elements per thread for streaming loops
constexpr int64_t kGeluGrain = int64_t{1} << 13;    // GELU costs ~2 ns per element

// Calls f(begin, end) on contiguous ranges of [0, n), one per thread of the team.
template <class F>
void for_ranges(int64_t n, int threads, int64_t grain, F&& f) {
    const int team = team_size(threads, n, grain);
    if (team == 1) {
        f(int64_t{0}, n);
        return;
    }
#pragma omp parallel num_threads(team)
    {
        const int64_t t = omp_get_thread_num();
        const int64_t parts = omp_get_num_threads();
        // Range ends rounded to 16 elements keep every range but the last vector-aligned.
        const int64_t per = (n / parts + 15) / 16 * 16;
        const int64_t begin = std::min(n, t * per);
        const int64_t end = t == parts - 1 ? n : std::min(n, begin + per);
        if (begin < end) f(begin, end);
    }
}

}  // namespace

// x [n] -> x Phi(x); out may alias x.
CAE_MULTIVERSION void gelu_forward_range(float* out, const float* x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const f32x8 v = load8(x + i);
        store8(out + i, v * normal_cdf8(v));
    }
    if (i < n) {
        float tail[8] = {};
        std::memcpy(tail, x + i, (n - i) * sizeof(float));
        const f32x8 v = load8(tail);
        store8(tail, v * normal_cdf8(v));
        std::memcpy(out + i, tail, (n - i) * sizeof(float));
    }
}

// dx += dout * GELU'(x), GELU'(x) = Phi(x) + x phi(x)
CAE_MULTIVERSION void gelu_backward_range(float* dx, const float* dout, const float* x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const f32x8 v = load8(x + i);
        f32x8 pdf;
        const f32x8 cdf = normal_cdf8(v, &pdf);
        store8(dx + i, load8(dx + i) + load8(dout + i) * (cdf + v * pdf));
    }
    if (i < n) {
        float tail[8] = {};
        std::memcpy(tail, x + i, (n - i) * sizeof(float));
        const f32x8 v = load8(tail);
        f32x8 pdf;
        const f32x8 cdf = normal_cdf8(v, &pdf);
        store8(tail, cdf + v * pdf);
        for (int64_t j = 0; i + j < n; ++j) dx[i + j] += dout[i + j] * tail[j];
    }
}

void CpuBackend::fill(float* x, float value, int64_t n) {
    for_ranges(n, threads_, kStreamGrain, [&](int64_t b, int64_t e) { std::fill(x + b, x + e, value); });
}

void CpuBackend::axpy(float* y, const float* x, float alpha, int64_t n) {
    for_ranges(n, threads_, kStreamGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) y[i] += alpha * x[i];
    });
}

void CpuBackend::copy_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                           int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
#pragma omp parallel for num_threads(team_size(threads_, rows * cols, kStreamGrain)) schedule(static)
    for (int64_t r = 0; r < rows; ++r)
        std::memmove(dst + r * ld_dst, src + r * ld_src, cols * sizeof(float));
}

// dst [rows, cols] (row stride ld_dst) += src [rows, cols] (row stride ld_src)
void CpuBackend::add_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                          int64_t cols) {
    const bool parallel = rows * cols >= (int64_t(1) << 15) && rows > 1;
#pragma omp parallel for num_threads(threads_) schedule(static) if (parallel)
    for (int64_t r = 0; r < rows; ++r) {
        float* d = dst + r * ld_dst;
        const float* s = src + r * ld_src;
        for (int64_t c = 0; c < cols; ++c) d[c] += s[c];
    }
}


// out [rows, cols] (row stride ld) += bias [cols]
void CpuBackend::add_bias(float* out, int64_t ld, const float* bias, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
#pragma omp parallel for num_threads(team_size(threads_, rows * cols, kStreamGrain)) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        float* row = out + r * ld;
        for (int64_t c = 0; c < cols; ++c) row[c] += bias[c];
    }
}

// dbias [cols] += sum over rows of dout [rows, cols] (row stride ld), in double.
void CpuBackend::bias_backward(float* dbias, const float* dout, int64_t ld, int64_t rows, int64_t cols) {
    if (dbias == nullptr || rows <= 0 || cols <= 0) return;
    const ColumnPartials partials(rows, cols, 1);
#pragma omp parallel for num_threads(team_size(threads_, rows * cols, kStreamGrain)) schedule(static)
    for (int64_t k = 0; k < partials.chunks(); ++k) {
        double* sum = partials.slots(k, 0);
        std::fill(sum, sum + cols, 0.0);
        const int64_t end = std::min(rows, (k + 1) * ColumnPartials::kRows);
        for (int64_t r = k * ColumnPartials::kRows; r < end; ++r) {
            const float* row = dout + r * ld;
            for (int64_t c = 0; c < cols; ++c) sum[c] += row[c];
        }
    }
    partials.add_to(dbias, 0, threads_);
}

void CpuBackend::gelu_forward(Dest dest, const float* x, int64_t n) {
    through_fp32(dest, 1, n, n, [&](float* out) {
        for_ranges(n, threads_, kGeluGrain, [&](int64_t b, int64_t e) { gelu_forward_range(out + b, x + b, e - b); });
    });
}

void CpuBackend::gelu_backward(Dest dest, const float* dout, const float* x, int64_t n) {
    through_fp32(dest, 1, n, n, [&](float* dx) {
        if (dx == nullptr) return;
        for_ranges(n, threads_, kGeluGrain,
                   [&](int64_t b, int64_t e) { gelu_backward_range(dx + b, dout + b, x + b, e - b); });
    });
}

// x, y, out [B, T, C]: out = x + s[b] gamma[c] y; out may alias x.
void CpuBackend::residual_forward(float* out, const float* x, const float* y, const float* gamma,
                                  const float* sample_scale, int64_t B, int64_t T, int64_t C) {
    const int64_t rows = B * T;
    if (rows <= 0 || C <= 0) return;
#pragma omp parallel for num_threads(team_size(threads_, rows * C, kStreamGrain)) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float s = sample_scale ? sample_scale[r / T] : 1.0f;
        const float* xr = x + r * C;
        const float* yr = y + r * C;
        float* o = out + r * C;
        if (gamma) {
            for (int64_t c = 0; c < C; ++c) o[c] = xr[c] + s * gamma[c] * yr[c];
        } else {
            for (int64_t c = 0; c < C; ++c) o[c] = xr[c] + s * yr[c];
        }
    }
}

// dx += dout; dy += s[b] gamma[c] dout; dgamma[c] += sum_{b,t} s[b] dout y (in double).
void CpuBackend::residual_backward(float* dx, Dest dy_dest, float* dgamma, const float* dout, const float* y,
                                   const float* gamma, const float* sample_scale, int64_t B, int64_t T, int64_t C) {
    through_fp32(dy_dest, B * T, C, C, [&](float* dy) {
        const int64_t rows = B * T;
        if (rows <= 0 || C <= 0) return;
        const int team = team_size(threads_, rows * C, kStreamGrain);
        if (dx || dy) {
#pragma omp parallel for num_threads(team) schedule(static)
            for (int64_t r = 0; r < rows; ++r) {
                const float s = sample_scale ? sample_scale[r / T] : 1.0f;
                const float* d = dout + r * C;
                if (dx) {
                    float* o = dx + r * C;
                    for (int64_t c = 0; c < C; ++c) o[c] += d[c];
                }
                if (dy) {
                    float* o = dy + r * C;
                    if (gamma) {
                        for (int64_t c = 0; c < C; ++c) o[c] += s * gamma[c] * d[c];
                    } else {
                        for (int64_t c = 0; c < C; ++c) o[c] += s * d[c];
                    }
                }
            }
        }
        if (dgamma) {
            const ColumnPartials partials(rows, C, 1);
#pragma omp parallel for num_threads(team) schedule(static)
            for (int64_t k = 0; k < partials.chunks(); ++k) {
                double* sum = partials.slots(k, 0);
                std::fill(sum, sum + C, 0.0);
                const int64_t end = std::min(rows, (k + 1) * ColumnPartials::kRows);
                for (int64_t r = k * ColumnPartials::kRows; r < end; ++r) {
                    const double s = sample_scale ? sample_scale[r / T] : 1.0;
                    const float* d = dout + r * C;
                    const float* yr = y + r * C;
                    for (int64_t c = 0; c < C; ++c) sum[c] += s * (static_cast<double>(d[c]) * yr[c]);
                }
            }
            partials.add_to(dgamma, 0, threads_);
        }
    });
}

}  // namespace cae::cpu
