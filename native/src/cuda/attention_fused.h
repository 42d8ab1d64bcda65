// Fused multi-head attention for ViT lengths (up to 256 keys, head dim 32 or 64): K and V of one
// (batch, head) pair fit in shared memory, so a block of kRows threads, one query row each, does
// an exact softmax without materializing the probabilities. The forward keeps only each row's
// max and sum of exponentials (`stats`); the backward recomputes the probabilities from them.
//
// The code is written as phases of a thread block: a cooperative load of rows into shared
// memory, then per-thread work on the thread's own row with no further communication. The CUDA
// kernels (attention_fused.cu) run phase, __syncthreads(), phase; test_attention_fused.cpp runs
// the same phases on the host, every thread of every block in turn, against the CPU backend.
//
// Arithmetic, per pair, with rows i (queries) and j (keys), s_ij = scale * (q_i . k_j):
//   forward:  m_i = max_j s_ij, l_i = sum_j exp(s_ij - m_i), P_ij = exp(s_ij - m_i) / l_i,
//             out_i = sum_j P_ij v_j
//   backward: dP_ij = dO_i . v_j, D_i = sum_j P_ij dP_ij, dS_ij = P_ij (dP_ij - D_i),
//             dq_i += scale sum_j dS_ij k_j, dk_j += scale sum_i dS_ij q_i, dv_j += sum_i P_ij dO_i
// With bf16, the operands of the six products are rounded to bf16 as the batched-GEMM path
// rounds them (q, k, v, dO, and P or dS where they multiply), and the sums stay fp32.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define CAE_FUSED_FN __host__ __device__ __forceinline__
#else
#define CAE_FUSED_FN inline
#endif

namespace cae::fused {

constexpr int kRows = 64;  // threads per block, one row each
constexpr int kPad = 1;    // shared rows of HD + 1 floats: a column read by 32 rows hits 32 banks

// x rounded to the nearest bf16 value (ties to even), as a float; NaN stays NaN.
CAE_FUSED_FN float bf16_value(float x) {
#ifdef __CUDA_ARCH__
    unsigned int u = __float_as_uint(x);
#else
    uint32_t u;
    std::memcpy(&u, &x, sizeof(u));
#endif
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        u = (u | 0x00400000u) & 0xffff0000u;
    } else {
        u += 0x7fffu + ((u >> 16) & 1u);
        u &= 0xffff0000u;
    }
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    std::memcpy(&f, &u, sizeof(f));
    return f;
#endif
}

CAE_FUSED_FN float exp_f(float x) {
#ifdef __CUDA_ARCH__
    return expf(x);
#else
    return std::exp(x);
#endif
}

// One call's operands. Head h of batch item b: rows x + b*N*ld + h*HD (ld: row stride).
struct Args {
    const float *q, *k, *v;
    int64_t ldq, ldk, ldv;
    float* out;  // forward output (row stride ldo)
    const float* dout;
    int64_t ldo;
    float *dq, *dk, *dv;  // backward outputs, accumulated (+=); each may be null
    float* stats;         // [pairs, Nq, 2]: m_i, l_i
    float* rowdot;        // [pairs, Nq]: D_i (written by the query-side backward, read by the key side)
    int64_t heads, nq, nk;
    float scale;
    bool bf16;
};

template <int HD>
CAE_FUSED_FN int64_t pair_offset(int64_t pair, int64_t n, int64_t ld, int64_t heads) {
    return (pair / heads) * n * ld + (pair % heads) * HD;
}

// Four partial sums (independent chains of multiply-adds), added pairwise at the end.
template <int HD>
CAE_FUSED_FN float dot(const float* a, const float* b) {
    static_assert(HD % 4 == 0, "head dims are multiples of 4");
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma unroll
    for (int d = 0; d < HD; d += 4) {
        s0 += a[d] * b[d];
        s1 += a[d + 1] * b[d + 1];
        s2 += a[d + 2] * b[d + 2];
        s3 += a[d + 3] * b[d + 3];
    }
    return (s0 + s1) + (s2 + s3);
}

// Phase: the block's threads copy `rows` rows of HD floats (row stride ld) into shared rows of
// HD + kPad floats, rounded to bf16 values when asked.
template <int HD>
CAE_FUSED_FN void load_rows(float* dst, const float* src, int64_t ld, int64_t rows, bool bf16, int tid) {
    for (int64_t e = tid; e < rows * HD; e += kRows) {
        const int64_t r = e / HD, c = e - r * HD;
        const float x = src[r * ld + c];
        dst[r * (HD + kPad) + c] = bf16 ? bf16_value(x) : x;
    }
}

