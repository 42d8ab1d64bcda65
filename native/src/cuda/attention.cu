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
//
// Forward, per pair: S = scale Q K^T straight into probs [B, H, Nq, Nk]; row softmax in place;
// O = P V, scattered into out (row stride ldo).
// Backward: dV += P^T dO; dP = dO V^T; dS = P (dP - rowsum(dP P)); dQ += scale dS K;
// dK += scale dS^T Q. A null gradient output is skipped (and its products with it).
#include <cmath>

#include "cuda/cuda_backend.h"
#include "cuda/kernels.cuh"

namespace cae::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = 8;  // softmax: one warp per row

// dst [B*H, N, hd] <- src [B, N, ld] (head h at column h*hd)
__global__ void gather_heads_kernel(float* __restrict__ dst, const float* __restrict__ src, int64_t ld, int64_t H,
                                    int64_t N, int64_t hd, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t e = i % hd, row = i / hd;  // row = (b*H + h)*N + t
        const int64_t t = row % N, bh = row / N;
        const int64_t h = bh % H, b = bh / H;
        dst[i] = src[(b * N + t) * ld + h * hd + e];
    }
}

// dst [B, N, ld] (=, or += when ADD) <- src [B*H, N, hd]
template <bool ADD>
__global__ void scatter_heads_kernel(float* __restrict__ dst, const float* __restrict__ src, int64_t ld, int64_t H,
                                     int64_t N, int64_t hd, int64_t n) {
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t e = i % hd, row = i / hd;
        const int64_t t = row % N, bh = row / N;
        const int64_t h = bh % H, b = bh / H;
        float* d = dst + (b * N + t) * ld + h * hd + e;
        if (ADD) {
            *d += src[i];
        } else {
            *d = src[i];
        }
    }
}

// Rows of s [rows, n] in place: softmax.
__global__ void __launch_bounds__(kRowsPerBlock* kWarp) softmax_rows_kernel(float* __restrict__ s, int64_t rows, int64_t n) {
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
    for (int64_t c = lane; c < n; c += kWarp) r[c] *= inv;
}

// Rows of dp [rows, n] in place: dp = p (dp - sum(dp p)).
__global__ void __launch_bounds__(kRowsPerBlock* kWarp)
    softmax_backward_rows_kernel(float* __restrict__ dp, const float* __restrict__ p, int64_t rows, int64_t n) {
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (row >= rows) return;
    float* d = dp + row * n;
    const float* pr = p + row * n;
    float dot = 0.0f;
    for (int64_t c = lane; c < n; c += kWarp) dot += d[c] * pr[c];
    dot = warp_sum(dot);
    for (int64_t c = lane; c < n; c += kWarp) d[c] = pr[c] * (d[c] - dot);
}

__global__ void fill_rows_kernel(float* __restrict__ dst, int64_t ld, int64_t rows, int64_t cols, float value) {
    const int64_t n = rows * cols;
    for (int64_t i = global_thread(); i < n; i += grid_threads()) {
        const int64_t r = i / cols, c = i - r * cols;
        dst[r * ld + c] = value;
    }
}

// One strided-batched product over the B*H pairs, all matrices contiguous per pair.
GemmArgs pair_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                   const float* b, int64_t ldb, float* c, int64_t ldc, int64_t pairs, int64_t sa, int64_t sb,
                   int64_t sc, GemmPrecision precision) {
    GemmArgs g;
    g.precision = precision;
    g.trans_a = ta;
    g.trans_b = tb;
    g.m = m;
    g.n = n;
    g.k = k;
    g.alpha = alpha;
    g.a = a;
    g.lda = lda;
    g.stride_a = sa;
    g.b = b;
    g.ldb = ldb;
    g.stride_b = sb;
    g.beta = 0.0f;
    g.c = c;
    g.ldc = ldc;
    g.stride_c = sc;
    g.batch = pairs;
    return g;
}

unsigned int row_blocks(int64_t rows) { return static_cast<unsigned int>(ceil_div<int64_t>(rows, kRowsPerBlock)); }

}  // namespace

void CudaBackend::attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                                    const AttentionShape& s) {
    const int64_t H = s.heads, pairs = s.batch * H, nq = s.q_len, nk = s.kv_len, hd = s.head_dim;
    if (pairs <= 0 || nq <= 0 || hd <= 0) return;
    use_device();
    if (nk <= 0) {  // no keys: an empty sum
        const int64_t rows = s.batch * nq, cols = H * hd;
        fill_rows_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, stream_>>>(out, s.ldo, rows, cols, 0.0f);
        CAE_CUDA_CHECK_LAUNCH("fill_rows_kernel");
        return;
    }
    if (fused_attention_applies(s)) {
        fused_attention_forward(out, probs, q, k, v, s);
        return;
    }
    const int64_t nq_elems = pairs * nq * hd, nk_elems = pairs * nk * hd;
    Scratch qg(*this, nq_elems * sizeof(float)), kg(*this, nk_elems * sizeof(float)),
        vg(*this, nk_elems * sizeof(float)), og(*this, nq_elems * sizeof(float));
    auto gather = [&](float* dst, const float* src, int64_t ld, int64_t N) {
        const int64_t n = pairs * N * hd;
        gather_heads_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(dst, src, ld, H, N, hd, n);
        CAE_CUDA_CHECK_LAUNCH("gather_heads_kernel");
    };
    gather(qg.as<float>(), q, s.ldq, nq);
    gather(kg.as<float>(), k, s.ldk, nk);
    gather(vg.as<float>(), v, s.ldv, nk);

    // probs = scale Q K^T  [Nq, Nk] per pair
    run_gemm(pair_gemm(false, true, nq, nk, hd, s.scale, qg.as<float>(), hd, kg.as<float>(), hd, probs, nk, pairs,
                       nq * hd, nk * hd, nq * nk, s.precision));
    softmax_rows_kernel<<<row_blocks(pairs * nq), kRowsPerBlock * kWarp, 0, stream_>>>(probs, pairs * nq, nk);
    CAE_CUDA_CHECK_LAUNCH("softmax_rows_kernel");
    // O = P V  [Nq, hd] per pair
    run_gemm(pair_gemm(false, false, nq, hd, nk, 1.0f, probs, nk, vg.as<float>(), hd, og.as<float>(), hd, pairs,
                       nq * nk, nk * hd, nq * hd, s.precision));
    scatter_heads_kernel<false><<<grid_for(nq_elems, kThreads), kThreads, 0, stream_>>>(out, og.as<float>(), s.ldo, H,
                                                                                        nq, hd, nq_elems);
    CAE_CUDA_CHECK_LAUNCH("scatter_heads_kernel");
}

