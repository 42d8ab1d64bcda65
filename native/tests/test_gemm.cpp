// GEMM: the built-in kernel and the OpenBLAS path against a naive double-precision reference,
// for every transpose combination, alpha/beta, padded strides, batches and odd sizes; beta = 0
// over NaN; results per thread count.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "cpu/cpu_backend.h"
#include "harness.h"

using namespace cae;

namespace {

struct Shape {
    int64_t m, n, k;
};

// Sizes around the register tile (6 x 16), the blocks (KC 256, MC 96, NC 4096) and degenerate
// ones.
const Shape kShapes[] = {{1, 1, 1},     {17, 33, 65},  {6, 16, 8},     {7, 17, 300}, {100, 50, 257},
                         {130, 40, 20}, {3, 129, 513}, {64, 48, 1000}, {97, 4100, 5}};

// A batch of GEMMs with every matrix in its own padded storage, and the double reference.
struct Problem {
    GemmArgs g;
    std::vector<float> a, b, c;
    std::vector<double> want;
    int64_t c_rows, c_size;

    // bf16: a BF16 GEMM, against the reference on operands rounded to bf16.
    Problem(const Shape& s, bool ta, bool tb, float alpha, float beta, int64_t batch, uint64_t seed,
            bool nan_c = false, bool bf16 = false) {
        std::mt19937_64 rng(seed);
        std::normal_distribution<float> dist(0.0f, 1.0f);
        const int64_t pad = 3;
        const int64_t a_rows = ta ? s.k : s.m, a_cols = ta ? s.m : s.k;
        const int64_t b_rows = tb ? s.n : s.k, b_cols = tb ? s.k : s.n;
        g.trans_a = ta;
        g.trans_b = tb;
        g.m = s.m;
        g.n = s.n;
        g.k = s.k;
        g.alpha = alpha;
        g.beta = beta;
        g.batch = batch;
        g.lda = a_cols + pad;
        g.ldb = b_cols + 2 * pad;
        g.ldc = s.n + pad;
        g.stride_a = a_rows * g.lda + 5;
        g.stride_b = b_rows * g.ldb + 7;
        c_rows = s.m;
        c_size = s.m * g.ldc;
        g.stride_c = c_size + 11;
        a.resize(batch * g.stride_a);
        b.resize(batch * g.stride_b);
        c.resize(batch * g.stride_c);
        for (float& x : a) x = dist(rng);
        for (float& x : b) x = dist(rng);
        for (float& x : c) x = nan_c ? std::numeric_limits<float>::quiet_NaN() : dist(rng);
        g.a = a.data();
        g.b = b.data();
        g.c = c.data();
        if (bf16) g.precision = GemmPrecision::BF16;
        auto op = [bf16](float x) -> double { return bf16 ? bf16_to_float(float_to_bf16(x)) : x; };

        want.assign(c.begin(), c.end());
        for (int64_t bi = 0; bi < batch; ++bi) {
            const float* A = a.data() + bi * g.stride_a;
            const float* B = b.data() + bi * g.stride_b;
            double* C = want.data() + bi * g.stride_c;
            for (int64_t i = 0; i < s.m; ++i)
                for (int64_t j = 0; j < s.n; ++j) {
                    double acc = 0.0;
                    for (int64_t p = 0; p < s.k; ++p) {
                        const double av = op(ta ? A[p * g.lda + i] : A[i * g.lda + p]);
                        const double bv = op(tb ? B[j * g.ldb + p] : B[p * g.ldb + j]);
                        acc += av * bv;
                    }
                    double& cv = C[i * g.ldc + j];
                    cv = alpha * acc + (beta == 0.0f ? 0.0 : beta * cv);
                }
        }
    }

