// The fused attention of the CUDA backend (src/cuda/attention_fused.h), run on the host: every
// thread of every block in turn, step by step, load phase then work phase, as the CUDA kernels run
// them between __syncthreads(). Its forward output and accumulated gradients are compared with
// the CPU backend's attention on the same inputs: fp32 within 1e-5, bf16 within 1e-4 (an fp32 sum
// that differs in its last bit may round a probability to the other bf16 neighbour). Every head
// dim with kernels (16 to 128 in steps of 16), fp32 and bf16, self-attention on a fused qkv buffer and
// cross-attention with separate buffers, tails of the 64-row blocks and of the shared tiles
// (64 rows up to head dim 64, 32 above), sequences shorter than a tile, up to 256 queries and
// keys, and each gradient alone.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "attention_fused.h"
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

// One kernel's grid on the host: per block, the steps of the pass; per step, every thread's load
// (when the step loads) and then every thread's work. Shared memory starts as NaN, sized exactly
// as the kernel's launch; so does every thread's state.
template <int HD, fused::Pass P>
void run_pass(const fused::Args& a, int64_t pairs) {
    const int64_t own = P == fused::Pass::BackwardK ? a.nk : a.nq, other = P == fused::Pass::BackwardK ? a.nq : a.nk;
    const int64_t blocks = (own + fused::kRows - 1) / fused::kRows;
    std::vector<float> smem;
    std::vector<fused::RowState<HD>> state(fused::kRows);
    for (int64_t pair = 0; pair < pairs; ++pair) {
        for (int64_t t = 0; t < blocks; ++t) {
            smem.assign(static_cast<size_t>(fused::smem_floats<HD, P>(other)), NAN);
            std::memset(static_cast<void*>(state.data()), 0xff, state.size() * sizeof(state[0]));  // NaN
            const int steps = fused::step_count<HD, P>(a);
            for (int s = 0; s < steps; ++s) {
                const unsigned what = fused::step_loads<HD, P>(a, s);
                if (what) {
                    for (int tid = 0; tid < fused::kRows; ++tid)
                        fused::step_load<HD, P>(a, pair, s, what, smem.data(), tid);
                }
                for (int tid = 0; tid < fused::kRows; ++tid)
                    fused::step_work<HD, P>(a, pair, t, s, smem.data(), tid, state[static_cast<size_t>(tid)]);
            }
        }
    }
}

// The forward, or the backward: the query side, then (one kernel after the other) the key side.
template <int HD>
void run_fused(const fused::Args& a, int64_t pairs, bool backward) {
    if (!backward) {
        run_pass<HD, fused::Pass::Forward>(a, pairs);
        return;
    }
    run_pass<HD, fused::Pass::BackwardQ>(a, pairs);
    if (a.dk || a.dv) run_pass<HD, fused::Pass::BackwardK>(a, pairs);
}

// The gradients a backward computes (the others are null).
enum Grads { kDq = 1, kDk = 2, kDv = 4, kAll = 7 };

double max_abs_diff(const Vec& a, const Vec& b) {
    double m = 0.0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
    return m;
}

