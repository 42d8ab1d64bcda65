// SIMD building blocks of the CPU kernels: GCC/Clang vector types (8 floats; two SSE registers
// on the baseline target, one AVX register in the x86-64-v3 clone), multi-versioned functions,
// and the vectorized exp/erfc the kernels need.
//
// Why explicit vectors: without -ffast-math GCC neither vectorizes float reductions (it may
// not reorder the sum) nor if-converts float selects (-ftrapping-math), so the row kernels
// hold their accumulators and clamps in these types.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

// Vector arguments are passed by const reference: by value, GCC prints an ABI note for every
// file compiled without AVX (the helpers are always inlined, so no ABI is involved). Returned
// vectors draw the -Wpsabi warning at every call site, so it is off in the files that include
// this header.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace cae::cpu {

typedef float f32x8 __attribute__((vector_size(32), aligned(4)));
typedef float f32x4 __attribute__((vector_size(16), aligned(4)));
typedef double f64x4 __attribute__((vector_size(32), aligned(8)));
typedef int32_t i32x8 __attribute__((vector_size(32), aligned(4)));

// Compiled for AVX2+FMA and for the baseline; the loader picks one per CPU. GCC 12 vectorizes
// clones of functions with internal linkage poorly, so such functions have external linkage
// (the library's symbols are hidden).
#if defined(__x86_64__) && defined(__GNUC__)
#define CAE_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CAE_MULTIVERSION
#endif
#define CAE_INLINE inline __attribute__((always_inline))

CAE_INLINE f32x8 load8(const float* p) {
    f32x8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
CAE_INLINE void store8(float* p, const f32x8& v) { std::memcpy(p, &v, sizeof v); }
CAE_INLINE f32x8 splat8(float x) { return f32x8{} + x; }

// f32x8 -> two f64x4 halves, for sums accumulated in double.
CAE_INLINE f64x4 low_f64(const f32x8& v) {
    return __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3), f64x4);
}
CAE_INLINE f64x4 high_f64(const f32x8& v) {
    return __builtin_convertvector(__builtin_shufflevector(v, v, 4, 5, 6, 7), f64x4);
}
CAE_INLINE double hsum(const f64x4& v) { return (v[0] + v[2]) + (v[1] + v[3]); }
CAE_INLINE f32x4 max4(const f32x4& a, const f32x4& b) { return a > b ? a : b; }

// Correctly rounded square root (GCC vectorizes std::sqrt only without errno semantics).
CAE_INLINE f32x8 sqrt8(const f32x8& x) {
#if defined(__SSE__)
    const f32x4 lo = (f32x4)_mm_sqrt_ps((__m128)__builtin_shufflevector(x, x, 0, 1, 2, 3));
    const f32x4 hi = (f32x4)_mm_sqrt_ps((__m128)__builtin_shufflevector(x, x, 4, 5, 6, 7));
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7);
#else
    f32x8 r;
    for (int i = 0; i < 8; ++i) r[i] = std::sqrt(x[i]);
    return r;
#endif
}

// Horizontal reductions of one vector.
CAE_INLINE float hmax8(const f32x8& v) {
    const f32x4 a = max4(__builtin_shufflevector(v, v, 0, 1, 2, 3), __builtin_shufflevector(v, v, 4, 5, 6, 7));
    const f32x4 b = max4(a, __builtin_shufflevector(a, a, 2, 3, 0, 1));
    return std::max(b[0], b[1]);
}
CAE_INLINE double hsum8(const f32x8& v) { return hsum(low_f64(v) + high_f64(v)); }

CAE_INLINE f32x8 min8(const f32x8& a, const f32x8& b) { return a < b ? a : b; }
CAE_INLINE f32x8 max8(const f32x8& a, const f32x8& b) { return a > b ? a : b; }

// e^x, relative error ~2e-7 (Cephes expf): x = n ln2 + r, |r| <= ln2/2, e^x = 2^n P(r).
// x is clamped to [-87.3, 88]: the result stays a normal float (e^-87.3 ~ 1.2e-38).
CAE_INLINE f32x8 exp8(const f32x8& arg) {
    const f32x8 x = max8(min8(arg, splat8(88.0f)), splat8(-87.33654f));
    // Rounds x log2(e) to an integer in the low mantissa bits of t (|x log2 e| < 2^22).
    const f32x8 t = x * 1.44269504088896341f + 12582912.0f;
    const f32x8 n = t - 12582912.0f;
    f32x8 r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    // P(r) = 1 + r + r^2 (c0 + c1 r + ... + c5 r^5), in Estrin's scheme (shorter dependency chains
    // than Horner's, which made these kernels latency-bound).
    const f32x8 r2 = r * r;
    const f32x8 q01 = 5.0000001201e-1f + r * 1.6666665459e-1f;
    const f32x8 q23 = 4.1665795894e-2f + r * 8.3334519073e-3f;
    const f32x8 q45 = 1.3981999507e-3f + r * 1.9875691500e-4f;
    const f32x8 q = q01 + r2 * (q23 + r2 * q45);
    const f32x8 p = 1.0f + r + r2 * q;
    const i32x8 e = ((i32x8)t - 0x4B400000 + 127) << 23;
    return p * (f32x8)e;
}

// The standard normal CDF Phi(x) = 0.5 erfc(-x / sqrt 2), through Numerical Recipes' erfcc
// (fractional error < 1.2e-7, so accurate in relative terms on both tails, with no 1 + erf
// cancellation): erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), z = |x| / sqrt 2.
// With pdf != nullptr, *pdf = phi(x) = e^(-z^2) / sqrt(2 pi) too (a second exp).
CAE_INLINE f32x8 normal_cdf8(const f32x8& x, f32x8* pdf = nullptr) {
    const f32x8 z = (x < 0.0f ? -x : x) * 0.70710678118654752f;
    const f32x8 z2 = z * z;
    const f32x8 t = 1.0f / (1.0f + 0.5f * z);
    // P(t) = c0 + c1 t + ... + c9 t^9 in Estrin's scheme (short dependency chains).
    const f32x8 t2 = t * t, t4 = t2 * t2;
    const f32x8 q01 = -1.26551223f + t * 1.00002368f;
    const f32x8 q23 = 0.37409196f + t * 0.09678418f;
    const f32x8 q45 = -0.18628806f + t * 0.27886807f;
    const f32x8 q67 = -1.13520398f + t * 1.48851587f;
    const f32x8 q89 = -0.82215223f + t * 0.17087277f;
    const f32x8 p = (q01 + t2 * q23) + t4 * ((q45 + t2 * q67) + t4 * q89);
    // Past z = 9.3 the exps underflow below the range of exp8: flush them to 0.
    const f32x8 live = z < 9.3f ? splat8(1.0f) : splat8(0.0f);
    if (pdf) *pdf = exp8(-z2) * live * 0.39894228040143268f;
    const f32x8 half_erfc = 0.5f * t * exp8(p - z2) * live;
    return x < 0.0f ? half_erfc : 1.0f - half_erfc;
}

}  // namespace cae::cpu