    // The error over the C blocks; elements outside them (padding) must be untouched, which
    // the comparison against `want` (a copy of the original there) covers bitwise.
    double error() const {
        for (size_t i = 0; i < c.size(); ++i) {
            const bool inside = (i % g.stride_c) < static_cast<size_t>(c_size) &&
                                ((i % g.stride_c) % g.ldc) < static_cast<size_t>(g.n);
            if (!inside && !(std::isnan(want[i]) && std::isnan(c[i])) && static_cast<double>(c[i]) != want[i])
                return INFINITY;
        }
        double num = 0, den = 0;
        for (int64_t bi = 0; bi < g.batch; ++bi)
            for (int64_t i = 0; i < g.m; ++i)
                for (int64_t j = 0; j < g.n; ++j) {
                    const size_t at = bi * g.stride_c + i * g.ldc + j;
                    const double d = c[at] - want[at];
                    num += d * d;
                    den += want[at] * want[at];
                }
        if (std::isnan(num)) return INFINITY;
        return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
    }
};

using GemmFn = void (*)(const GemmArgs&, int);

struct Impl {
    const char* name;
    GemmFn fn;
    int threads;
};

std::vector<Impl> impls() {
    std::vector<Impl> all = {{"builtin/1t", cpu::gemm_builtin, 1},
                             {"builtin/2t", cpu::gemm_builtin, 2},
                             {"builtin/3t", cpu::gemm_builtin, 3}};
    if (cpu::have_blas()) {
        all.push_back({"blas/1t", cpu::gemm_blas, 1});
        all.push_back({"blas/2t", cpu::gemm_blas, 2});
        all.push_back({"blas/3t", cpu::gemm_blas, 3});
    }
    return all;
}

std::string shape_name(const Shape& s) {
    return std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k);
}

// fp32 sums over k terms drift like sqrt(k) ulp; 1e-5 holds up to k ~ 1e4 with margin.
constexpr double kTol = 1e-5;

}  // namespace

TEST_CASE("gemm: transposes x alpha/beta x shapes, padded strides, batch 2") {
    const float alphas[] = {1.0f, -1.25f, 0.5f, 2.0f};
    const float betas[] = {0.0f, 1.0f, 0.75f, -0.5f};
    for (const Impl& im : impls()) {
        for (const Shape& s : kShapes) {
            double worst = 0.0;
            uint64_t seed = 1;
            // Every transpose with two alpha/beta pairs; over the four transposes every alpha
            // meets two betas.
            for (int t = 0; t < 4; ++t) {
                for (int ab = 0; ab < 2; ++ab) {
                    Problem pr(s, t & 1, t & 2, alphas[(t + 2 * ab) % 4], betas[(2 * t + ab) % 4], 2, seed++);
                    im.fn(pr.g, im.threads);
                    worst = std::max(worst, pr.error());
                }
            }
            harness::check_error(std::string("gemm ") + im.name + " " + shape_name(s) +
                                     " (4 transposes x 2 alpha/beta, batch 2, worst)", worst, kTol);
        }
    }
}

TEST_CASE("gemm: beta = 0 never reads C (C full of NaN)") {
    for (const Impl& im : impls()) {
        double worst = 0.0;
        for (const Shape& s : {Shape{17, 33, 65}, Shape{130, 40, 20}, Shape{1, 1, 1}}) {
            for (int t = 0; t < 4; ++t) {
                Problem pr(s, t & 1, t & 2, 1.5f, 0.0f, 2, 40 + t, true);
                im.fn(pr.g, im.threads);
                worst = std::max(worst, pr.error());
            }
        }
        harness::check_error(std::string("gemm ") + im.name + " beta=0 over NaN", worst, kTol);
    }
}

TEST_CASE("gemm: k = 0 and alpha = 0 scale C by beta") {
    for (const Impl& im : impls()) {
        Problem zero_k({9, 21, 0}, false, true, 1.0f, 0.5f, 2, 7);
        im.fn(zero_k.g, im.threads);
        Problem zero_k_nan({9, 21, 0}, true, false, 1.0f, 0.0f, 2, 8, true);
        im.fn(zero_k_nan.g, im.threads);
        Problem zero_alpha({9, 21, 5}, false, false, 0.0f, -2.0f, 2, 9);
        im.fn(zero_alpha.g, im.threads);
        harness::check_error(std::string("gemm ") + im.name + " k=0 beta=0.5", zero_k.error(), 0.0);
        harness::check_error(std::string("gemm ") + im.name + " k=0 beta=0 over NaN", zero_k_nan.error(), 0.0);
        harness::check_error(std::string("gemm ") + im.name + " alpha=0 beta=-2", zero_alpha.error(), 0.0);
    }
}

