// The fused attention of the CUDA backend (src/cuda/attention_fused.h), run on the host: every
// thread of every block in turn, phase by phase, as the CUDA kernels run them between
// __syncthreads(). Its forward output and accumulated gradients are compared with the CPU
// backend's attention on the same inputs: fp32 within 1e-5, bf16 within 1e-4 (an fp32 sum that
// differs in its last bit may round a probability to the other bf16 neighbour). Self-attention
// on a fused qkv buffer and cross-attention with separate buffers, tails of the 64-row blocks,
// head dims 32 and 64, up to 256 keys.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/backend.h"
#include "cuda/attention_fused.h"
#include "harness.h"

using namespace cae;

namespace {

using Vec = std::vector<float>;

Vec randn(int64_t n, uint64_t seed, float scale = 1.0f) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    Vec v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng);
    return v;
}

template <int HD>
void run_fused(fused::Args a, int64_t pairs, bool backward) {
    const int64_t q_tiles = (a.nq + fused::kRows - 1) / fused::kRows, k_tiles = (a.nk + fused::kRows - 1) / fused::kRows;
    std::vector<float> smem;
    for (int64_t pair = 0; pair < pairs; ++pair) {
        for (int64_t t = 0; t < q_tiles; ++t) {
            if (!backward) {
                smem.assign(static_cast<size_t>(fused::forward_smem_floats<HD>(a.nk)), NAN);
                for (int tid = 0; tid < fused::kRows; ++tid) fused::forward_load<HD>(a, pair, smem.data(), tid);
                for (int tid = 0; tid < fused::kRows; ++tid) fused::forward_row<HD>(a, pair, t, smem.data(), tid);
            } else {
                smem.assign(static_cast<size_t>(fused::backward_q_smem_floats<HD>(a.nk)), NAN);
                for (int tid = 0; tid < fused::kRows; ++tid) fused::backward_q_load<HD>(a, pair, smem.data(), tid);
                for (int tid = 0; tid < fused::kRows; ++tid) fused::backward_q_row<HD>(a, pair, t, smem.data(), tid);
            }
        }
    }
    if (!backward || (!a.dk && !a.dv)) return;
    for (int64_t pair = 0; pair < pairs; ++pair) {  // after every query-side block (one kernel after the other)
        for (int64_t t = 0; t < k_tiles; ++t) {
            smem.assign(static_cast<size_t>(fused::backward_k_smem_floats<HD>(a.nq)), NAN);
            for (int tid = 0; tid < fused::kRows; ++tid) fused::backward_k_load<HD>(a, pair, smem.data(), tid);
            for (int tid = 0; tid < fused::kRows; ++tid) fused::backward_k_row<HD>(a, pair, t, smem.data(), tid);
        }
    }
}

template <int HD>
void check_case(const std::string& name, int64_t B, int64_t H, int64_t nq, int64_t nk, bool self, bool bf16) {
    const int64_t D = H * HD;
    AttentionShape s;
    s.batch = B;
    s.heads = H;
    s.q_len = nq;
    s.kv_len = nk;
    s.head_dim = HD;
    s.scale = 1.0f / std::sqrt(static_cast<float>(HD));
    s.precision = bf16 ? GemmPrecision::BF16 : GemmPrecision::FP32;
    // self: q, k, v column blocks of one [B, N, 3D] buffer; cross: q [B, nq, D + 3], kv [B, nk, 2D]
    int64_t qo, ko, vo, size;
    if (self) {
        s.ldq = s.ldk = s.ldv = 3 * D;
        qo = 0, ko = D, vo = 2 * D;
        size = B * nq * 3 * D;
    } else {
        s.ldq = D + 3;
        s.ldk = s.ldv = 2 * D;
        qo = 0;
        ko = B * nq * s.ldq;
        vo = ko + D;
        size = ko + B * nk * 2 * D;
    }
    s.ldo = D + 2;
    // bf16: smaller scores (a flatter softmax), so that a probability rounded to the other bf16
    // neighbour after an fp32 difference in its last bit moves the output by little.
    const Vec x = randn(size, 7, bf16 ? 0.6f : 1.5f), dout = randn(B * nq * s.ldo, 8), grad0 = randn(size, 9, 0.1f);
    auto be = make_cpu_backend(2);

    // CPU backend
    Vec out_c(static_cast<size_t>(B * nq * s.ldo), 0.0f), probs(static_cast<size_t>(B * H * nq * nk)), grad_c = grad0;
    be->attention_forward(out_c.data(), probs.data(), x.data() + qo, x.data() + ko, x.data() + vo, s);
    be->attention_backward(grad_c.data() + qo, grad_c.data() + ko, grad_c.data() + vo, dout.data(), probs.data(),
                           x.data() + qo, x.data() + ko, x.data() + vo, s);

    // fused, emulated
    Vec out_f(out_c.size(), 0.0f), stats(static_cast<size_t>(B * H * nq * 2), NAN), rowdot(static_cast<size_t>(B * H * nq), NAN),
        grad_f = grad0;
    fused::Args a{};
    a.q = x.data() + qo;
    a.k = x.data() + ko;
    a.v = x.data() + vo;
    a.ldq = s.ldq;
    a.ldk = s.ldk;
    a.ldv = s.ldv;
    a.out = out_f.data();
    a.dout = dout.data();
    a.ldo = s.ldo;
    a.dq = grad_f.data() + qo;
    a.dk = grad_f.data() + ko;
    a.dv = grad_f.data() + vo;
    a.stats = stats.data();
    a.rowdot = rowdot.data();
    a.heads = H;
    a.nq = nq;
    a.nk = nk;
    a.scale = s.scale;
    a.bf16 = bf16;
    run_fused<HD>(a, B * H, false);
    run_fused<HD>(a, B * H, true);

    const double tol = bf16 ? 1e-4 : 1e-5;
    const std::string label = name + (bf16 ? " bf16" : " fp32");
    harness::check_close(label + ": out", out_f.data(), out_c.data(), out_c.size(), tol);
    harness::check_close(label + ": dq, dk, dv (accumulated)", grad_f.data(), grad_c.data(), grad_c.size(), tol);
    // Only the gradient's own rows moved: the untouched elements of the buffer stayed bitwise.
    bool rest = true;
    for (size_t i = 0; i < grad0.size(); ++i) {
        if (grad_c[i] == grad0[i]) rest = rest && grad_f[i] == grad0[i];
    }
    harness::check(rest, label + ": no element outside dq, dk, dv written");
}

}  // namespace

TEST_CASE("fused attention, run on the host, against the CPU backend") {
    for (bool bf16 : {false, true}) {
        check_case<64>("self, ViT-B encoder tile tail (2 x 3 heads x 99)", 2, 3, 99, 99, true, bf16);
        check_case<64>("cross, regressor-like (Nq 70, Nk 140)", 2, 2, 70, 140, false, bf16);
        check_case<32>("self, head dim 32, 1 token", 1, 4, 1, 1, true, bf16);
        check_case<32>("cross, 256 keys, 65 queries", 1, 2, 65, 256, false, bf16);
    }
}

HARNESS_MAIN