// Phase: the block's threads copy the per-row statistics m_i, l_i (and D_i when rowdot) of the
// pair's query rows into shared memory: [nq] m, [nq] l, [nq] D.
CAE_FUSED_FN void load_stats(float* dst, const float* stats, const float* rowdot, int64_t nq, int tid) {
    for (int64_t i = tid; i < nq; i += kRows) {
        dst[i] = stats[2 * i];
        dst[nq + i] = stats[2 * i + 1];
        if (rowdot) dst[2 * nq + i] = rowdot[i];
    }
}

// Shared floats of each kernel.
template <int HD>
constexpr int64_t forward_smem_floats(int64_t nk) {
    return 2 * nk * (HD + kPad);
}
template <int HD>
constexpr int64_t backward_q_smem_floats(int64_t nk) {
    return 2 * nk * (HD + kPad);
}
template <int HD>
constexpr int64_t backward_k_smem_floats(int64_t nq) {
    return 2 * nq * (HD + kPad) + 3 * nq;
}

// ---- forward: block (tile, pair) with rows i = tile * kRows + tid
template <int HD>
CAE_FUSED_FN void forward_load(const Args& a, int64_t pair, float* smem, int tid) {
    float* ks = smem;
    float* vs = smem + a.nk * (HD + kPad);
    load_rows<HD>(ks, a.k + pair_offset<HD>(pair, a.nk, a.ldk, a.heads), a.ldk, a.nk, a.bf16, tid);
    load_rows<HD>(vs, a.v + pair_offset<HD>(pair, a.nk, a.ldv, a.heads), a.ldv, a.nk, a.bf16, tid);
}

template <int HD>
CAE_FUSED_FN void forward_row(const Args& a, int64_t pair, int64_t tile, const float* smem, int tid) {
    const int64_t i = tile * kRows + tid;
    if (i >= a.nq) return;
    const float* ks = smem;
    const float* vs = smem + a.nk * (HD + kPad);
    const float* qrow = a.q + pair_offset<HD>(pair, a.nq, a.ldq, a.heads) + i * a.ldq;
    float q[HD];
#pragma unroll
    for (int d = 0; d < HD; ++d) q[d] = a.bf16 ? bf16_value(qrow[d]) : qrow[d];
    float m = -INFINITY;
    for (int64_t j = 0; j < a.nk; ++j) m = fmaxf(m, a.scale * dot<HD>(q, ks + j * (HD + kPad)));
    float l = 0.0f;
    for (int64_t j = 0; j < a.nk; ++j) l += exp_f(a.scale * dot<HD>(q, ks + j * (HD + kPad)) - m);
    const float inv = static_cast<float>(1.0 / static_cast<double>(l));
    float o[HD];
#pragma unroll
    for (int d = 0; d < HD; ++d) o[d] = 0.0f;
    for (int64_t j = 0; j < a.nk; ++j) {
        float p = exp_f(a.scale * dot<HD>(q, ks + j * (HD + kPad)) - m) * inv;
        if (a.bf16) p = bf16_value(p);
        const float* vr = vs + j * (HD + kPad);
#pragma unroll
        for (int d = 0; d < HD; ++d) o[d] += p * vr[d];
    }
    float* orow = a.out + pair_offset<HD>(pair, a.nq, a.ldo, a.heads) + i * a.ldo;
#pragma unroll
    for (int d = 0; d < HD; ++d) orow[d] = o[d];
    if (a.stats) {
        a.stats[(pair * a.nq + i) * 2] = m;
        a.stats[(pair * a.nq + i) * 2 + 1] = l;
    }
}

// ---- backward, query side: block (tile, pair) with query rows i; writes D_i and dq (+=)
template <int HD>
CAE_FUSED_FN void backward_q_load(const Args& a, int64_t pair, float* smem, int tid) {
    forward_load<HD>(a, pair, smem, tid);  // the same K and V rows
}

template <int HD>
CAE_FUSED_FN void backward_q_row(const Args& a, int64_t pair, int64_t tile, const float* smem, int tid) {
    const int64_t i = tile * kRows + tid;
    if (i >= a.nq) return;
    const float* ks = smem;
    const float* vs = smem + a.nk * (HD + kPad);
    const float* qrow = a.q + pair_offset<HD>(pair, a.nq, a.ldq, a.heads) + i * a.ldq;
    const float* drow = a.dout + pair_offset<HD>(pair, a.nq, a.ldo, a.heads) + i * a.ldo;
    float q[HD], g[HD];
#pragma unroll
    for (int d = 0; d < HD; ++d) {
        q[d] = a.bf16 ? bf16_value(qrow[d]) : qrow[d];
        g[d] = a.bf16 ? bf16_value(drow[d]) : drow[d];
    }
    const float m = a.stats[(pair * a.nq + i) * 2], l = a.stats[(pair * a.nq + i) * 2 + 1];
    const float inv = static_cast<float>(1.0 / static_cast<double>(l));
    float D = 0.0f;
    for (int64_t j = 0; j < a.nk; ++j) {
        const float p = exp_f(a.scale * dot<HD>(q, ks + j * (HD + kPad)) - m) * inv;
        D += p * dot<HD>(g, vs + j * (HD + kPad));
    }
    a.rowdot[pair * a.nq + i] = D;
    if (!a.dq) return;
    float acc[HD];
#pragma unroll
    for (int d = 0; d < HD; ++d) acc[d] = 0.0f;
    for (int64_t j = 0; j < a.nk; ++j) {
        const float* kr = ks + j * (HD + kPad);
        const float p = exp_f(a.scale * dot<HD>(q, kr) - m) * inv;
        float ds = p * (dot<HD>(g, vs + j * (HD + kPad)) - D);
        if (a.bf16) ds = bf16_value(ds);
#pragma unroll
        for (int d = 0; d < HD; ++d) acc[d] += ds * kr[d];
    }
    float* dqrow = a.dq + pair_offset<HD>(pair, a.nq, a.ldq, a.heads) + i * a.ldq;
#pragma unroll
    for (int d = 0; d < HD; ++d) dqrow[d] += a.scale * acc[d];
}

