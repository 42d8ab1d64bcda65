// Fused multi-head attention for ViT shapes (head dims 16 to 128 in steps of 16, up to 256
// queries and keys): a block of kRows threads owns kRows rows of one (batch, head) pair, one row
// per thread (query rows; key rows for the key side of the backward), and does an exact
// three-pass softmax without materializing the probabilities. The forward keeps only each row's
// max and sum of exponentials (`stats`); the backward recomputes the probabilities from them.
//
// A pass is a sequence of steps. Each step is a cooperative load of a tile of the other side's
// rows into shared memory (skipped when the previous step left the same tile there), then
// per-thread work on the thread's own row with no further communication. The CUDA kernels
// (attention_fused_kernels.cuh) run __syncthreads(), load, __syncthreads(), work per step;
// test_attention_fused.cpp runs the same steps on the host, every thread of every block in turn,
// against the CPU backend.
//
// Shared memory: tiles of Dims::tile rows (64, or 32 above head dim 64), never a whole sequence,
// so that a block needs at most 49,920 bytes whatever the length (head dim 64, key side; see
// smem_floats); 32-row tiles above head dim 64 keep a block near 40 KiB, so that several blocks
// share a multiprocessor. Keeping all of K and V would need 2 * 256 * 128 * 4 = 256 KiB at head
// dim 128, beyond what a block may opt into. The price is that K (or Q) is read again from global
// memory (L2) by every stage of a pass when a sequence spans several tiles; a sequence of one
// tile is read once. Tiles hold fp32 values in both precisions (rounded to bf16 values on load
// for bf16), unpadded: all threads of a block read the same row at once (a broadcast), as
// 16-byte vectors.
//
// Registers: a thread holds one HD-float row of its own at a time (q, dO, k or v, read again per
// step from global memory) and the accumulator of one slice of the head dim (all of it up to 64;
// two slices of 40, 48, 56 or 64 above), so that about HD + HD / slices floats are live instead of
// 3 HD. The per-key factors of a tile (probabilities, dS)
// pass from the row-dot phase to the accumulating phase through the thread's column of a shared
// [tile, kRows] scratch. Each slice recomputes its tile's dot products: above head dim 64 that
// repeats dot products, but every sum keeps its order and operands.
//
// Arithmetic, per pair, with rows i (queries) and j (keys), s_ij = scale * (q_i . k_j):
//   forward:  m_i = max_j s_ij, l_i = sum_j exp(s_ij - m_i), P_ij = exp(s_ij - m_i) / l_i,
//             out_i = sum_j P_ij v_j
//   backward: dP_ij = dO_i . v_j, D_i = sum_j P_ij dP_ij, dS_ij = P_ij (dP_ij - D_i),
//             dq_i += scale sum_j dS_ij k_j, dk_j += scale sum_i dS_ij q_i, dv_j += sum_i P_ij dO_i
// Every sum runs over j (or i) in increasing order, in fp32. With bf16, the operands of the six
// products are rounded to bf16 as the batched-GEMM path rounds them (q, k, v, dO, and P or dS
// where they multiply).
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

// Per head dim: rows of a shared tile, and the slices of the head dim that are accumulated one
// after the other (a multiple of 4 columns each).
template <int HD>
struct Dims {
    static constexpr int tile = HD <= 64 ? 64 : 32;
    static constexpr int slices = (HD + 63) / 64;
    static constexpr int slice = HD / slices;
    static_assert(HD % 16 == 0 && slice % 4 == 0 && slice * slices == HD, "head dims are multiples of 16");
};

// The three kernels: forward (query rows), backward query side (query rows: D_i and dq),
// backward key side (key rows: dv and dk).
enum class Pass { Forward, BackwardQ, BackwardK };

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

// The bits of bf16_value(x): its upper 16 bits.
CAE_FUSED_FN uint16_t bf16_bits(float x) {
    const float r = bf16_value(x);
#ifdef __CUDA_ARCH__
    return static_cast<uint16_t>(__float_as_uint(r) >> 16);
#else
    uint32_t u;
    std::memcpy(&u, &r, sizeof(u));
    return static_cast<uint16_t>(u >> 16);
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
    float* out;        // forward output (row stride ldo), or
    uint16_t* out16;   // when out is null: the forward output's bf16 bits (row stride ldo)
    const float* dout;
    int64_t ldo;
    float *dq, *dk, *dv;  // backward outputs, accumulated (+=); each may be null; with grads16 ...
    bool grads16;         // ... they point to bf16 bits instead, overwritten (element offsets as for fp32)
    float* stats;         // [pairs, Nq, 2]: m_i, l_i
    float* rowdot;        // [pairs, Nq]: D_i (written by the query-side backward, read by the key side)
    int64_t heads, nq, nk;
    float scale;
    bool bf16;
};

