// Multi-head attention as batched GEMMs and a row softmax.
//
// q, k, v are [B, N, *] with row strides ldq, ldk, ldv and head h in columns
// [h*hd, (h+1)*hd): head (b, h) starts at q + b*Nq*ldq + h*hd. That is a strided batch over h
// (stride hd) inside each b, but not one stride over all B*H pairs, so a single strided-batched
// GEMM cannot address it; B separate calls per product would cost B launches (128 at batch 128,
// times seven products, times every attention layer). Instead the heads are first gathered into
// contiguous head-major scratch [B*H, N, hd] (one copy kernel per operand), every product is one
// strided-batched GEMM over the B*H pairs on the backend's GEMM (cuBLASLt or the fallback), and
// the results are scattered back (written for the forward output, added for the gradients).
// With bf16 products, the kernels that produce a product's operand write its bf16 rounding
// directly (the head gathers of q, k, v and dO, the softmax's P next to the fp32 P the backward
// keeps, the softmax backward's dS), so no GEMM rounds an operand again: the same numbers as
// rounding inside the GEMM, in half the memory and without the extra passes.
//
// Forward, per pair: S = scale Q K^T straight into probs [B, H, Nq, Nk]; row softmax in place;
// O = P V, scattered into out (row stride ldo).
// Backward: dV += P^T dO; dP = dO V^T; dS = P (dP - rowsum(dP P)); dQ += scale dS K;
// dK += scale dS^T Q. A null gradient output is skipped (and its products with it).
#include <cuda_bf16.h>

#include <cmath>
#include <memory>

#include "cuda/cuda_backend.h"
#include "cuda/kernels.cuh"

namespace cae::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = 8;  // softmax: one warp per row

// dst [B*H, N, hd] <- src [B, N, ld] (head h at column h*hd); T = __nv_bfloat16: rounded
template <typename T>
__global__ void gather_heads_kernel(T* __restrict__ dst, const float* __restrict__ src, int64_t ld, int64_t H,
                                    int64_t N, int64_t hd, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t e = i % hd, row = i / hd;  // row = (b*H + h)*N + t
        const int64_t t = row % N, bh = row / N;
        const int64_t h = bh % H, b = bh / H;
        store_out(dst + i, src[(b * N + t) * ld + h * hd + e]);
    }
}

// dst [B, N, ld] <- src [B*H, N, hd]: an output (GRAD false) or a gradient (store_out, store_grad)
template <bool GRAD, typename T = float>
__global__ void scatter_heads_kernel(T* __restrict__ dst, const float* __restrict__ src, int64_t ld, int64_t H,
                                     int64_t N, int64_t hd, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t e = i % hd, row = i / hd;
        const int64_t t = row % N, bh = row / N;
        const int64_t h = bh % H, b = bh / H;
        T* d = dst + (b * N + t) * ld + h * hd + e;
        if constexpr (GRAD) {
            store_grad(d, src[i]);
        } else {
            store_out(d, src[i]);
        }
    }
}

// Rows of s [rows, n] in place: softmax; s16 (may be null): the same probabilities rounded to bf16.
__global__ void __launch_bounds__(kRowsPerBlock* kWarp)
    softmax_rows_kernel(float* __restrict__ s, __nv_bfloat16* __restrict__ s16, int64_t rows, int64_t n) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= rows) return;
    float* r = s + row * n;
    float mx = -INFINITY;
    for (int64_t c = lane; c < n; c += kWarp) mx = fmaxf(mx, r[c]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int64_t c = lane; c < n; c += kWarp) {
        const float e = expf(r[c] - mx);
        r[c] = e;
        sum += e;
    }
    sum = warp_sum(sum);
    const float inv = static_cast<float>(1.0 / static_cast<double>(sum));
    __nv_bfloat16* r16 = s16 != nullptr ? s16 + row * n : nullptr;
    for (int64_t c = lane; c < n; c += kWarp) {
        const float p = r[c] * inv;
        r[c] = p;
        if (r16 != nullptr) r16[c] = __float2bfloat16_rn(p);
    }
}

// Rows of dp [rows, n]: ds = p (dp - sum(dp p)), in place, or only rounded to bf16 into ds16 when
// that is given.
__global__ void __launch_bounds__(kRowsPerBlock* kWarp)
    softmax_backward_rows_kernel(float* __restrict__ dp, __nv_bfloat16* __restrict__ ds16, const float* __restrict__ p,
                                 int64_t rows, int64_t n) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= rows) return;
    float* d = dp + row * n;
    const float* pr = p + row * n;
    float dot = 0.0f;
    for (int64_t c = lane; c < n; c += kWarp) dot += d[c] * pr[c];
    dot = warp_sum(dot);
    if (ds16 != nullptr) {
        __nv_bfloat16* o = ds16 + row * n;
        for (int64_t c = lane; c < n; c += kWarp) o[c] = __float2bfloat16_rn(pr[c] * (d[c] - dot));
    } else {
        for (int64_t c = lane; c < n; c += kWarp) d[c] = pr[c] * (d[c] - dot);
    }
}

