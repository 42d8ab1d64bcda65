// GEMM through OpenBLAS's CBLAS interface, when the library was built with it.
#include <algorithm>

#include "common/error.h"
#include "cpu/cpu_backend.h"

#ifdef CAE_HAVE_OPENBLAS
#include <cblas.h>
#include <omp.h>

// Not declared by every cblas.h.
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace cae::cpu {

bool have_blas() {
#ifdef CAE_HAVE_OPENBLAS
    return true;
#else
    return false;
#endif
}

#ifdef CAE_HAVE_OPENBLAS

namespace {

constexpr int64_t kParallelMinWork = int64_t{1} << 18;  // m*n*k below this: one thread

// OpenBLAS runs single-threaded; the parallelism is ours. OpenBLAS's own pool (the pthreads
// build Debian installs by default) would spin against our OpenMP threads between calls, and its
// thread count is process-global, so concurrent callers could not each choose theirs.
void use_single_threaded_blas() {
    static const bool once = [] {
        openblas_set_num_threads(1);
        return true;
    }();
    (void)once;
}

// CBLAS rejects a row stride below the row length even for a single row, where it is unused.
int ld_for(int64_t rows, int64_t cols, int64_t ld) {
    return static_cast<int>(rows <= 1 ? std::max<int64_t>({ld, cols, 1}) : ld);
}

// Rows [i0, i0+m) and columns [j0, j0+n) of C for batch item b, one CBLAS call.
void sgemm_block(const GemmArgs& g, int64_t b, int64_t i0, int64_t m, int64_t j0, int64_t n) {
    const float* a = g.a + b * g.stride_a + (g.trans_a ? i0 : i0 * g.lda);
    const float* bm = g.b + b * g.stride_b + (g.trans_b ? j0 * g.ldb : j0);
    float* c = g.c + b * g.stride_c + i0 * g.ldc + j0;
    const int lda = g.trans_a ? ld_for(g.k, m, g.lda) : ld_for(m, g.k, g.lda);
    const int ldb = g.trans_b ? ld_for(n, g.k, g.ldb) : ld_for(g.k, n, g.ldb);
    cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans,
                static_cast<int>(m), static_cast<int>(n), static_cast<int>(g.k), g.alpha, a, lda, bm, ldb, g.beta,
                c, ld_for(m, n, g.ldc));
}

}  // namespace

// One thread: a CBLAS call per batch item. More: the batch items, or else the rows (or the
// columns, when there are more of them) of C cut into one block per thread.
void gemm_blas(const GemmArgs& g, int threads) {
    if (g.m <= 0 || g.n <= 0 || g.batch <= 0) return;
    if (g.k <= 0) {
        // C = beta C; no BLAS call (CBLAS rejects lda for k = 0).
        for (int64_t b = 0; b < g.batch; ++b) {
            float* c = g.c + b * g.stride_c;
            for (int64_t i = 0; i < g.m; ++i)
                for (int64_t j = 0; j < g.n; ++j)
                    c[i * g.ldc + j] = g.beta == 0.0f ? 0.0f : g.beta * c[i * g.ldc + j];
        }
        return;
    }
    use_single_threaded_blas();
    if (threads <= 1 || omp_in_parallel() || g.m * g.n * g.k * g.batch < kParallelMinWork) {
        for (int64_t b = 0; b < g.batch; ++b) sgemm_block(g, b, 0, g.m, 0, g.n);
        return;
    }
    if (g.batch >= threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t b = 0; b < g.batch; ++b) sgemm_block(g, b, 0, g.m, 0, g.n);
        return;
    }
    // Blocks of whole 16-row (16-column) groups, so that OpenBLAS's kernels stay on full tiles.
    const bool by_rows = g.m >= g.n;
    const int64_t extent = by_rows ? g.m : g.n;
    const int64_t groups = (extent + 15) / 16;
    const int parts = static_cast<int>(std::min<int64_t>(threads, groups));
    for (int64_t b = 0; b < g.batch; ++b) {
#pragma omp parallel for num_threads(parts) schedule(static)
        for (int t = 0; t < parts; ++t) {
            const int64_t begin = std::min(extent, groups * t / parts * 16);
            const int64_t end = std::min(extent, groups * (t + 1) / parts * 16);
            if (begin >= end) continue;
            if (by_rows) {
                sgemm_block(g, b, begin, end - begin, 0, g.n);
            } else {
                sgemm_block(g, b, 0, g.m, begin, end - begin);
            }
        }
    }
}

#else

void gemm_blas(const GemmArgs&, int) {
    fail(CAE_ERR_UNSUPPORTED, "gemm_blas: libcae was built without OpenBLAS (CAE_BLAS=OFF or not found)");
}

#endif

}  // namespace cae::cpu