void CudaBackend::attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probs,
                                     const float* q, const float* k, const float* v, const AttentionShape& s) {
    const int64_t H = s.heads, pairs = s.batch * H, nq = s.q_len, nk = s.kv_len, hd = s.head_dim;
    if (pairs <= 0 || nq <= 0 || nk <= 0 || hd <= 0 || (!dq && !dk && !dv)) return;
    use_device();
    if (fused_attention_applies(s)) {  // the forward left row statistics in probs
        fused_attention_backward(dq, dk, dv, dout, probs, q, k, v, s);
        return;
    }
    const int64_t nq_elems = pairs * nq * hd, nk_elems = pairs * nk * hd;
    auto gather = [&](float* dst, const float* src, int64_t ld, int64_t N) {
        const int64_t n = pairs * N * hd;
        gather_heads_kernel<<<grid_for(n, kThreads), kThreads, 0, stream_>>>(dst, src, ld, H, N, hd, n);
        CAE_CUDA_CHECK_LAUNCH("gather_heads_kernel");
    };
    auto scatter_add = [&](float* dst, const float* src, int64_t ld, int64_t N) {
        const int64_t n = pairs * N * hd;
        scatter_heads_kernel<true><<<grid_for(n, kThreads), kThreads, 0, stream_>>>(dst, src, ld, H, N, hd, n);
        CAE_CUDA_CHECK_LAUNCH("scatter_heads_kernel");
    };
    Scratch dog(*this, nq_elems * sizeof(float));
    gather(dog.as<float>(), dout, s.ldo, nq);

    if (dv) {  // dV = P^T dO  [Nk, hd]
        Scratch dvg(*this, nk_elems * sizeof(float));
        run_gemm(pair_gemm(true, false, nk, hd, nq, 1.0f, probs, nk, dog.as<float>(), hd, dvg.as<float>(), hd, pairs,
                           nq * nk, nq * hd, nk * hd, s.precision));
        scatter_add(dv, dvg.as<float>(), s.ldv, nk);
    }
    if (!dq && !dk) return;

    Scratch ds(*this, pairs * nq * nk * sizeof(float));
    {  // dP = dO V^T  [Nq, Nk]; then dS in place
        Scratch vg(*this, nk_elems * sizeof(float));
        gather(vg.as<float>(), v, s.ldv, nk);
        run_gemm(pair_gemm(false, true, nq, nk, hd, 1.0f, dog.as<float>(), hd, vg.as<float>(), hd, ds.as<float>(), nk,
                           pairs, nq * hd, nk * hd, nq * nk, s.precision));
    }
    softmax_backward_rows_kernel<<<row_blocks(pairs * nq), kRowsPerBlock * kWarp, 0, stream_>>>(ds.as<float>(), probs,
                                                                                               pairs * nq, nk);
    CAE_CUDA_CHECK_LAUNCH("softmax_backward_rows_kernel");
    if (dq) {  // dQ = scale dS K  [Nq, hd]
        Scratch kg(*this, nk_elems * sizeof(float)), dqg(*this, nq_elems * sizeof(float));
        gather(kg.as<float>(), k, s.ldk, nk);
        run_gemm(pair_gemm(false, false, nq, hd, nk, s.scale, ds.as<float>(), nk, kg.as<float>(), hd, dqg.as<float>(),
                           hd, pairs, nq * nk, nk * hd, nq * hd, s.precision));
        scatter_add(dq, dqg.as<float>(), s.ldq, nq);
    }
    if (dk) {  // dK = scale dS^T Q  [Nk, hd]
        Scratch qg(*this, nq_elems * sizeof(float)), dkg(*this, nk_elems * sizeof(float));
        gather(qg.as<float>(), q, s.ldq, nq);
        run_gemm(pair_gemm(true, false, nk, hd, nq, s.scale, ds.as<float>(), nk, qg.as<float>(), hd, dkg.as<float>(),
                           hd, pairs, nq * nk, nq * hd, nk * hd, s.precision));
        scatter_add(dk, dkg.as<float>(), s.ldk, nk);
    }
}

}  // namespace cae::cuda