// A gradient element: added to the fp32 gradient, or written as bf16 bits (Args::grads16).
CAE_FUSED_FN void store_grad(const Args& a, float* base, int64_t i, float v) {
    if (a.grads16) {
        reinterpret_cast<uint16_t*>(base)[i] = bf16_bits(v);
    } else {
        base[i] += v;
    }
}

// A thread's state between the steps of a pass.
template <int HD>
struct RowState {
    float m, l, inv, D;              // row max, sum of exponentials, 1 / l, D_i
    float acc[Dims<HD>::slice];      // the current slice of out, dq, dv or dk
};

template <int HD>
CAE_FUSED_FN int64_t pair_offset(int64_t pair, int64_t n, int64_t ld, int64_t heads) {
    return (pair / heads) * n * ld + (pair % heads) * HD;
}

// Four consecutive floats of shared memory (16-byte aligned): one vector load on the device.
struct Four {
    float x, y, z, w;
};
CAE_FUSED_FN Four load4(const float* p) {
#ifdef __CUDA_ARCH__
    const float4 f = *reinterpret_cast<const float4*>(p);
    return {f.x, f.y, f.z, f.w};
#else
    return {p[0], p[1], p[2], p[3]};
#endif
}

// r . s, r in registers and s a shared row: four partial sums (independent chains of
// multiply-adds), added pairwise at the end.
template <int HD>
CAE_FUSED_FN float dot(const float* r, const float* s) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma unroll
    for (int d = 0; d < HD; d += 4) {
        const Four b = load4(s + d);
        s0 += r[d] * b.x;
        s1 += r[d + 1] * b.y;
        s2 += r[d + 2] * b.z;
        s3 += r[d + 3] * b.w;
    }
    return (s0 + s1) + (s2 + s3);
}

// acc += p * s, s a shared row of W floats.
template <int W>
CAE_FUSED_FN void axpy(float* acc, float p, const float* s) {
#pragma unroll
    for (int d = 0; d < W; d += 4) {
        const Four b = load4(s + d);
        acc[d] += p * b.x;
        acc[d + 1] += p * b.y;
        acc[d + 2] += p * b.z;
        acc[d + 3] += p * b.w;
    }
}

// The thread's own row of HD floats from global memory into registers, rounded to bf16 values
// when asked.
template <int HD>
CAE_FUSED_FN void load_own(float* x, const float* src, bool bf16) {
#pragma unroll
    for (int d = 0; d < HD; ++d) x[d] = bf16 ? bf16_value(src[d]) : src[d];
}

// Load phase: the block's threads copy `rows` rows of W floats (row stride ld) into shared rows
// of W floats, rounded to bf16 values when asked.
template <int W>
CAE_FUSED_FN void load_rows(float* dst, const float* src, int64_t ld, int64_t rows, bool bf16, int tid) {
    const int n = static_cast<int>(rows) * W;
    for (int e = tid; e < n; e += kRows) {
        const int r = e / W, c = e - r * W;
        const float x = src[r * ld + c];
        dst[e] = bf16 ? bf16_value(x) : x;
    }
}

// Load phase: the statistics of `rows` query rows as [cap] m_i, [cap] 1 / l_i, [cap] D_i.
CAE_FUSED_FN void load_stats(float* dst, int64_t cap, const float* stats, const float* rowdot, int64_t rows, int tid) {
    for (int i = tid; i < rows; i += kRows) {
        dst[i] = stats[2 * i];
        dst[cap + i] = static_cast<float>(1.0 / static_cast<double>(stats[2 * i + 1]));
        dst[2 * cap + i] = rowdot[i];
    }
}

// ---- steps
//
// forward (rows i, tiles of keys):  every key tile for m_i, every key tile for l_i (then stats),
//   then per slice every key tile for that slice of out_i. Tiles: K, and the slice of V.
// backward, query side (rows i, tiles of keys): every key tile for D_i (then rowdot), then, with
//   dq, per slice every key tile for that slice of dq_i. Tiles: K and V.
// backward, key side (rows j, tiles of queries): with dv, per slice every query tile for that
//   slice of dv_j; with dk, likewise for dk_j. Tiles: Q, dO and the rows' m, 1 / l, D.
enum Stage { kMax, kSum, kOut, kRowDot, kDq, kDv, kDk };