template <typename T>
__global__ void fill_rows_kernel(T* __restrict__ dst, int64_t ld, int64_t rows, int64_t cols, float value) {
    const int64_t n = rows * cols;
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t r = i / cols, c = i - r * cols;
        store_out(dst + r * ld + c, value);
    }
}

Operand fp32(const float* x) { return Operand(x); }
// A gathered scratch operand (a CudaBackend::Scratch): bf16 values, or fp32.
template <class S>
Operand operand(const S& scratch, bool bf16) {
    return bf16 ? Operand(nullptr, scratch.template as<uint16_t>()) : Operand(scratch.template as<float>());
}

// One strided-batched product over the B*H pairs, all matrices contiguous per pair.
GemmArgs pair_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, Operand a, int64_t lda, Operand b,
                   int64_t ldb, float* c, int64_t ldc, int64_t pairs, int64_t sa, int64_t sb, int64_t sc,
                   GemmPrecision precision) {
    GemmArgs g = gemm_product(ta, tb, m, n, k, alpha, a, lda, b, ldb, 0.0f, c, ldc, precision);
    g.stride_a = sa;
    g.stride_b = sb;
    g.stride_c = sc;
    g.batch = pairs;
    return g;
}

unsigned int row_blocks(int64_t rows) { return static_cast<unsigned int>(ceil_div<int64_t>(rows, kRowsPerBlock)); }

}  // namespace

void CudaBackend::attention_forward(Dest out, float* probs, const float* q, const float* k, const float* v,
                                    const AttentionShape& s) {
    const int64_t H = s.heads, pairs = s.batch * H, nq = s.q_len, nk = s.kv_len, hd = s.head_dim;
    if (pairs <= 0 || nq <= 0 || hd <= 0) return;
    use_device();
    if (nk <= 0) {  // no keys: an empty sum
        const int64_t rows = s.batch * nq, cols = H * hd;
        with_dest(out, [&](auto* o) {
            fill_rows_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, stream_>>>(o, s.ldo, rows, cols, 0.0f);
        });
        CAE_CUDA_CHECK_LAUNCH("fill_rows_kernel");
        return;
    }
    const int64_t nq_elems = pairs * nq * hd, nk_elems = pairs * nk * hd;
    const bool bf16 = s.precision == GemmPrecision::BF16;
    const size_t esz = bf16 ? sizeof(uint16_t) : sizeof(float);  // gathered operands: bf16 for bf16 products
    Scratch qg(*this, nq_elems * esz), kg(*this, nk_elems * esz), vg(*this, nk_elems * esz),
        og(*this, nq_elems * sizeof(float));
    gather_heads(qg, q, s.ldq, s, nq);
    gather_heads(kg, k, s.ldk, s, nk);
    gather_heads(vg, v, s.ldv, s, nk);
    // Without a backward to follow (probs null, as the CPU backend accepts), the
    // probabilities still need a home for the softmax and P V.
    std::unique_ptr<Scratch> own_probs;
    if (probs == nullptr) {
        own_probs = std::make_unique<Scratch>(*this, static_cast<size_t>(pairs * nq * nk) * sizeof(float));
        probs = own_probs->as<float>();
    }

    // probs = scale Q K^T  [Nq, Nk] per pair
    run_gemm(pair_gemm(false, true, nq, nk, hd, s.scale, operand(qg, bf16), hd, operand(kg, bf16), hd, probs, nk, pairs,
                       nq * hd, nk * hd, nq * nk, s.precision));
    std::unique_ptr<Scratch> p16;  // bf16: P rounded for P V, beside the fp32 P kept for the backward
    if (bf16) p16 = std::make_unique<Scratch>(*this, static_cast<size_t>(pairs * nq * nk) * sizeof(uint16_t));
    softmax_rows_kernel<<<row_blocks(pairs * nq), kRowsPerBlock * kWarp, 0, stream_>>>(
        probs, bf16 ? p16->as<__nv_bfloat16>() : nullptr, pairs * nq, nk);
    CAE_CUDA_CHECK_LAUNCH("softmax_rows_kernel");
    // O = P V  [Nq, hd] per pair
    run_gemm(pair_gemm(false, false, nq, hd, nk, 1.0f, bf16 ? operand(*p16, true) : fp32(probs), nk, operand(vg, bf16),
                       hd, og.as<float>(), hd, pairs, nq * nk, nk * hd, nq * hd, s.precision));
    with_dest(out, [&](auto* o) {
        scatter_heads_kernel<false><<<grid_for(nq_elems, kThreads), kThreads, 0, stream_>>>(o, og.as<float>(), s.ldo, H,
                                                                                            nq, hd, nq_elems);
    });
    CAE_CUDA_CHECK_LAUNCH("scatter_heads_kernel");
}