template <int HD>
void check_case(const std::string& name, int64_t B, int64_t H, int64_t nq, int64_t nk, bool self, int grads,
                bool bf16) {
    const int64_t D = H * HD;
    AttentionShape s = attention_shape(B, H, nq, nk, HD, bf16 ? GemmPrecision::BF16 : GemmPrecision::FP32);
    s.scale = 1.0f / std::sqrt(static_cast<float>(HD));
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
    float* dq_c = grads & kDq ? grad_c.data() + qo : nullptr;
    float* dk_c = grads & kDk ? grad_c.data() + ko : nullptr;
    float* dv_c = grads & kDv ? grad_c.data() + vo : nullptr;
    be->attention_backward(dq_c, dk_c, dv_c, dout.data(), probs.data(), x.data() + qo, x.data() + ko, x.data() + vo, s);

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
    a.dq = grads & kDq ? grad_f.data() + qo : nullptr;
    a.dk = grads & kDk ? grad_f.data() + ko : nullptr;
    a.dv = grads & kDv ? grad_f.data() + vo : nullptr;
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
    std::string which;
    for (auto [bit, g] : {std::pair<int, const char*>{kDq, "dq"}, {kDk, "dk"}, {kDv, "dv"}})
        if (grads & bit) which += (which.empty() ? "" : ", ") + std::string(g);
    const std::string label = "hd " + std::to_string(HD) + " " + name + (bf16 ? " bf16" : " fp32");
    harness::check_close(label + ": out", out_f.data(), out_c.data(), out_c.size(), tol);
    harness::check_close(label + ": " + which + " (accumulated)", grad_f.data(), grad_c.data(), grad_c.size(), tol);
    std::printf("    %-58s out %.1e, grads %.1e\n", (label + ": max abs diff").c_str(), max_abs_diff(out_f, out_c),
                max_abs_diff(grad_f, grad_c));
    // The forward with a bf16 output: every element the bf16 rounding of the fp32 output, bitwise
    // (the padding columns untouched).
    std::vector<uint16_t> out16(out_c.size(), 0xffff);
    fused::Args a16 = a;
    a16.out = nullptr;
    a16.out16 = out16.data();
    a16.stats = nullptr;
    run_fused<HD>(a16, B * H, false);
    bool same16 = true;
    for (size_t i = 0; i < out16.size(); ++i) {
        const bool column = static_cast<int64_t>(i) % s.ldo < D;
        same16 = same16 && out16[i] == (column ? float_to_bf16(out_f[i]) : 0xffff);
    }
    harness::check(same16, label + ": the bf16 output is the fp32 output rounded, bitwise");
    // The backward with bf16 gradients (overwritten): the requested gradients into zeros, rounded,
    // bitwise; nothing else of the buffer written.
    Vec zero_grad(grad0.size(), 0.0f);
    fused::Args az = a;
    az.dq = grads & kDq ? zero_grad.data() + qo : nullptr;
    az.dk = grads & kDk ? zero_grad.data() + ko : nullptr;
    az.dv = grads & kDv ? zero_grad.data() + vo : nullptr;
    run_fused<HD>(az, B * H, true);
    std::vector<uint16_t> g16(grad0.size(), 0xffff);
    fused::Args ab = az;
    ab.grads16 = true;
    ab.dq = grads & kDq ? reinterpret_cast<float*>(g16.data() + qo) : nullptr;
    ab.dk = grads & kDk ? reinterpret_cast<float*>(g16.data() + ko) : nullptr;
    ab.dv = grads & kDv ? reinterpret_cast<float*>(g16.data() + vo) : nullptr;
    run_fused<HD>(ab, B * H, true);
    // The elements of a requested gradient: its rows' head columns.
    auto in_grad = [&](int64_t i, int bit, int64_t base, int64_t ld, int64_t rows) {
        const int64_t off = i - base;
        return (grads & bit) && off >= 0 && off / ld < rows && off % ld < D;
    };
    bool same_g16 = true;
    for (size_t i = 0; i < g16.size(); ++i) {
        const int64_t e = static_cast<int64_t>(i);
        const bool written = in_grad(e, kDq, qo, s.ldq, B * nq) || in_grad(e, kDk, ko, s.ldk, B * nk) ||
                             in_grad(e, kDv, vo, s.ldv, B * nk);
        same_g16 = same_g16 && g16[i] == (written ? float_to_bf16(zero_grad[i]) : uint16_t{0xffff});
    }
    harness::check(same_g16, label + ": bf16 gradients = the gradients into zeros rounded, bitwise");
    // Only the gradient's own rows moved: the untouched elements of the buffer stayed bitwise.
    bool rest = true;
    for (size_t i = 0; i < grad0.size(); ++i) {
        if (grad_c[i] == grad0[i]) rest = rest && grad_f[i] == grad0[i];
    }
    harness::check(rest, label + ": no element outside " + which + " written");
}

struct Case {
    const char* name;
    int64_t batch, heads, nq, nk;
    bool self;
    int grads;
};

template <int HD>
void check_head_dim(std::initializer_list<Case> cases) {
    for (bool bf16 : {false, true}) {
        for (const Case& c : cases) check_case<HD>(c.name, c.batch, c.heads, c.nq, c.nk, c.self, c.grads, bf16);
    }
}

