// LayerNorm over the last dimension and the per-row normalization of pixel targets, rows in
// parallel. Row statistics and the weight/bias gradients are accumulated in double.
#include <algorithm>
#include <cmath>

#include "cpu/cpu_backend.h"
#include "cpu/parallel.h"
#include "cpu/simd.h"

namespace cae::cpu {

namespace {

constexpr int64_t kRowGrain = int64_t{1} << 14;     // elements per thread
constexpr int64_t kStreamGrain = int64_t{1} << 15;  // elements per thread of normalize_rows

}  // namespace

// x [rows, C] -> out [rows, C]; mean, rstd [rows]. Biased variance, like torch.nn.LayerNorm.
CAE_MULTIVERSION void layernorm_forward_rows(float* out, float* mean, float* rstd, const float* x,
                                             const float* weight, const float* bias, int64_t r0,
                                             int64_t r1, int64_t C, float eps) {
    for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * C;
        float* o = out + r * C;
        f64x4 s0{}, s1{};
        int64_t c = 0;
        for (; c + 8 <= C; c += 8) {
            const f32x8 v = load8(xr + c);
            s0 += low_f64(v);
            s1 += high_f64(v);
        }
        double sum = hsum(s0 + s1);
        for (; c < C; ++c) sum += xr[c];
        const double mu = sum / static_cast<double>(C);

        f64x4 q0{}, q1{};
        c = 0;
        for (; c + 8 <= C; c += 8) {
            const f32x8 v = load8(xr + c);
            const f64x4 d0 = low_f64(v) - mu, d1 = high_f64(v) - mu;
            q0 += d0 * d0;
            q1 += d1 * d1;
        }
        double sq = hsum(q0 + q1);
        for (; c < C; ++c) sq += (xr[c] - mu) * (xr[c] - mu);
        const double var = sq / static_cast<double>(C);
        const float rs = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
        const float m = static_cast<float>(mu);
        if (mean) mean[r] = m;
        if (rstd) rstd[r] = rs;
        for (c = 0; c < C; ++c) {
            const float xhat = (xr[c] - m) * rs;
            o[c] = xhat * (weight ? weight[c] : 1.0f) + (bias ? bias[c] : 0.0f);
        }
    }
}

// Rows [r0, r1) of one chunk: dx += rstd (g - mean(g) - xhat mean(g xhat)), g = dout * weight;
// dweight_sum[c] += dout xhat, dbias_sum[c] += dout (both may be null).
CAE_MULTIVERSION void layernorm_backward_rows(float* dx, double* dweight_sum, double* dbias_sum,
                                              const float* dout, const float* x, const float* weight,
                                              const float* mean, const float* rstd, int64_t r0,
                                              int64_t r1, int64_t C) {
    for (int64_t r = r0; r < r1; ++r) {
        const float* xr = x + r * C;
        const float* d = dout + r * C;
        const float m = mean[r], rs = rstd[r];
        if (dweight_sum || dbias_sum) {
            for (int64_t c = 0; c < C; ++c) {
                const float xhat = (xr[c] - m) * rs;
                if (dweight_sum) dweight_sum[c] += static_cast<double>(d[c]) * xhat;
                if (dbias_sum) dbias_sum[c] += d[c];
            }
        }
        if (dx == nullptr) continue;
        // sum(g) and sum(g xhat) over the row, in double.
        f64x4 g0{}, g1{}, gx0{}, gx1{};
        int64_t c = 0;
        const f32x8 mv = splat8(m), rv = splat8(rs);
        for (; c + 8 <= C; c += 8) {
            const f32x8 g = load8(d + c) * (weight ? load8(weight + c) : splat8(1.0f));
            const f32x8 xhat = (load8(xr + c) - mv) * rv;
            g0 += low_f64(g);
            g1 += high_f64(g);
            const f32x8 gx = g * xhat;
            gx0 += low_f64(gx);
            gx1 += high_f64(gx);
        }
        double sum_g = hsum(g0 + g1), sum_gx = hsum(gx0 + gx1);
        for (; c < C; ++c) {
            const float g = d[c] * (weight ? weight[c] : 1.0f);
            sum_g += g;
            sum_gx += g * ((xr[c] - m) * rs);
        }
        const float mean_g = static_cast<float>(sum_g / static_cast<double>(C));
        const float mean_gx = static_cast<float>(sum_gx / static_cast<double>(C));
        float* o = dx + r * C;
        for (c = 0; c < C; ++c) {
            const float g = d[c] * (weight ? weight[c] : 1.0f);
            const float xhat = (xr[c] - m) * rs;
            o[c] += rs * (g - mean_g - xhat * mean_gx);
        }
    }
}

void CpuBackend::layernorm_forward(Dest dest, float* mean, float* rstd, const float* x, const float* weight,
                                   const float* bias, int64_t rows, int64_t C, float eps) {
    through_fp32(dest, rows, C, C, [&](float* out) {
        if (rows <= 0 || C <= 0) return;
        const int team = team_size(threads_, rows * C, kRowGrain);
        const int64_t block = 16;  // rows per scheduling unit
#pragma omp parallel for num_threads(team) schedule(static)
        for (int64_t r = 0; r < rows; r += block)
            layernorm_forward_rows(out, mean, rstd, x, weight, bias, r, std::min(rows, r + block), C, eps);
    });
}

void CpuBackend::layernorm_backward(float* dx, float* dweight, float* dbias, const float* dout,
                                    const float* x, const float* weight, const float* mean,
                                    const float* rstd, int64_t rows, int64_t C) {
    if (rows <= 0 || C <= 0 || (!dx && !dweight && !dbias)) return;
    const int team = team_size(threads_, rows * C, kRowGrain);
    const ColumnPartials partials(rows, C, 2);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int64_t k = 0; k < partials.chunks(); ++k) {
        double* dw = dweight ? partials.slots(k, 0) : nullptr;
        double* db = dbias ? partials.slots(k, 1) : nullptr;
        if (dw) std::fill(dw, dw + C, 0.0);
        if (db) std::fill(db, db + C, 0.0);
        const int64_t r0 = k * ColumnPartials::kRows;
        layernorm_backward_rows(dx, dw, db, dout, x, weight, mean, rstd, r0,
                                std::min(rows, r0 + ColumnPartials::kRows), C);
    }
    partials.add_to(dweight, 0, threads_);
    partials.add_to(dbias, 1, threads_);
}

// x [rows, P], per row: x = (x - mean) / sqrt(var + eps), var = sum (x - mean)^2 / (P - 1).
void CpuBackend::normalize_rows(float* x, int64_t rows, int64_t P, float eps) {
    if (rows <= 0 || P <= 0) return;
#pragma omp parallel for num_threads(team_size(threads_, rows * P, kStreamGrain)) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        float* row = x + r * P;
        double sum = 0.0;
        for (int64_t c = 0; c < P; ++c) sum += row[c];
        const double mean = sum / static_cast<double>(P);
        double sq = 0.0;
        for (int64_t c = 0; c < P; ++c) sq += (row[c] - mean) * (row[c] - mean);
        // P = 1 has no unbiased variance (torch gives NaN); 0 keeps the row finite.
        const double var = P > 1 ? sq / static_cast<double>(P - 1) : 0.0;
        const float inv = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
        const float m = static_cast<float>(mean);
        for (int64_t c = 0; c < P; ++c) row[c] = (row[c] - m) * inv;
    }
}

}  // namespace cae::cpu