void CudaBackend::attention_backward(Dest dq, Dest dk, Dest dv, const float* dout, const float* probs, const float* q,
                                     const float* k, const float* v, const AttentionShape& s) {
    const int64_t H = s.heads, pairs = s.batch * H, nq = s.q_len, nk = s.kv_len, hd = s.head_dim;
    const bool want_q = !dq.empty(), want_k = !dk.empty(), want_v = !dv.empty();
    if (pairs <= 0 || nq <= 0 || nk <= 0 || hd <= 0 || (!want_q && !want_k && !want_v)) return;
    use_device();
    const int64_t nq_elems = pairs * nq * hd, nk_elems = pairs * nk * hd;
    const bool bf16 = s.precision == GemmPrecision::BF16;
    const size_t esz = bf16 ? sizeof(uint16_t) : sizeof(float);
    // A gradient's heads back into its rows: added to fp32, or written as bf16.
    auto scatter = [&](Dest dst, const float* src, int64_t ld, int64_t N) {
        const int64_t n = pairs * N * hd;
        with_dest(dst, [&](auto* d) {
            scatter_heads_kernel<true><<<grid_for(n, kThreads), kThreads, 0, stream_>>>(d, src, ld, H, N, hd, n);
        });
        CAE_CUDA_CHECK_LAUNCH("scatter_heads_kernel");
    };
    Scratch dog(*this, nq_elems * esz);
    gather_heads(dog, dout, s.ldo, s, nq);

    if (want_v) {  // dV = P^T dO  [Nk, hd]
        Scratch dvg(*this, nk_elems * sizeof(float));
        run_gemm(pair_gemm(true, false, nk, hd, nq, 1.0f, fp32(probs), nk, operand(dog, bf16), hd, dvg.as<float>(), hd,
                           pairs, nq * nk, nq * hd, nk * hd, s.precision));
        scatter(dv, dvg.as<float>(), s.ldv, nk);
    }
    if (!want_q && !want_k) return;

    Scratch ds(*this, pairs * nq * nk * sizeof(float));
    {  // dP = dO V^T  [Nq, Nk]; then dS (in place, or as bf16 only for bf16 products)
        Scratch vg(*this, nk_elems * esz);
        gather_heads(vg, v, s.ldv, s, nk);
        run_gemm(pair_gemm(false, true, nq, nk, hd, 1.0f, operand(dog, bf16), hd, operand(vg, bf16), hd, ds.as<float>(),
                           nk, pairs, nq * hd, nk * hd, nq * nk, s.precision));
    }
    std::unique_ptr<Scratch> ds16;
    if (bf16) ds16 = std::make_unique<Scratch>(*this, static_cast<size_t>(pairs * nq * nk) * sizeof(uint16_t));
    softmax_backward_rows_kernel<<<row_blocks(pairs * nq), kRowsPerBlock * kWarp, 0, stream_>>>(
        ds.as<float>(), bf16 ? ds16->as<__nv_bfloat16>() : nullptr, probs, pairs * nq, nk);
    CAE_CUDA_CHECK_LAUNCH("softmax_backward_rows_kernel");
    const Operand dS = bf16 ? operand(*ds16, true) : fp32(ds.as<float>());
    if (want_q) {  // dQ = scale dS K  [Nq, hd]
        Scratch kg(*this, nk_elems * esz), dqg(*this, nq_elems * sizeof(float));
        gather_heads(kg, k, s.ldk, s, nk);
        run_gemm(pair_gemm(false, false, nq, hd, nk, s.scale, dS, nk, operand(kg, bf16), hd, dqg.as<float>(), hd, pairs,
                           nq * nk, nk * hd, nq * hd, s.precision));
        scatter(dq, dqg.as<float>(), s.ldq, nq);
    }
    if (want_k) {  // dK = scale dS^T Q  [Nk, hd]
        Scratch qg(*this, nq_elems * esz), dkg(*this, nk_elems * sizeof(float));
        gather_heads(qg, q, s.ldq, s, nq);
        run_gemm(pair_gemm(true, false, nk, hd, nq, s.scale, dS, nk, operand(qg, bf16), hd, dkg.as<float>(), hd, pairs,
                           nq * nk, nq * hd, nk * hd, s.precision));
        scatter(dk, dkg.as<float>(), s.ldk, nk);
    }
}

// dst [B*H, N, hd] <- the heads of src (row stride ld): fp32, or rounded to bf16 for bf16 products.
void CudaBackend::gather_heads(const Scratch& dst, const float* src, int64_t ld, const AttentionShape& s, int64_t N) {
    const int64_t n = s.batch * s.heads * N * s.head_dim;
    if (s.precision == GemmPrecision::BF16) {
        gather_heads_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(dst.as<__nv_bfloat16>(), src, ld, s.heads,
                                                                            N, s.head_dim, n);
    } else {
        gather_heads_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(dst.as<float>(), src, ld, s.heads, N,
                                                                            s.head_dim, n);
    }
    CAE_CUDA_CHECK_LAUNCH("gather_heads_kernel");
}

}  // namespace cae::cuda