// The most shared memory a block of the head dim needs (a tile's worth: 256 rows need no more).
template <int HD>
int64_t most_smem_bytes() {
    return static_cast<int64_t>(sizeof(float)) * std::max({fused::smem_floats<HD, fused::Pass::Forward>(256),
                                                           fused::smem_floats<HD, fused::Pass::BackwardQ>(256),
                                                           fused::smem_floats<HD, fused::Pass::BackwardK>(256)});
}

}  // namespace

TEST_CASE("fused attention: at most 49,920 bytes of shared memory per block, any length") {
    const int64_t most = std::max({most_smem_bytes<16>(), most_smem_bytes<32>(), most_smem_bytes<48>(),
                                   most_smem_bytes<64>(), most_smem_bytes<80>(), most_smem_bytes<96>(),
                                   most_smem_bytes<112>(), most_smem_bytes<128>()});
    std::printf("    most shared memory per block: %lld bytes (head dim 128: %lld)\n", static_cast<long long>(most),
                static_cast<long long>(most_smem_bytes<128>()));
    harness::check(most == 49920, "head dim 64's key side needs the most, 49,920 bytes");
    using fused::Pass;
    harness::check(fused::smem_floats<64, Pass::BackwardK>(1000) == fused::smem_floats<64, Pass::BackwardK>(64),
                   "a tile's worth whatever the length");
}

TEST_CASE("fused attention on the host, head dims 16 to 64 (tiles of 64 rows, one slice)") {
    check_head_dim<16>({{"self, 1 token", 1, 4, 1, 1, true, kAll},
                        {"cross, 65 queries, 256 keys (4 tiles)", 1, 2, 65, 256, false, kAll}});
    check_head_dim<32>({{"self, 2 x 3 heads x 99 (block and tile tails)", 2, 3, 99, 99, true, kAll},
                        {"cross, 130 queries (3 blocks), 47 keys (< 1 tile)", 1, 2, 130, 47, false, kAll}});
    check_head_dim<48>({{"self, 2 x 2 heads x 64 (1 full block and tile)", 2, 2, 64, 64, true, kAll},
                        {"cross, 33 queries, 200 keys", 1, 2, 33, 200, false, kAll}});
    check_head_dim<64>({{"self, ViT-B encoder (2 x 3 heads x 99)", 2, 3, 99, 99, true, kAll},
                        {"cross, regressor-like (Nq 70, Nk 140)", 2, 2, 70, 140, false, kAll},
                        {"self, 256 tokens (4 blocks, 4 tiles)", 1, 1, 256, 256, true, kAll}});
}

TEST_CASE("fused attention on the host, head dims 80 to 128 (tiles of 32 rows, two slices)") {
    check_head_dim<80>({{"self, ViT-H/16 sequence (197 tokens)", 1, 2, 197, 197, true, kAll},
                        {"cross, 98 queries, 31 keys (< 1 tile)", 1, 2, 98, 31, false, kAll}});
    check_head_dim<96>({{"self, 160 tokens (5 full tiles)", 1, 2, 160, 160, true, kAll},
                        {"cross, 33 queries, 225 keys", 1, 2, 33, 225, false, kAll}});
    check_head_dim<112>({{"self, 77 tokens", 1, 2, 77, 77, true, kAll},
                         {"cross, 256 queries, 96 keys", 1, 1, 256, 96, false, kAll}});
    check_head_dim<128>({{"self, 256 tokens (the longest)", 1, 1, 256, 256, true, kAll},
                         {"cross, 100 queries, 129 keys (a 1-row tile)", 1, 2, 100, 129, false, kAll}});
}

TEST_CASE("fused attention on the host, each gradient alone and dq with dv") {
    check_head_dim<16>({{"self, 70 tokens", 1, 2, 70, 70, true, kDq | kDv}});
    check_head_dim<48>({{"self, 90 tokens", 1, 2, 90, 90, true, kDk}});
    check_head_dim<80>({{"cross, 70 queries, 100 keys", 1, 2, 70, 100, false, kDv}});
    check_head_dim<128>({{"cross, 40 queries, 70 keys", 1, 2, 40, 70, false, kDq}});
}

HARNESS_MAIN