// ---- backward, key side: block (tile, pair) with key rows j; dv (+=) then dk (+=)
template <int HD>
CAE_FUSED_FN void backward_k_load(const Args& a, int64_t pair, float* smem, int tid) {
    float* qs = smem;
    float* gs = smem + a.nq * (HD + kPad);
    float* st = smem + 2 * a.nq * (HD + kPad);
    load_rows<HD>(qs, a.q + pair_offset<HD>(pair, a.nq, a.ldq, a.heads), a.ldq, a.nq, a.bf16, tid);
    load_rows<HD>(gs, a.dout + pair_offset<HD>(pair, a.nq, a.ldo, a.heads), a.ldo, a.nq, a.bf16, tid);
    load_stats(st, a.stats + pair * a.nq * 2, a.rowdot + pair * a.nq, a.nq, tid);
}

template <int HD>
CAE_FUSED_FN void backward_k_row(const Args& a, int64_t pair, int64_t tile, const float* smem, int tid) {
    const int64_t j = tile * kRows + tid;
    if (j >= a.nk) return;
    const float* qs = smem;
    const float* gs = smem + a.nq * (HD + kPad);
    const float* ms = smem + 2 * a.nq * (HD + kPad);
    const float* ls = ms + a.nq;
    const float* Ds = ls + a.nq;
    const float* krow = a.k + pair_offset<HD>(pair, a.nk, a.ldk, a.heads) + j * a.ldk;
    float kr[HD], acc[HD];
#pragma unroll
    for (int d = 0; d < HD; ++d) kr[d] = a.bf16 ? bf16_value(krow[d]) : krow[d];
    if (a.dv) {  // dv_j += sum_i P_ij dO_i
#pragma unroll
        for (int d = 0; d < HD; ++d) acc[d] = 0.0f;
        for (int64_t i = 0; i < a.nq; ++i) {
            const float inv = static_cast<float>(1.0 / static_cast<double>(ls[i]));
            float p = exp_f(a.scale * dot<HD>(qs + i * (HD + kPad), kr) - ms[i]) * inv;
            if (a.bf16) p = bf16_value(p);
            const float* gr = gs + i * (HD + kPad);
#pragma unroll
            for (int d = 0; d < HD; ++d) acc[d] += p * gr[d];
        }
        float* dvrow = a.dv + pair_offset<HD>(pair, a.nk, a.ldv, a.heads) + j * a.ldv;
#pragma unroll
        for (int d = 0; d < HD; ++d) dvrow[d] += acc[d];
    }
    if (a.dk) {  // dk_j += scale sum_i dS_ij q_i
        const float* vrow = a.v + pair_offset<HD>(pair, a.nk, a.ldv, a.heads) + j * a.ldv;
        float vr[HD];
#pragma unroll
        for (int d = 0; d < HD; ++d) {
            vr[d] = a.bf16 ? bf16_value(vrow[d]) : vrow[d];
            acc[d] = 0.0f;
        }
        for (int64_t i = 0; i < a.nq; ++i) {
            const float* qr = qs + i * (HD + kPad);
            const float inv = static_cast<float>(1.0 / static_cast<double>(ls[i]));
            const float p = exp_f(a.scale * dot<HD>(qr, kr) - ms[i]) * inv;
            float ds = p * (dot<HD>(gs + i * (HD + kPad), vr) - Ds[i]);
            if (a.bf16) ds = bf16_value(ds);
#pragma unroll
            for (int d = 0; d < HD; ++d) acc[d] += ds * qr[d];
        }
        float* dkrow = a.dk + pair_offset<HD>(pair, a.nk, a.ldk, a.heads) + j * a.ldk;
#pragma unroll
        for (int d = 0; d < HD; ++d) dkrow[d] += a.scale * acc[d];
    }
}

}  // namespace cae::fused