TEST_CASE("gemm: backend dispatch and ViT-sized products") {
    cpu::CpuBackend be(2);
    std::printf("    backend: %s\n", be.description().c_str());
    // x W^T for a linear layer, dW = dy^T x, and the attention batch of heads.
    const struct {
        Shape s;
        bool ta, tb;
        int64_t batch;
    } cases[] = {{{400, 192, 192}, false, true, 1}, {{192, 96, 400}, true, false, 1}, {{50, 50, 16}, false, true, 24}};
    for (const auto& c : cases) {
        Problem pr(c.s, c.ta, c.tb, 1.0f, 0.0f, c.batch, 77);
        be.gemm(pr.g);
        harness::check_error("gemm backend " + shape_name(c.s) + " batch " + std::to_string(c.batch), pr.error(), kTol);
    }
}

TEST_CASE("bf16 rounding: nearest, ties to even, specials") {
    auto bits = [](float f) { return float_to_bf16(f); };
    harness::check(bits(1.0f) == 0x3f80 && bits(-2.0f) == 0xc000, "exact values");
    harness::check(bits(1.0f + 1.0f / 256) == 0x3f80, "1 + 2^-8 (a tie) rounds to even: 1");
    harness::check(bits(1.0f + 3.0f / 256) == 0x3f82, "1 + 3*2^-8 (a tie) rounds to even: 1 + 2^-6");
    harness::check(bits(1.0f + 1.0f / 256 + 1.0f / 4096) == 0x3f81, "above the tie rounds up");
    harness::check(bits(INFINITY) == 0x7f80 && bits(-INFINITY) == 0xff80, "infinities");
    harness::check(bits(3.4e38f) == 0x7f80, "the largest floats round to infinity, as on the GPU");
    harness::check(std::isnan(bf16_to_float(bits(NAN))), "NaN stays NaN");
    harness::check(bf16_to_float(bits(1e-40f)) != 0.0f, "subnormals are kept");
    for (float x : {0.1f, -3.7f, 12345.678f, 1e-20f}) {
        const float r = bf16_to_float(bits(x));
        harness::check(std::abs(r - x) <= std::abs(x) * (1.0f / 256), "relative error <= 2^-8 for " + std::to_string(x));
    }
}

TEST_CASE("gemm: BF16 = the exact product of bf16-rounded operands, summed in fp32") {
    cpu::CpuBackend be(2);
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            for (const Shape& s : {Shape{17, 33, 65}, Shape{100, 50, 257}, Shape{3, 129, 513}}) {
                const std::string name = "bf16 " + shape_name(s) + (ta ? " tA" : "") + (tb ? " tB" : "");
                Problem pr(s, ta, tb, 0.5f, 1.0f, 2, 5, false, true);
                be.gemm(pr.g);
                harness::check_error(name + " vs bf16 reference", pr.error(), kTol);
                // The same numbers against the fp32 reference: the rounding is visible.
                Problem fp(s, ta, tb, 0.5f, 1.0f, 2, 5);
                std::vector<float> got = pr.c;
                fp.c = got;
                const double off = fp.error();
                harness::check(off > 1e-4 && off < 2e-2, name + ": differs from fp32 by " + std::to_string(off));
            }
    // Operands given already rounded: bitwise the same result.
    Problem p1(Shape{40, 30, 70}, false, true, 1.0f, 0.0f, 1, 9, false, true);
    Problem p2(Shape{40, 30, 70}, false, true, 1.0f, 0.0f, 1, 9, false, true);
    std::vector<uint16_t> a16(p2.a.size()), b16(p2.b.size());
    be.round_to_bf16(a16.data(), p2.a.data(), static_cast<int64_t>(a16.size()));
    be.round_to_bf16(b16.data(), p2.b.data(), static_cast<int64_t>(b16.size()));
    p2.g.a_bf16 = a16.data();
    p2.g.b_bf16 = b16.data();
    be.gemm(p1.g);
    be.gemm(p2.g);
    harness::check(std::memcmp(p1.c.data(), p2.c.data(), p1.c.size() * sizeof(float)) == 0,
                   "given bf16 operands give the same bits as rounding inside");
}

