// Mean squared error and the L2 norm. Sums run in double over fixed chunks that are added in
// chunk order, so the result does not depend on the thread count.
#include <algorithm>
#include <cmath>

#include "cpu/cpu_backend.h"
#include "cpu/parallel.h"
#include "cpu/simd.h"

namespace cae::cpu {

// sum over [0, n) of (a - b)^2 in double; b == nullptr means 0.
CAE_MULTIVERSION double sum_squared_difference(const float* a, const float* b, int64_t n) {
    f64x4 s0{}, s1{};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const f32x8 d = b ? load8(a + i) - load8(b + i) : load8(a + i);
        const f64x4 lo = low_f64(d), hi = high_f64(d);
        s0 += lo * lo;
        s1 += hi * hi;
    }
    double s = hsum(s0 + s1);
    for (; i < n; ++i) {
        const double d = static_cast<double>(a[i]) - (b ? b[i] : 0.0f);
        s += d * d;
    }
    return s;
}

namespace {

constexpr int64_t kChunk = 8192;

double chunked_sum_squares(const float* a, const float* b, int64_t n, int threads) {
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    double* part = thread_scratch<double>(chunks);
#pragma omp parallel for num_threads(team_size(threads, n, 1 << 16)) schedule(static)
    for (int64_t k = 0; k < chunks; ++k) {
        const int64_t i0 = k * kChunk;
        part[k] = sum_squared_difference(a + i0, b ? b + i0 : nullptr, std::min(kChunk, n - i0));
    }
    double s = 0.0;
    for (int64_t k = 0; k < chunks; ++k) s += part[k];
    return s;
}

}  // namespace

// *loss = mean over n of (pred - target)^2
void CpuBackend::mse_forward(float* loss, const float* pred, const float* target, int64_t n) {
    *loss = n > 0 ? static_cast<float>(chunked_sum_squares(pred, target, n, threads_) / static_cast<double>(n))
                  : 0.0f;
}

// dpred += scale * 2 (pred - target) / n
void CpuBackend::mse_backward(float* dpred, const float* pred, const float* target, int64_t n,
                              float scale) {
    if (dpred == nullptr || n <= 0) return;
    const float coef = static_cast<float>(2.0 * static_cast<double>(scale) / static_cast<double>(n));
#pragma omp parallel for num_threads(team_size(threads_, n, 1 << 16)) schedule(static)
    for (int64_t i = 0; i < n; ++i) dpred[i] += coef * (pred[i] - target[i]);
}

// *out = sqrt(sum x^2), in double
void CpuBackend::l2_norm(float* out, const float* x, int64_t n) {
    *out = n > 0 ? static_cast<float>(std::sqrt(chunked_sum_squares(x, nullptr, n, threads_))) : 0.0f;
}

}  // namespace cae::cpu
