// Multi-head attention, one (batch, head) pair per task across the team. The products of a pair
// are single-threaded built-in GEMMs on the column blocks of q, k, v (row strides ldq, ldk,
// ldv); the score rows live in per-thread scratch padded to whole vectors, so the softmax runs
// on full vectors only.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/parallel.h"
#include "cpu/simd.h"

namespace cae::cpu {

namespace {

int64_t padded(int64_t n) { return (n + 7) / 8 * 8; }

// 1 in the lanes of the last vector of a row that hold columns < n, else 0.
CAE_INLINE f32x8 tail_mask(int64_t n) {
    const f32x8 lane = {0, 1, 2, 3, 4, 5, 6, 7};
    const int64_t rem = n - (padded(n) - 8);
    return lane < static_cast<float>(rem) ? splat8(1.0f) : splat8(0.0f);
}

// Asks for `rows` row segments of `width` floats (row stride ld): the next pair's rows of q, k,
// v are strided and would otherwise arrive one cache miss at a time.
void prefetch_rows(const float* base, int64_t rows, int64_t ld, int64_t width) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < width; c += 16) __builtin_prefetch(base + r * ld + c);
}

}  // namespace

// s [rows, ld] (ld = n rounded up to 8): each row = softmax of its first n columns; the padding
// columns become 0.
CAE_MULTIVERSION void softmax_rows(float* s, int64_t ld, int64_t rows, int64_t n) {
    const f32x8 mask = tail_mask(n);
    const f32x8 neg_inf = splat8(-INFINITY);
    const int64_t last = ld - 8;
    for (int64_t r = 0; r < rows; ++r) {
        float* row = s + r * ld;
        f32x8 mv = mask > 0.0f ? load8(row + last) : neg_inf;
        for (int64_t c = 0; c < last; c += 8) mv = max8(mv, load8(row + c));
        const float mx = hmax8(mv);
        f32x8 sv{};
        for (int64_t c = 0; c < ld; c += 8) {
            f32x8 e = exp8(load8(row + c) - mx);
            if (c == last) e *= mask;
            store8(row + c, e);
            sv += e;
        }
        const float inv = static_cast<float>(1.0 / hsum8(sv));
        for (int64_t c = 0; c < ld; c += 8) store8(row + c, load8(row + c) * inv);
    }
}

// p, dp [rows, ld] (padding columns 0): dp = p * (dp - sum(dp * p)) per row.
CAE_MULTIVERSION void softmax_backward_rows(float* dp, const float* p, int64_t ld, int64_t rows) {
    for (int64_t r = 0; r < rows; ++r) {
        float* d = dp + r * ld;
        const float* pr = p + r * ld;
        f32x8 acc{};
        for (int64_t c = 0; c < ld; c += 8) acc += load8(d + c) * load8(pr + c);
        const float dot = static_cast<float>(hsum8(acc));
        for (int64_t c = 0; c < ld; c += 8) store8(d + c, load8(pr + c) * (load8(d + c) - dot));
    }
}