TEST_CASE("gemm: bias_grad = the sums of op(A) over k, overwritten, of the values the product reads") {
    cpu::CpuBackend be(2);
    for (bool bf16 : {false, true})
        for (const Shape& s : {Shape{17, 33, 65}, Shape{768, 64, 300}, Shape{5, 3, 1}}) {
            const std::string name = std::string(bf16 ? "bf16 " : "fp32 ") + shape_name(s);
            Problem pr(s, true, false, 1.0f, 1.0f, 1, 17, false, bf16);
            std::vector<float> bias_grad(static_cast<size_t>(s.m), 123.0f);  // overwritten, not added to
            pr.g.bias_grad = bias_grad.data();
            be.gemm(pr.g);
            harness::check_error(name + " product", pr.error(), kTol);
            double worst = 0.0;
            for (int64_t i = 0; i < s.m; ++i) {
                double want = 0.0, norm = 0.0;
                for (int64_t p = 0; p < s.k; ++p) {
                    const float x = pr.a[static_cast<size_t>(p * pr.g.lda + i)];
                    const double v = bf16 ? bf16_to_float(float_to_bf16(x)) : x;
                    want += v;
                    norm += std::abs(v);
                }
                worst = std::max(worst, std::abs(bias_grad[static_cast<size_t>(i)] - want) / norm);
            }
            std::printf("    %s bias_grad: max |error| / sum|a| %.2e\n", name.c_str(), worst);
            harness::check(worst < 1e-6, name + " bias_grad against the sums in double");
        }
    Problem plain({4, 4, 4}, false, false, 1.0f, 0.0f, 1, 3);
    std::vector<float> bias_grad(4);
    plain.g.bias_grad = bias_grad.data();
    bool thrown = false;
    try {
        be.gemm(plain.g);
    } catch (const Error& e) {
        thrown = e.status() == CAE_ERR_INVALID_ARGUMENT;
    }
    harness::check(thrown, "bias_grad without trans_a is refused");
}

TEST_CASE("gemm: bitwise repeatable per thread count; built-in equal across counts") {
    const Shape s{300, 200, 150};
    for (const Impl& im : impls()) {
        Problem first(s, false, true, 1.0f, 0.5f, 2, 99), second(s, false, true, 1.0f, 0.5f, 2, 99);
        im.fn(first.g, im.threads);
        im.fn(second.g, im.threads);
        const bool same = std::memcmp(first.c.data(), second.c.data(), first.c.size() * sizeof(float)) == 0;
        std::printf("    gemm %-10s 300x200x150 twice: %s\n", im.name, same ? "bitwise equal" : "DIFFERENT");
        harness::check(same, std::string("gemm ") + im.name + " differs between two runs");
    }
    Problem one(s, true, false, 1.0f, 0.0f, 2, 5), three(s, true, false, 1.0f, 0.0f, 2, 5);
    cpu::gemm_builtin(one.g, 1);
    cpu::gemm_builtin(three.g, 3);
    const bool same = std::memcmp(one.c.data(), three.c.data(), one.c.size() * sizeof(float)) == 0;
    std::printf("    gemm builtin 1 vs 3 threads: %s\n", same ? "bitwise equal" : "DIFFERENT");
    harness::check(same, "gemm builtin: 1 and 3 threads differ");
    if (cpu::have_blas()) {
        Problem blas(s, true, false, 1.0f, 0.0f, 2, 5);
        cpu::gemm_blas(blas.g, 2);
        harness::check_close("gemm blas/2t vs builtin/1t", blas.c.data(), one.c.data(), blas.c.size(), kTol);
    }
}

TEST_CASE("gemm: gemm_blas without OpenBLAS reports UNSUPPORTED") {
    if (cpu::have_blas()) {
        std::printf("    built with OpenBLAS: nothing to check\n");
        return;
    }
    Problem pr({2, 2, 2}, false, false, 1.0f, 0.0f, 1, 3);
    bool thrown = false;
    try {
        cpu::gemm_blas(pr.g, 1);
    } catch (const Error& e) {
        thrown = e.status() == CAE_ERR_UNSUPPORTED;
        std::printf("    gemm_blas: %s\n", e.what());
    }
    harness::check(thrown, "gemm_blas without OpenBLAS must throw CAE_ERR_UNSUPPORTED");
}

HARNESS_MAIN
