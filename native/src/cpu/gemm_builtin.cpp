// The built-in GEMM, used when no BLAS is found (and for the per-head products of attention):
// C = alpha op(A) op(B) + beta C, blocked for the caches and packed into MR x NR register tiles
// (the Goto/BLIS scheme). Every element of C is computed by one thread in a fixed k order, so the
// result does not depend on the thread count or the schedule.
#include <omp.h>

#include <algorithm>
#include <cstdlib>

#include "common/error.h"
#include "cpu/cpu_backend.h"
#include "cpu/parallel.h"
#include "cpu/simd.h"

namespace cae::cpu {

namespace {

constexpr int64_t MR = 6;     // register tile: 6 x 16 floats = 12 AVX accumulators
constexpr int64_t NR = 16;
constexpr int64_t KC = 256;   // depth of a packed block: a B micro-panel (16 KB) stays in L1
constexpr int64_t MC = 96;    // rows of a packed A block (96 KB, L2)
constexpr int64_t NC = 4096;  // columns of a packed B panel (4 MB, L3)
constexpr int64_t kParallelMinWork = int64_t{1} << 18;  // m*n*k below this: one thread

// One GEMM of the batch, its operands already offset.
struct Operands {
    bool trans_a, trans_b;
    int64_t m, n, k;
    float alpha, beta;
    const float* a;
    int64_t lda;
    const float* b;
    int64_t ldb;
    float* c;
    int64_t ldc;
};

// A grow-only, 64-byte aligned packing buffer per thread (apart from thread_scratch, which the
// callers of a single-threaded GEMM may hold meanwhile).
class PackBuffer {
public:
    ~PackBuffer() { std::free(data_); }
    float* get(int64_t floats) {
        const size_t bytes = (static_cast<size_t>(floats) * sizeof(float) + 63) / 64 * 64;
        if (bytes > capacity_) {
            std::free(data_);
            capacity_ = 0;
            data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
            if (data_ == nullptr) fail(CAE_ERR_OUT_OF_MEMORY, "gemm: cannot allocate ", bytes, " bytes of packing buffer");
            capacity_ = bytes;
        }
        return data_;
    }

private:
    float* data_ = nullptr;
    size_t capacity_ = 0;
};

thread_local PackBuffer tl_pack;

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// op(X)[r0 : r0+rows, p0 : p0+kc] -> [kc][W], zero-padded to W rows: the layout of an A
// micro-panel (W = MR) and, read as op(B)^T, of a B micro-panel (W = NR). X is stored
// row-major with stride ld; `transposed` means op(X) = X^T. The rows are read side by side
// (several streams), which keeps the prefetcher ahead better than one row at a time.
template <int64_t W>
void pack_panel(const float* x, int64_t ld, bool transposed, int64_t r0, int64_t rows, int64_t p0,
                int64_t kc, float* panel) {
    if (!transposed) {
        const float* src[W];
        for (int64_t i = 0; i < rows; ++i) src[i] = x + (r0 + i) * ld + p0;
        for (int64_t p = 0; p < kc; ++p) {
            float* d = panel + p * W;
            for (int64_t i = 0; i < rows; ++i) d[i] = src[i][p];
            for (int64_t i = rows; i < W; ++i) d[i] = 0.0f;
        }
    } else {
        for (int64_t p = 0; p < kc; ++p) {
            const float* s = x + (p0 + p) * ld + r0;
            float* d = panel + p * W;
            for (int64_t i = 0; i < rows; ++i) d[i] = s[i];
            for (int64_t i = rows; i < W; ++i) d[i] = 0.0f;
        }
    }
}

// op(A)[i0:i0+mc, p0:p0+kc] -> MR-row micro-panels.
void pack_a(const Operands& o, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
    for (int64_t ir = 0; ir < mc; ir += MR)
        pack_panel<MR>(o.a, o.lda, o.trans_a, i0 + ir, std::min(MR, mc - ir), p0, kc, dst + ir * kc);
}

// op(B)[p0:p0+kc, j0:j0+nr] -> one NR-column micro-panel. op(B)^T is B stored transposed, hence
// the flipped flag.
void pack_b(const float* b, int64_t ldb, bool trans_b, int64_t p0, int64_t kc, int64_t j0, int64_t nr,
            float* panel) {
    pack_panel<NR>(b, ldb, !trans_b, j0, nr, p0, kc, panel);
}

// C = beta C over an m x n block; beta == 0 writes zeros without reading C (it may hold NaN).
void scale_c(float* c, int64_t ldc, int64_t m, int64_t n, float beta) {
    if (beta == 1.0f) return;
    for (int64_t i = 0; i < m; ++i) {
        float* row = c + i * ldc;
        if (beta == 0.0f) {
            std::fill(row, row + n, 0.0f);
        } else {
            for (int64_t j = 0; j < n; ++j) row[j] *= beta;
        }
    }
}

// The elements of op(A) a register tile reads: A(i, p) for i < MR.
struct PackedA {  // an MR-row micro-panel [kc][MR]
    const float* panel;
    CAE_INLINE float operator()(int64_t i, int64_t p) const { return panel[p * MR + i]; }
};
struct RowsA {  // A as stored, row i at row[i] (rows past the edge repeat the last one)
    const float* row[MR];
    CAE_INLINE float operator()(int64_t i, int64_t p) const { return row[i][p]; }
};
struct ColumnsA {  // A^T as stored: A(i, p) = a[p * lda + col[i]]
    const float* a;
    int64_t lda;
    int64_t col[MR];
    CAE_INLINE float operator()(int64_t i, int64_t p) const { return a[p * lda + col[i]]; }
};

// acc[i][v] = sum_p A(i, p) Bpanel[p][8v .. 8v+8], for V = 1 or 2 vectors of columns.
template <int V, class A>
CAE_INLINE void tile_product(int64_t kc, const A& a, const float* bp, f32x8 (&acc)[MR][2]) {
    for (int64_t i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = f32x8{};
    for (int64_t p = 0; p < kc; ++p) {
        const f32x8 b0 = load8(bp + p * NR);
        const f32x8 b1 = V == 2 ? load8(bp + p * NR + 8) : f32x8{};
        for (int64_t i = 0; i < MR; ++i) {
            const float ai = a(i, p);
            acc[i][0] += b0 * ai;
            if (V == 2) acc[i][1] += b1 * ai;
        }
    }
}

// C tile [mr x nr] = alpha acc + beta C; beta == 0 does not read C.
CAE_INLINE void store_tile(const f32x8 (&acc)[MR][2], float* c, int64_t ldc, int64_t mr, int64_t nr,
                           float alpha, float beta) {
    if (mr == MR && nr == NR) {
        for (int64_t i = 0; i < MR; ++i) {
            float* row = c + i * ldc;
            for (int64_t h = 0; h < 2; ++h) {
                f32x8 v = acc[i][h] * alpha;
                if (beta == 1.0f) {
                    v += load8(row + 8 * h);
                } else if (beta != 0.0f) {
                    v += load8(row + 8 * h) * beta;
                }
                store8(row + 8 * h, v);
            }
        }
        return;
    }
    float tile[MR][NR];
    for (int64_t i = 0; i < MR; ++i) {
        store8(tile[i], acc[i][0]);
        store8(tile[i] + 8, acc[i][1]);
    }
    for (int64_t i = 0; i < mr; ++i) {
        float* row = c + i * ldc;
        for (int64_t j = 0; j < nr; ++j) {
            const float v = alpha * tile[i][j];
            row[j] = beta == 0.0f ? v : (beta == 1.0f ? v + row[j] : v + beta * row[j]);
        }
    }
}

template <class A>
CAE_INLINE void tile(int64_t kc, const A& a, const float* bp, float* c, int64_t ldc, int64_t mr,
                     int64_t nr, float alpha, float beta) {
    f32x8 acc[MR][2];
    if (nr <= 8) {
        tile_product<1>(kc, a, bp, acc);
    } else {
        tile_product<2>(kc, a, bp, acc);
    }
    store_tile(acc, c, ldc, mr, nr, alpha, beta);
}

}  // namespace

// C[mc x nc] = alpha Apacked Bpacked + beta C, tile by tile. Loop order: a B micro-panel stays
// in L1 while the A block streams from L2.
CAE_MULTIVERSION void gemm_macro_kernel(int64_t mc, int64_t nc, int64_t kc, const float* pa,
                                        const float* pb, float* c, int64_t ldc, float alpha,
                                        float beta) {
    for (int64_t jr = 0; jr < nc; jr += NR) {
        const int64_t nr = std::min(NR, nc - jr);
        for (int64_t ir = 0; ir < mc; ir += MR) {
            tile(kc, PackedA{pa + ir * kc}, pb + jr * kc, c + ir * ldc + jr, ldc, std::min(MR, mc - ir),
                 nr, alpha, beta);
        }
    }
}

// A GEMM small enough for L1/L2 (k <= KC): A is read where it lies, B is packed one NR-column
// panel at a time into `panel` [k][NR], which every row tile then reuses from L1.
CAE_MULTIVERSION void gemm_small_kernel(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                                        float alpha, const float* a, int64_t lda, const float* b,
                                        int64_t ldb, float beta, float* c, int64_t ldc, float* panel) {
    for (int64_t j0 = 0; j0 < n; j0 += NR) {
        const int64_t nr = std::min(NR, n - j0);
        pack_b(b, ldb, trans_b, 0, k, j0, nr, panel);
        for (int64_t i0 = 0; i0 < m; i0 += MR) {
            const int64_t mr = std::min(MR, m - i0);
            float* ct = c + i0 * ldc + j0;
            if (!trans_a) {
                RowsA rows;
                for (int64_t i = 0; i < MR; ++i) rows.row[i] = a + (i0 + std::min(i, mr - 1)) * lda;
                tile(k, rows, panel, ct, ldc, mr, nr, alpha, beta);
            } else {
                ColumnsA cols{a, lda, {}};
                for (int64_t i = 0; i < MR; ++i) cols.col[i] = i0 + std::min(i, mr - 1);
                tile(k, cols, panel, ct, ldc, mr, nr, alpha, beta);
            }
        }
    }
}

namespace {

void gemm_single(const Operands& o, int threads) {
    if (o.m <= 0 || o.n <= 0) return;
    if (o.k <= 0 || o.alpha == 0.0f) {
        scale_c(o.c, o.ldc, o.m, o.n, o.beta);
        return;
    }
    if (o.m * o.n * o.k < kParallelMinWork) {
        if (o.k <= KC) {
            gemm_small_kernel(o.trans_a, o.trans_b, o.m, o.n, o.k, o.alpha, o.a, o.lda, o.b, o.ldb,
                              o.beta, o.c, o.ldc, tl_pack.get(KC * NR));
            return;
        }
        threads = 1;
    }
    const int64_t m_blocks = (o.m + MC - 1) / MC;
    // Allocated here, outside the parallel region: a B panel shared by the team, then one A
    // block per thread.
    const int64_t b_floats = KC * round_up(std::min(o.n, NC), NR);
    float* pb = tl_pack.get(b_floats + threads * MC * KC);

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float* pa = pb + b_floats + omp_get_thread_num() * MC * KC;
        for (int64_t jc = 0; jc < o.n; jc += NC) {
            const int64_t nc = std::min(NC, o.n - jc);
            const int64_t n_panels = (nc + NR - 1) / NR;
            // Few A blocks: split the columns too, so that every thread gets work.
            const int64_t n_chunks =
                std::clamp<int64_t>((4 * threads + m_blocks - 1) / m_blocks, 1, n_panels);
            const int64_t panels_per_chunk = (n_panels + n_chunks - 1) / n_chunks;
            for (int64_t pc = 0; pc < o.k; pc += KC) {
                const int64_t kc = std::min(KC, o.k - pc);
                const float beta = pc == 0 ? o.beta : 1.0f;
#pragma omp for schedule(static)
                for (int64_t jp = 0; jp < n_panels; ++jp)
                    pack_b(o.b, o.ldb, o.trans_b, pc, kc, jc + jp * NR, std::min(NR, nc - jp * NR),
                           pb + jp * NR * kc);

                int64_t packed_block = -1;
#pragma omp for schedule(dynamic, 1)
                for (int64_t task = 0; task < m_blocks * n_chunks; ++task) {
                    const int64_t ib = task / n_chunks;
                    const int64_t chunk = task % n_chunks;
                    const int64_t i0 = ib * MC;
                    const int64_t mc = std::min(MC, o.m - i0);
                    if (ib != packed_block) {
                        pack_a(o, i0, mc, pc, kc, pa);
                        packed_block = ib;
                    }
                    const int64_t j0 = chunk * panels_per_chunk * NR;
                    if (j0 >= nc) continue;
                    const int64_t ncc = std::min(panels_per_chunk * NR, nc - j0);
                    gemm_macro_kernel(mc, ncc, kc, pa, pb + j0 * kc, o.c + i0 * o.ldc + jc + j0,
                                      o.ldc, o.alpha, beta);
                }
            }
        }
    }
}

}  // namespace

void gemm_builtin(const GemmArgs& g, int threads) {
    threads = std::max(threads, 1);
    auto item = [&](int64_t b) {
        return Operands{g.trans_a, g.trans_b, g.m,  g.n, g.k, g.alpha, g.beta,
                        g.a + b * g.stride_a, g.lda, g.b + b * g.stride_b, g.ldb,
                        g.c + b * g.stride_c, g.ldc};
    };
    if (g.batch >= threads && threads > 1) {
        // Enough GEMMs for every thread: each is computed by one thread.
        RegionErrors errors;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t b = 0; b < g.batch; ++b) errors.run([&] { gemm_single(item(b), 1); });
        errors.rethrow();
    } else {
        for (int64_t b = 0; b < g.batch; ++b) gemm_single(item(b), threads);
    }
}

}  // namespace cae::cpu