namespace {

// The stored rows x cols block of x (row stride ld) rounded to bf16 values, packed (row stride
// cols) into `buf`, one buffer per operand and thread.
const float* bf16_block(const float* x, int64_t rows, int64_t cols, int64_t ld, std::vector<float>& buf) {
    buf.resize(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) buf[static_cast<size_t>(r * cols + c)] = bf16_to_float(float_to_bf16(x[r * ld + c]));
    return buf.data();
}

// C = alpha op(A) op(B) + beta C, on the calling thread; BF16 rounds A and B first (see
// AttentionShape::precision).
void gemm1(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
           GemmPrecision precision = GemmPrecision::FP32) {
    if (precision == GemmPrecision::BF16) {
        thread_local std::vector<float> a_buf, b_buf;
        const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
        a = bf16_block(a, a_rows, a_cols, lda, a_buf);
        b = bf16_block(b, b_rows, b_cols, ldb, b_buf);
        lda = a_cols;
        ldb = b_cols;
    }
    GemmArgs g = gemm_product(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    gemm_builtin(g, 1);
}

int attention_team(int threads, const AttentionShape& s) {
    const int64_t pairs = s.batch * s.heads;
    const int64_t work = pairs * s.q_len * s.kv_len * s.head_dim;
    return std::min<int>(team_size(threads, work, 1 << 15), static_cast<int>(std::max<int64_t>(pairs, 1)));
}

}  // namespace

// Per (b, h): P = softmax(scale q k^T) [Nq, Nk] into probs (skipped when probs is null: no
// backward follows); out = P v.
void CpuBackend::attention_forward(Dest dest, float* probs, const float* q, const float* k, const float* v,
                                   const AttentionShape& s) {
    through_fp32(dest, s.batch * s.q_len, s.heads * s.head_dim, s.ldo, [&](float* out) {
        const int64_t pairs = s.batch * s.heads;
        const int64_t nq = s.q_len, nk = s.kv_len, hd = s.head_dim, ld = padded(nk);
        if (pairs <= 0 || nq <= 0 || hd <= 0) return;
        if (nk <= 0) {  // no keys: an empty sum
            for (int64_t r = 0; r < s.batch * nq; ++r) std::fill(out + r * s.ldo, out + r * s.ldo + s.heads * hd, 0.0f);
            return;
        }
        const int team = attention_team(threads_, s);
        float* scratch = thread_scratch<float>(team * nq * ld);
        std::fill(scratch, scratch + team * nq * ld, 0.0f);  // the padding columns stay 0
        RegionErrors errors;
#pragma omp parallel for num_threads(team) schedule(static)
        for (int64_t bh = 0; bh < pairs; ++bh) {
            errors.run([&] {
                const int64_t b = bh / s.heads, h = bh % s.heads;
                if (bh + 1 < pairs) {
                    const int64_t nb = (bh + 1) / s.heads, nh = (bh + 1) % s.heads;
                    prefetch_rows(q + nb * nq * s.ldq + nh * hd, nq, s.ldq, hd);
                    prefetch_rows(k + nb * nk * s.ldk + nh * hd, nk, s.ldk, hd);
                    prefetch_rows(v + nb * nk * s.ldv + nh * hd, nk, s.ldv, hd);
                }
                float* sc = scratch + omp_get_thread_num() * nq * ld;
                gemm1(false, true, nq, nk, hd, s.scale, q + b * nq * s.ldq + h * hd, s.ldq,
                      k + b * nk * s.ldk + h * hd, s.ldk, 0.0f, sc, ld, s.precision);
                softmax_rows(sc, ld, nq, nk);
                if (probs) {
                    float* p = probs + bh * nq * nk;
                    for (int64_t i = 0; i < nq; ++i) std::memcpy(p + i * nk, sc + i * ld, nk * sizeof(float));
                }
                gemm1(false, false, nq, hd, nk, 1.0f, sc, ld, v + b * nk * s.ldv + h * hd, s.ldv, 0.0f,
                      out + b * nq * s.ldo + h * hd, s.ldo, s.precision);
            });
        }
        errors.rethrow();
    });
}

// Per (b, h): dv += P^T dO; dP = dO v^T; dS = P * (dP - rowsum(dP * P));
// dq += scale dS k; dk += scale dS^T q.
void CpuBackend::attention_backward(Dest dq_dest, Dest dk_dest, Dest dv_dest, const float* dout, const float* probs,
                                    const float* q, const float* k, const float* v, const AttentionShape& s) {
    const int64_t cols = s.heads * s.head_dim;
    through_fp32(dq_dest, s.batch * s.q_len, cols, s.ldq, [&](float* dq) {
    through_fp32(dk_dest, s.batch * s.kv_len, cols, s.ldk, [&](float* dk) {
    through_fp32(dv_dest, s.batch * s.kv_len, cols, s.ldv, [&](float* dv) {
        const int64_t pairs = s.batch * s.heads;
        const int64_t nq = s.q_len, nk = s.kv_len, hd = s.head_dim, ld = padded(nk);
        if (pairs <= 0 || nq <= 0 || nk <= 0 || hd <= 0 || (!dq && !dk && !dv)) return;
        const int team = attention_team(threads_, s);
        // Per thread: P and dP/dS, [Nq, ld] each.
        float* scratch = thread_scratch<float>(team * 2 * nq * ld);
        std::fill(scratch, scratch + team * 2 * nq * ld, 0.0f);  // the padding columns stay 0
        RegionErrors errors;
#pragma omp parallel for num_threads(team) schedule(static)
        for (int64_t bh = 0; bh < pairs; ++bh) {
            errors.run([&] {
                const int64_t b = bh / s.heads, h = bh % s.heads;
                const int64_t qo = b * nq * s.ldq + h * hd;
                const int64_t ko = b * nk * s.ldk + h * hd;
                const int64_t vo = b * nk * s.ldv + h * hd;
                const float* dob = dout + b * nq * s.ldo + h * hd;
                if (bh + 1 < pairs) {
                    const int64_t nb = (bh + 1) / s.heads, nh = (bh + 1) % s.heads;
                    prefetch_rows(q + nb * nq * s.ldq + nh * hd, nq, s.ldq, hd);
                    prefetch_rows(k + nb * nk * s.ldk + nh * hd, nk, s.ldk, hd);
                    prefetch_rows(v + nb * nk * s.ldv + nh * hd, nk, s.ldv, hd);
                    prefetch_rows(dout + nb * nq * s.ldo + nh * hd, nq, s.ldo, hd);
                    if (dq) prefetch_rows(dq + nb * nq * s.ldq + nh * hd, nq, s.ldq, hd);
                    if (dk) prefetch_rows(dk + nb * nk * s.ldk + nh * hd, nk, s.ldk, hd);
                    if (dv) prefetch_rows(dv + nb * nk * s.ldv + nh * hd, nk, s.ldv, hd);
                }
                float* pp = scratch + omp_get_thread_num() * 2 * nq * ld;
                float* ds = pp + nq * ld;
                const float* p = probs + bh * nq * nk;
                for (int64_t i = 0; i < nq; ++i) std::memcpy(pp + i * ld, p + i * nk, nk * sizeof(float));
                const GemmPrecision pr = s.precision;
                if (dv) gemm1(true, false, nk, hd, nq, 1.0f, pp, ld, dob, s.ldo, 1.0f, dv + vo, s.ldv, pr);
                if (!dq && !dk) return;
                gemm1(false, true, nq, nk, hd, 1.0f, dob, s.ldo, v + vo, s.ldv, 0.0f, ds, ld, pr);
                softmax_backward_rows(ds, pp, ld, nq);
                if (dq) gemm1(false, false, nq, hd, nk, s.scale, ds, ld, k + ko, s.ldk, 1.0f, dq + qo, s.ldq, pr);
                if (dk) gemm1(true, false, nk, hd, nq, s.scale, ds, ld, q + qo, s.ldq, 1.0f, dk + ko, s.ldk, pr);
            });
        }
        errors.rethrow();
    });
    });
    });
}

}  // namespace cae::cpu