struct Step {
    int stage;
    int slice;
    int64_t tile;
};

// Rows of the side that goes through shared memory.
template <Pass P>
CAE_FUSED_FN int64_t tiled_len(const Args& a) {
    return P == Pass::BackwardK ? a.nq : a.nk;
}

// Rows a shared tile is laid out for: a full tile, or the whole side when shorter.
template <int HD>
CAE_FUSED_FN int64_t tile_cap(int64_t n) {
    return n < Dims<HD>::tile ? n : Dims<HD>::tile;
}

template <int HD>
CAE_FUSED_FN int64_t tile_count(int64_t n) {
    return (n + Dims<HD>::tile - 1) / Dims<HD>::tile;
}

template <int HD, Pass P>
CAE_FUSED_FN int step_count(const Args& a) {
    const int t = static_cast<int>(tile_count<HD>(tiled_len<P>(a))), ts = t * Dims<HD>::slices;
    if (P == Pass::Forward) return 2 * t + ts;
    if (P == Pass::BackwardQ) return t + (a.dq ? ts : 0);
    return (a.dv ? ts : 0) + (a.dk ? ts : 0);
}

template <int HD, Pass P>
CAE_FUSED_FN Step step_at(const Args& a, int s) {
    const int t = static_cast<int>(tile_count<HD>(tiled_len<P>(a))), ts = t * Dims<HD>::slices;
    if (P == Pass::Forward) {
        if (s < t) return {kMax, 0, s};
        if (s < 2 * t) return {kSum, 0, s - t};
        s -= 2 * t;
        return {kOut, s / t, s % t};
    }
    if (P == Pass::BackwardQ) {
        if (s < t) return {kRowDot, 0, s};
        s -= t;
        return {kDq, s / t, s % t};
    }
    if (a.dv) {
        if (s < ts) return {kDv, s / t, s % t};
        s -= ts;
    }
    return {kDk, s / t, s % t};
}

// Whether step s reads the second tile (V, or dO and the statistics).
template <Pass P>
CAE_FUSED_FN bool second_tile(const Step& st) {
    return P != Pass::Forward || st.stage == kOut;
}

// What step s loads: bit 0 the first tile (K rows, or Q rows on the key side), bit 1 the second
// (V rows, the step's slice of them in the forward; dO rows and statistics on the key side).
// Zero when the previous step left both in place: the kernel then skips the load and its
// barriers. The same for every thread of a block.
template <int HD, Pass P>
CAE_FUSED_FN unsigned step_loads(const Args& a, int s) {
    const Step cur = step_at<HD, P>(a, s);
    const unsigned second = second_tile<P>(cur) ? 2u : 0u;
    if (s == 0) return 1u | second;
    const Step prev = step_at<HD, P>(a, s - 1);
    unsigned what = prev.tile != cur.tile ? 1u : 0u;
    if (second && (!second_tile<P>(prev) || prev.tile != cur.tile || (P == Pass::Forward && prev.slice != cur.slice)))
        what |= 2u;
    return what;
}

// Shared floats of a block of pass P whose tiled side has n rows: [cap, HD] first tile,
// [cap, slice or HD] second tile, [cap, kRows] scratch columns, and on the key side [3, cap]
// statistics. Largest at head dim 64: 64 * (64 + 64 + 64) + 3 * 64 floats = 49,920 bytes.
template <int HD, Pass P>
constexpr int64_t smem_floats(int64_t n) {
    const int64_t cap = n < Dims<HD>::tile ? n : Dims<HD>::tile;
    return cap * (HD + (P == Pass::Forward ? Dims<HD>::slice : HD) + kRows) + (P == Pass::BackwardK ? 3 * cap : 0);
}

