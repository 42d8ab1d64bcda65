#include "cpu/cpu_backend.h"

namespace cae::cpu {

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

}  // namespace cae::cpu