// Load phase of step s (what: step_loads).
template <int HD, Pass P>
CAE_FUSED_FN void step_load(const Args& a, int64_t pair, int s, unsigned what, float* smem, int tid) {
    const Step st = step_at<HD, P>(a, s);
    const int64_t n = tiled_len<P>(a), cap = tile_cap<HD>(n), r0 = st.tile * Dims<HD>::tile;
    const int64_t rows = n - r0 < Dims<HD>::tile ? n - r0 : Dims<HD>::tile;
    float* first = smem;
    float* second = smem + cap * HD;
    if (P == Pass::Forward || P == Pass::BackwardQ) {
        const float* k0 = a.k + pair_offset<HD>(pair, a.nk, a.ldk, a.heads) + r0 * a.ldk;  // the tile's first rows
        const float* v0 = a.v + pair_offset<HD>(pair, a.nk, a.ldv, a.heads) + r0 * a.ldv;
        if (what & 1u) load_rows<HD>(first, k0, a.ldk, rows, a.bf16, tid);
        if (what & 2u) {
            constexpr int W = Dims<HD>::slice;
            if (P == Pass::Forward) {
                load_rows<W>(second, v0 + st.slice * W, a.ldv, rows, a.bf16, tid);  // the step's slice
            } else {
                load_rows<HD>(second, v0, a.ldv, rows, a.bf16, tid);
            }
        }
    } else {
        const float* q0 = a.q + pair_offset<HD>(pair, a.nq, a.ldq, a.heads) + r0 * a.ldq;  // the tile's first rows
        const float* g0 = a.dout + pair_offset<HD>(pair, a.nq, a.ldo, a.heads) + r0 * a.ldo;
        const int64_t i0 = pair * a.nq + r0;  // ... and their place in stats and rowdot
        if (what & 1u) load_rows<HD>(first, q0, a.ldq, rows, a.bf16, tid);
        if (what & 2u) {
            load_rows<HD>(second, g0, a.ldo, rows, a.bf16, tid);
            load_stats(smem + cap * (2 * HD + kRows), cap, a.stats + 2 * i0, a.rowdot + i0, rows, tid);
        }
    }
}

// Work phase of step s for the thread's own row `mine` (block tile * kRows + tid; a query row, or a
// key row on the key side), against the `count` rows of the step's shared tile.
template <int HD, Pass P>
CAE_FUSED_FN void step_work(const Args& a, int64_t pair, int64_t tile, int s, float* smem, int tid, RowState<HD>& r) {
    constexpr int W = Dims<HD>::slice;
    const int64_t mine = tile * kRows + tid;
    if (mine >= (P == Pass::BackwardK ? a.nk : a.nq)) return;
    const Step st = step_at<HD, P>(a, s);
    const int64_t n = tiled_len<P>(a), cap = tile_cap<HD>(n), r0 = st.tile * Dims<HD>::tile;
    const int count = static_cast<int>(n - r0 < Dims<HD>::tile ? n - r0 : Dims<HD>::tile);
    const bool first_tile = st.tile == 0, last_tile = r0 + count == n;
    const int d0 = st.slice * W;
    const float* t1 = smem;            // K (Q on the key side)
    const float* t2 = smem + cap * HD;  // V (dO on the key side)
    float* pc = smem + cap * (HD + (P == Pass::Forward ? W : HD)) + tid;  // the thread's column: pc[j * kRows]
    float x[HD];  // the thread's own row in use

    if (P == Pass::Forward) {
        const int64_t qo = pair_offset<HD>(pair, a.nq, a.ldq, a.heads) + mine * a.ldq;
        load_own<HD>(x, a.q + qo, a.bf16);
        if (st.stage == kMax) {
            if (first_tile) r.m = -INFINITY;
            for (int j = 0; j < count; ++j) r.m = fmaxf(r.m, a.scale * dot<HD>(x, t1 + j * HD));
        } else if (st.stage == kSum) {
            if (first_tile) r.l = 0.0f;
            for (int j = 0; j < count; ++j) r.l += exp_f(a.scale * dot<HD>(x, t1 + j * HD) - r.m);
            if (last_tile) {
                r.inv = static_cast<float>(1.0 / static_cast<double>(r.l));
                if (a.stats) {
                    a.stats[(pair * a.nq + mine) * 2] = r.m;
                    a.stats[(pair * a.nq + mine) * 2 + 1] = r.l;
                }
            }
        } else {  // out_i, slice d0
            for (int j = 0; j < count; ++j) {
                float p = exp_f(a.scale * dot<HD>(x, t1 + j * HD) - r.m) * r.inv;
                pc[j * kRows] = a.bf16 ? bf16_value(p) : p;
            }
            if (first_tile) {
#pragma unroll
                for (int d = 0; d < W; ++d) r.acc[d] = 0.0f;
            }
            for (int j = 0; j < count; ++j) axpy<W>(r.acc, pc[j * kRows], t2 + j * W);
            if (last_tile) {
                const int64_t o = pair_offset<HD>(pair, a.nq, a.ldo, a.heads) + mine * a.ldo + d0;
                if (a.out != nullptr) {
#pragma unroll
                    for (int d = 0; d < W; ++d) a.out[o + d] = r.acc[d];
                } else {
#pragma unroll
                    for (int d = 0; d < W; ++d) a.out16[o + d] = bf16_bits(r.acc[d]);
                }
            }
        }
    } else if (P == Pass::BackwardQ) {
        const int64_t qo = pair_offset<HD>(pair, a.nq, a.ldq, a.heads) + mine * a.ldq;
        const int64_t go = pair_offset<HD>(pair, a.nq, a.ldo, a.heads) + mine * a.ldo;
        if (s == 0) {
            r.m = a.stats[(pair * a.nq + mine) * 2];
            r.inv = static_cast<float>(1.0 / static_cast<double>(a.stats[(pair * a.nq + mine) * 2 + 1]));
        }
        load_own<HD>(x, a.q + qo, a.bf16);  // P_ij of the tile
        for (int j = 0; j < count; ++j) pc[j * kRows] = exp_f(a.scale * dot<HD>(x, t1 + j * HD) - r.m) * r.inv;
        load_own<HD>(x, a.dout + go, a.bf16);  // dO_i
        if (st.stage == kRowDot) {
            if (first_tile) r.D = 0.0f;
            for (int j = 0; j < count; ++j) r.D += pc[j * kRows] * dot<HD>(x, t2 + j * HD);
            if (last_tile) a.rowdot[pair * a.nq + mine] = r.D;
        } else {  // dq_i, slice d0
            for (int j = 0; j < count; ++j) {
                const float ds = pc[j * kRows] * (dot<HD>(x, t2 + j * HD) - r.D);
                pc[j * kRows] = a.bf16 ? bf16_value(ds) : ds;
            }
            if (first_tile) {
#pragma unroll
                for (int d = 0; d < W; ++d) r.acc[d] = 0.0f;
            }
            for (int j = 0; j < count; ++j) axpy<W>(r.acc, pc[j * kRows], t1 + j * HD + d0);
            if (last_tile) {
#pragma unroll
                for (int d = 0; d < W; ++d) store_grad(a, a.dq, qo + d0 + d, a.scale * r.acc[d]);
            }
        }
    } else {
        const float* ms = smem + cap * (2 * HD + kRows);
        const float* invs = ms + cap;
        const float* Ds = invs + cap;
        const int64_t ko = pair_offset<HD>(pair, a.nk, a.ldk, a.heads) + mine * a.ldk;
        const int64_t vo = pair_offset<HD>(pair, a.nk, a.ldv, a.heads) + mine * a.ldv;
        load_own<HD>(x, a.k + ko, a.bf16);  // P_ij of the tile's queries i
        for (int i = 0; i < count; ++i) {
            const float p = exp_f(a.scale * dot<HD>(x, t1 + i * HD) - ms[i]) * invs[i];
            pc[i * kRows] = a.bf16 && st.stage == kDv ? bf16_value(p) : p;
        }
        if (st.stage == kDk) {  // dS_ij
            load_own<HD>(x, a.v + vo, a.bf16);
            for (int i = 0; i < count; ++i) {
                const float ds = pc[i * kRows] * (dot<HD>(x, t2 + i * HD) - Ds[i]);
                pc[i * kRows] = a.bf16 ? bf16_value(ds) : ds;
            }
        }
        if (first_tile) {
#pragma unroll
            for (int d = 0; d < W; ++d) r.acc[d] = 0.0f;
        }
        // dv_j += sum_i P_ij dO_i; dk_j += scale sum_i dS_ij q_i
        const float* rhs = st.stage == kDv ? t2 : t1;
        for (int i = 0; i < count; ++i) axpy<W>(r.acc, pc[i * kRows], rhs + i * HD + d0);
        if (last_tile) {
            if (st.stage == kDv) {
#pragma unroll
                for (int d = 0; d < W; ++d) store_grad(a, a.dv, vo + d0 + d, r.acc[d]);
            } else {
#pragma unroll
                for (int d = 0; d < W; ++d) store_grad(a, a.dk, ko + d0 + d, a.scale * r.acc[d]);
            }
        }
    }
}

}  // namespace cae::fused
