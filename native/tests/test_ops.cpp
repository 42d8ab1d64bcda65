// Every CPU op (GEMM aside: test_gemm) against a naive double-precision reference written here
// from the definitions in backend.h, on several random shapes, odd ones included. Every
// backward is checked against central finite differences of the double reference forward,
// through the scalar L = sum(R * f(inputs)) for a random projection R: the fp32 gradients are
// accumulated onto a random prefill (which is subtracted again), so the += contract is checked
// too. Finally each op must give bitwise equal results run twice, and equal results (within
// tolerance) for 1, 2 and 3 threads.
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "cpu/cpu_backend.h"
#include "harness.h"

using namespace cae;

namespace {

using Vec = std::vector<float>;
using DVec = std::vector<double>;

constexpr double kForwardTol = 1e-5;  // fp32 kernel vs double reference, rel L2
constexpr double kGradTol = 1e-3;     // fp32 backward vs double finite differences, rel L2

std::mt19937_64& rng() {
    static std::mt19937_64 r(20240607);
    return r;
}

Vec randn(int64_t n, float scale = 1.0f, float mean = 0.0f) {
    std::normal_distribution<float> dist(mean, scale);
    Vec v(static_cast<size_t>(n));
    for (float& x : v) x = dist(rng());
    return v;
}

DVec to_double(const Vec& v) { return DVec(v.begin(), v.end()); }

std::string dims(std::initializer_list<int64_t> d) {
    std::string s;
    for (int64_t x : d) s += (s.empty() ? "" : "x") + std::to_string(x);
    return s;
}

// dL/dx by central differences, L evaluated by `loss` on the current x; only where `use`.
DVec finite_difference(DVec& x, const std::function<double()>& loss,
                       const std::function<bool(size_t)>& use = nullptr) {
    DVec g(x.size(), 0.0);
    for (size_t i = 0; i < x.size(); ++i) {
        if (use && !use(i)) continue;
        const double keep = x[i];
        const double h = 1e-6 * std::max(1.0, std::abs(keep));
        x[i] = keep + h;
        const double up = loss();
        x[i] = keep - h;
        const double down = loss();
        x[i] = keep;
        g[i] = (up - down) / (2 * h);
    }
    return g;
}

// The fp32 gradient (after - prefill) against the finite differences, over the selected elements.
void check_gradient(const std::string& label, const Vec& after, const Vec& prefill, const DVec& fd,
                    const std::function<bool(size_t)>& use = nullptr) {
    DVec got, want;
    for (size_t i = 0; i < fd.size(); ++i) {
        if (use && !use(i)) continue;
        got.push_back(static_cast<double>(after[i]) - static_cast<double>(prefill[i]));
        want.push_back(fd[i]);
    }
    harness::check_close(label, got.data(), want.data(), got.size(), kGradTol);
}

double weighted_sum(const DVec& r, const DVec& y) {
    double s = 0.0;
    for (size_t i = 0; i < y.size(); ++i) s += r[i] * y[i];
    return s;
}

// ---- double references, from the definitions in backend.h

DVec ref_layernorm(const DVec& x, const DVec& w, const DVec& b, int64_t rows, int64_t C, double eps,
                   DVec* mean = nullptr, DVec* rstd = nullptr) {
    DVec out(x.size());
    for (int64_t r = 0; r < rows; ++r) {
        double mu = 0.0, var = 0.0;
        for (int64_t c = 0; c < C; ++c) mu += x[r * C + c];
        mu /= C;
        for (int64_t c = 0; c < C; ++c) var += (x[r * C + c] - mu) * (x[r * C + c] - mu);
        var /= C;
        const double rs = 1.0 / std::sqrt(var + eps);
        if (mean) (*mean)[r] = mu;
        if (rstd) (*rstd)[r] = rs;
        for (int64_t c = 0; c < C; ++c) out[r * C + c] = (x[r * C + c] - mu) * rs * w[c] + b[c];
    }
    return out;
}

// x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), written with erfc to keep the left tail exact.
double ref_gelu(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }

struct AttnCase {
    const char* name;
    int64_t batch, heads, nq, nk, hd;
    bool fused_qkv;  // q, k, v from one [B, N, 3D] buffer; else q alone and k, v fused [B, Nk, 2D]
    int64_t q_pad, o_pad;
};

// out [B, Nq, ldo], probs [B, H, Nq, Nk]
void ref_attention(const double* q, const double* k, const double* v, const AttentionShape& s, DVec& out,
                   DVec& probs) {
    for (int64_t b = 0; b < s.batch; ++b)
        for (int64_t h = 0; h < s.heads; ++h)
            for (int64_t i = 0; i < s.q_len; ++i) {
                DVec sc(s.kv_len);
                double mx = -INFINITY;
                for (int64_t j = 0; j < s.kv_len; ++j) {
                    double d = 0.0;
                    for (int64_t e = 0; e < s.head_dim; ++e)
                        d += q[(b * s.q_len + i) * s.ldq + h * s.head_dim + e] *
                             k[(b * s.kv_len + j) * s.ldk + h * s.head_dim + e];
                    sc[j] = s.scale * d;
                    mx = std::max(mx, sc[j]);
                }
                double sum = 0.0;
                for (double& x : sc) sum += (x = std::exp(x - mx));
                for (int64_t j = 0; j < s.kv_len; ++j) {
                    sc[j] /= sum;
                    probs[((b * s.heads + h) * s.q_len + i) * s.kv_len + j] = sc[j];
                }
                for (int64_t e = 0; e < s.head_dim; ++e) {
                    double o = 0.0;
                    for (int64_t j = 0; j < s.kv_len; ++j) o += sc[j] * v[(b * s.kv_len + j) * s.ldv + h * s.head_dim + e];
                    out[(b * s.q_len + i) * s.ldo + h * s.head_dim + e] = o;
                }
            }
}

DVec ref_normalize_rows(const Vec& x, int64_t rows, int64_t P, double eps) {
    DVec out(x.size());
    for (int64_t r = 0; r < rows; ++r) {
        double mu = 0.0, var = 0.0;
        for (int64_t c = 0; c < P; ++c) mu += x[r * P + c];
        mu /= P;
        for (int64_t c = 0; c < P; ++c) var += (x[r * P + c] - mu) * (x[r * P + c] - mu);
        var /= (P - 1);
        for (int64_t c = 0; c < P; ++c) out[r * P + c] = (x[r * P + c] - mu) / std::sqrt(var + eps);
    }
    return out;
}

// Distinct indices per row: the first n_sel of a random permutation of [0, N).
std::vector<int32_t> random_indices(int64_t B, int64_t N, int64_t n_sel) {
    std::vector<int32_t> idx;
    for (int64_t b = 0; b < B; ++b) {
        std::vector<int32_t> perm(N);
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng());
        idx.insert(idx.end(), perm.begin(), perm.begin() + n_sel);
    }
    return idx;
}

cpu::CpuBackend& backend(int threads = 2) {
    static cpu::CpuBackend one(1), two(2), three(3);
    return threads == 1 ? one : threads == 3 ? three : two;
}

}  // namespace

// ---------------------------------------------------------------- element-wise

TEST_CASE("fill, axpy, copy_rows") {
    auto& be = backend();
    for (int64_t n : {1, 13, 100003}) {
        Vec x(n, 1.0f);
        be.fill(x.data(), -2.5f, n);
        DVec want(n, -2.5);
        harness::check_close("fill n=" + std::to_string(n), x.data(), want.data(), n, 0.0);

        Vec y = randn(n), a = randn(n);
        DVec ref(n);
        for (int64_t i = 0; i < n; ++i) ref[i] = static_cast<double>(y[i]) + 0.75 * a[i];
        be.axpy(y.data(), a.data(), 0.75f, n);
        harness::check_close("axpy n=" + std::to_string(n), y.data(), ref.data(), n, kForwardTol);
    }
    // 5 x 7 block from a [5, 11] source into a [5, 9] destination; the rest stays.
    Vec src = randn(5 * 11), dst = randn(5 * 9);
    DVec want = to_double(dst);
    for (int64_t r = 0; r < 5; ++r)
        for (int64_t c = 0; c < 7; ++c) want[r * 9 + c] = src[r * 11 + c];
    be.copy_rows(dst.data(), 9, src.data(), 11, 5, 7);
    harness::check_close("copy_rows 5x7 (ld 11 -> 9)", dst.data(), want.data(), dst.size(), 0.0);
}

TEST_CASE("add_bias forward, bias_backward vs finite differences") {
    auto& be = backend();
    for (auto [rows, cols, ld] : {std::tuple<int64_t, int64_t, int64_t>{7, 13, 16}, {1, 1, 1}, {40, 192, 192}, {33, 5, 9}}) {
        Vec out = randn(rows * ld), bias = randn(cols);
        DVec want = to_double(out);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) want[r * ld + c] += bias[c];
        be.add_bias(out.data(), ld, bias.data(), rows, cols);
        harness::check_close("add_bias " + dims({rows, cols}) + " ld " + std::to_string(ld), out.data(), want.data(),
                             out.size(), kForwardTol);

        // L = sum R * (X + bias): dbias = sum_r R[r, :]
        const Vec R = randn(rows * ld), x0 = randn(rows * ld), prefill = randn(cols);
        Vec dbias = prefill;
        be.bias_backward(dbias.data(), R.data(), ld, rows, cols);
        DVec b = to_double(bias);
        const DVec Rd = to_double(R);
        auto loss = [&] {
            double s = 0.0;
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t c = 0; c < cols; ++c) s += Rd[r * ld + c] * (x0[r * ld + c] + b[c]);
            return s;
        };
        check_gradient("bias_backward " + dims({rows, cols}) + ": dbias", dbias, prefill, finite_difference(b, loss));
    }
}

TEST_CASE("residual_backward to bf16 = residual_backward's dy into zeros, rounded, bitwise; the same dgamma") {
    auto& be = backend();
    const int64_t B = 3, T = 5, C = 37, n = B * T * C;
    const Vec dout = randn(n), y = randn(n), gamma = randn(C), scale = randn(B);
    for (int variant = 0; variant < 4; ++variant) {
        const float* g = variant & 1 ? gamma.data() : nullptr;
        const float* sc = variant & 2 ? scale.data() : nullptr;
        Vec dy(static_cast<size_t>(n), 0.0f), dgamma(static_cast<size_t>(C), 0.5f), dgamma16 = dgamma;
        be.residual_backward(nullptr, dy.data(), g ? dgamma.data() : nullptr, dout.data(), y.data(), g, sc, B, T, C);
        std::vector<uint16_t> dy16(static_cast<size_t>(n), 0x1234);
        be.residual_backward(nullptr, Dest::rounded(dy16.data()), g ? dgamma16.data() : nullptr, dout.data(), y.data(), g, sc, B, T, C);
        bool same = true;
        for (int64_t i = 0; i < n; ++i) same = same && dy16[static_cast<size_t>(i)] == float_to_bf16(dy[static_cast<size_t>(i)]);
        const std::string name = std::string("residual_backward to bf16") + (g ? " gamma" : "") + (sc ? " scale" : "");
        harness::check(same, name + ": dy bitwise");
        harness::check(std::memcmp(dgamma.data(), dgamma16.data(), dgamma.size() * sizeof(float)) == 0, name + ": dgamma");
    }
}

TEST_CASE("gelu_backward to bf16 = gelu_backward into zeros, rounded to bf16, bitwise (overwriting)") {
    auto& be = backend();
    for (int64_t n : {int64_t{1}, int64_t{13}, int64_t{100003}}) {
        const Vec x = randn(n), dout = randn(n);
        Vec dx(static_cast<size_t>(n), 0.0f);
        be.gelu_backward(dx.data(), dout.data(), x.data(), n);
        std::vector<uint16_t> dx16(static_cast<size_t>(n), 0x1234);
        be.gelu_backward(Dest::rounded(dx16.data()), dout.data(), x.data(), n);
        bool same = true;
        for (int64_t i = 0; i < n; ++i) same = same && dx16[static_cast<size_t>(i)] == float_to_bf16(dx[static_cast<size_t>(i)]);
        harness::check(same, "gelu_backward to bf16 n " + std::to_string(n));
    }
}

TEST_CASE("gelu forward vs erf reference, backward vs finite differences") {
    auto& be = backend();
    for (int64_t n : {1, 7, 8, 13, 1000}) {
        Vec x = randn(n, 3.0f);
        const float specials[] = {-10.0f, -5.0f, -0.0f, 0.0f, 5.0f, 10.0f, -1.5f};
        if (n >= 7) std::copy(specials, specials + 7, x.begin());  // tails and signed zeros
        DVec want(n);
        for (int64_t i = 0; i < n; ++i) want[i] = ref_gelu(x[i]);
        Vec out(n);
        be.gelu_forward(out.data(), x.data(), n);
        harness::check_close("gelu_forward n=" + std::to_string(n), out.data(), want.data(), n, kForwardTol);
        Vec inplace = x;
        be.gelu_forward(inplace.data(), inplace.data(), n);
        harness::check_close("gelu_forward in place n=" + std::to_string(n), inplace.data(), out.data(), n, 0.0);

        const Vec R = randn(n), prefill = randn(n);
        Vec dx = prefill;
        be.gelu_backward(dx.data(), R.data(), x.data(), n);
        DVec xd = to_double(x);
        const DVec Rd = to_double(R);
        auto loss = [&] {
            double s = 0.0;
            for (int64_t i = 0; i < n; ++i) s += Rd[i] * ref_gelu(xd[i]);
            return s;
        };
        check_gradient("gelu_backward n=" + std::to_string(n) + ": dx", dx, prefill, finite_difference(xd, loss));
    }
}

TEST_CASE("residual (LayerScale, drop-path scale) forward and backward") {
    auto& be = backend();
    for (auto [B, T, C] : {std::tuple<int64_t, int64_t, int64_t>{2, 3, 5}, {3, 7, 13}, {1, 1, 1}, {2, 9, 40}}) {
        for (int variant = 0; variant < 4; ++variant) {
            const bool with_gamma = variant & 1, with_scale = variant & 2;
            const int64_t n = B * T * C;
            const Vec x = randn(n), y = randn(n), gamma = randn(C), scale = randn(B, 0.5f, 1.0f);
            const float* g = with_gamma ? gamma.data() : nullptr;
            const float* s = with_scale ? scale.data() : nullptr;
            const std::string name = "residual " + dims({B, T, C}) + (with_gamma ? " gamma" : "") +
                                     (with_scale ? " sample_scale" : "");
            DVec xd = to_double(x), yd = to_double(y), gd = to_double(gamma);
            auto ref = [&] {
                DVec out(n);
                for (int64_t b = 0; b < B; ++b)
                    for (int64_t t = 0; t < T; ++t)
                        for (int64_t c = 0; c < C; ++c) {
                            const int64_t i = (b * T + t) * C + c;
                            out[i] = xd[i] + (with_scale ? scale[b] : 1.0) * (with_gamma ? gd[c] : 1.0) * yd[i];
                        }
                return out;
            };
            Vec out(n);
            be.residual_forward(out.data(), x.data(), y.data(), g, s, B, T, C);
            harness::check_close(name + ": forward", out.data(), ref().data(), n, kForwardTol);
            Vec aliased = x;
            be.residual_forward(aliased.data(), aliased.data(), y.data(), g, s, B, T, C);
            harness::check_close(name + ": forward, out aliasing x", aliased.data(), out.data(), n, 0.0);

            const Vec R = randn(n), px = randn(n), py = randn(n), pg = randn(C);
            Vec dx = px, dy = py, dg = pg;
            be.residual_backward(dx.data(), dy.data(), with_gamma ? dg.data() : nullptr, R.data(), y.data(), g, s,
                                 B, T, C);
            const DVec Rd = to_double(R);
            auto loss = [&] { return weighted_sum(Rd, ref()); };
            check_gradient(name + ": dx", dx, px, finite_difference(xd, loss));
            check_gradient(name + ": dy", dy, py, finite_difference(yd, loss));
            if (with_gamma) check_gradient(name + ": dgamma", dg, pg, finite_difference(gd, loss));
        }
    }
}

// ---------------------------------------------------------------- layernorm

TEST_CASE("layernorm forward and backward (x, weight, bias)") {
    auto& be = backend();
    const double eps = 1e-5;
    for (auto [rows, C] : {std::pair<int64_t, int64_t>{7, 13}, {4, 8}, {3, 192}, {16, 37}}) {
        const int64_t n = rows * C;
        const Vec x = randn(n, 2.0f, 0.5f), w = randn(C, 0.5f, 1.0f), b = randn(C);
        Vec out(n), mean(rows), rstd(rows);
        be.layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), rows, C,
                             static_cast<float>(eps));
        DVec xd = to_double(x), wd = to_double(w), bd = to_double(b), rmean(rows), rrstd(rows);
        const DVec want = ref_layernorm(xd, wd, bd, rows, C, eps, &rmean, &rrstd);
        const std::string name = "layernorm " + dims({rows, C});
        harness::check_close(name + ": out", out.data(), want.data(), n, kForwardTol);
        harness::check_close(name + ": mean", mean.data(), rmean.data(), rows, kForwardTol);
        harness::check_close(name + ": rstd", rstd.data(), rrstd.data(), rows, kForwardTol);

        const Vec R = randn(n), px = randn(n), pw = randn(C), pb = randn(C);
        Vec dx = px, dw = pw, db = pb;
        be.layernorm_backward(dx.data(), dw.data(), db.data(), R.data(), x.data(), w.data(), mean.data(),
                              rstd.data(), rows, C);
        const DVec Rd = to_double(R);
        auto loss = [&] { return weighted_sum(Rd, ref_layernorm(xd, wd, bd, rows, C, eps)); };
        check_gradient(name + ": dx", dx, px, finite_difference(xd, loss));
        check_gradient(name + ": dweight", dw, pw, finite_difference(wd, loss));
        check_gradient(name + ": dbias", db, pb, finite_difference(bd, loss));

        // nullptr outputs are skipped and do not change the others.
        Vec dw_only = pw;
        be.layernorm_backward(nullptr, dw_only.data(), nullptr, R.data(), x.data(), w.data(), mean.data(),
                              rstd.data(), rows, C);
        harness::check_close(name + ": dweight alone (dx, dbias null)", dw_only.data(), dw.data(), C, 0.0);
    }
}

// ---------------------------------------------------------------- attention

TEST_CASE("attention forward (out, probs) and backward (q, k, v)") {
    const AttnCase cases[] = {
        {"self, fused qkv", 2, 3, 5, 5, 7, true, 0, 2},
        {"cross, Nq != Nk, padded q", 2, 3, 5, 9, 7, false, 4, 0},
        {"1 token, head_dim 1", 1, 1, 1, 1, 1, true, 0, 0},
        {"vector tails", 2, 2, 17, 33, 16, false, 1, 3},
    };
    auto& be = backend();
    for (const AttnCase& c : cases) {
        const int64_t D = c.heads * c.hd;
        AttentionShape s = attention_shape(c.batch, c.heads, c.nq, c.nk, c.hd);
        s.scale = 1.0f / std::sqrt(static_cast<float>(c.hd)) * 1.3f;
        s.ldo = D + c.o_pad;
        // q, k, v live in one buffer `qkv` at offsets qo, ko, vo (two regions when not fused).
        int64_t qo, ko, vo, size;
        if (c.fused_qkv) {
            s.ldq = s.ldk = s.ldv = 3 * D;
            qo = 0, ko = D, vo = 2 * D;
            size = c.batch * c.nq * 3 * D;
        } else {
            s.ldq = D + c.q_pad;
            s.ldk = s.ldv = 2 * D;
            qo = 0;
            ko = c.batch * c.nq * s.ldq;
            vo = ko + D;
            size = ko + c.batch * c.nk * 2 * D;
        }
        const Vec qkv = randn(size);
        // Which buffer elements are q, k, v (the rest is padding).
        auto is = [&](int64_t base, int64_t ld, int64_t rows) {
            return [=](size_t i) {
                const int64_t off = static_cast<int64_t>(i) - base;
                return off >= 0 && off / ld < rows && off % ld < D;
            };
        };
        const auto is_q = is(qo, s.ldq, c.batch * c.nq), is_k = is(ko, s.ldk, c.batch * c.nk),
                   is_v = is(vo, s.ldv, c.batch * c.nk);

        const int64_t out_size = c.batch * c.nq * s.ldo, probs_size = c.batch * c.heads * c.nq * c.nk;
        Vec out(out_size, 7.0f), probs(probs_size);
        be.attention_forward(out.data(), probs.data(), qkv.data() + qo, qkv.data() + ko, qkv.data() + vo, s);
        DVec qd = to_double(qkv), rout(out_size, 7.0), rprobs(probs_size);
        ref_attention(qd.data() + qo, qd.data() + ko, qd.data() + vo, s, rout, rprobs);
        const std::string name = std::string("attention ") + c.name + " " + dims({c.batch, c.heads, c.nq, c.nk, c.hd});
        harness::check_close(name + ": out", out.data(), rout.data(), out_size, kForwardTol);
        harness::check_close(name + ": probs", probs.data(), rprobs.data(), probs_size, kForwardTol);
        Vec out_no_probs(out_size, 7.0f);
        be.attention_forward(out_no_probs.data(), nullptr, qkv.data() + qo, qkv.data() + ko, qkv.data() + vo, s);
        harness::check_close(name + ": out without probs (null)", out_no_probs.data(), out.data(), out_size, 0.0);
        // The bf16-output form: the fp32 output rounded, bitwise, the padding columns untouched.
        std::vector<uint16_t> out16(static_cast<size_t>(out_size), 0xffff);
        be.attention_forward(Dest::rounded(out16.data()), nullptr, qkv.data() + qo, qkv.data() + ko, qkv.data() + vo, s);
        bool same16 = true;
        for (int64_t i = 0; i < out_size; ++i)
            same16 = same16 && out16[static_cast<size_t>(i)] ==
                                   (i % s.ldo < D ? float_to_bf16(out[static_cast<size_t>(i)]) : uint16_t{0xffff});
        harness::check(same16, name + ": attention_forward to bf16 = the output rounded to bf16, bitwise");

        // dout = R on the out region, 0 in its padding.
        Vec R = randn(out_size);
        for (int64_t i = 0; i < out_size; ++i)
            if (i % s.ldo >= D) R[i] = 0.0f;
        const Vec prefill = randn(size);
        Vec grad = prefill;
        be.attention_backward(grad.data() + qo, grad.data() + ko, grad.data() + vo, R.data(), probs.data(),
                              qkv.data() + qo, qkv.data() + ko, qkv.data() + vo, s);
        const DVec Rd = to_double(R);
        auto loss = [&] {
            DVec o(out_size, 0.0), p(probs_size);
            ref_attention(qd.data() + qo, qd.data() + ko, qd.data() + vo, s, o, p);
            return weighted_sum(Rd, o);
        };
        const DVec fd = finite_difference(qd, loss);
        check_gradient(name + ": dq", grad, prefill, fd, is_q);
        check_gradient(name + ": dk", grad, prefill, fd, is_k);
        check_gradient(name + ": dv", grad, prefill, fd, is_v);
        // Padding of the gradient buffer stays as it was.
        bool padding_kept = true;
        for (size_t i = 0; i < grad.size(); ++i)
            if (!is_q(i) && !is_k(i) && !is_v(i) && grad[i] != prefill[i]) padding_kept = false;
        harness::check(padding_kept, name + ": backward wrote outside q, k, v");

        // Only dv requested.
        Vec dv_only = prefill;
        be.attention_backward(nullptr, nullptr, dv_only.data() + vo, R.data(), probs.data(), qkv.data() + qo,
                              qkv.data() + ko, qkv.data() + vo, s);
        check_gradient(name + ": dv alone (dq, dk null)", dv_only, prefill, fd, is_v);

        // The bf16-output form: q, k, v's elements are the gradient into zeros, rounded (bitwise);
        // the rest of the buffer untouched.
        Vec zeros_grad(static_cast<size_t>(size), 0.0f);
        be.attention_backward(zeros_grad.data() + qo, zeros_grad.data() + ko, zeros_grad.data() + vo, R.data(),
                              probs.data(), qkv.data() + qo, qkv.data() + ko, qkv.data() + vo, s);
        std::vector<uint16_t> g16(static_cast<size_t>(size), 0xffff);
        be.attention_backward(Dest::rounded(g16.data() + qo), Dest::rounded(g16.data() + ko), Dest::rounded(g16.data() + vo), R.data(), probs.data(),
                                   qkv.data() + qo, qkv.data() + ko, qkv.data() + vo, s);
        bool same16b = true;
        for (size_t i = 0; i < g16.size(); ++i) {
            const bool grad_elem = is_q(i) || is_k(i) || is_v(i);
            same16b = same16b && g16[i] == (grad_elem ? float_to_bf16(zeros_grad[i]) : uint16_t{0xffff});
        }
        harness::check(same16b, name + ": attention_backward to bf16 = the gradients into zeros rounded, bitwise");
    }
}

// ---------------------------------------------------------------- tokens and patches

TEST_CASE("gather_tokens (strided, broadcast, accumulate) and scatter_add_tokens as its adjoint") {
    auto& be = backend();
    for (auto [B, N, n_sel, C] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{3, 7, 4, 5}, {2, 50, 25, 192}, {1, 1, 1, 1}}) {
        const auto idx = random_indices(B, N, n_sel);
        const std::string name = dims({B, N, n_sel, C});
        for (int mode = 0; mode < 2; ++mode) {
            const bool broadcast = mode == 1;  // one source shared by every b, accumulate
            const int64_t xb = broadcast ? 0 : N * C + 2, ob = n_sel * C + 3;
            const Vec x = randn(broadcast ? N * C : B * xb);
            const Vec prefill = randn(B * ob);
            Vec out = prefill;
            be.gather_tokens(out.data(), ob, x.data(), xb, idx.data(), B, n_sel, C, broadcast);
            DVec want = to_double(prefill);
            for (int64_t b = 0; b < B; ++b)
                for (int64_t j = 0; j < n_sel; ++j)
                    for (int64_t c = 0; c < C; ++c) {
                        const double v = x[b * xb + idx[b * n_sel + j] * C + c];
                        double& o = want[b * ob + j * C + c];
                        o = broadcast ? o + v : v;
                    }
            harness::check_close(std::string("gather_tokens ") + name + (broadcast ? " broadcast x, accumulate" : " strided"),
                                 out.data(), want.data(), out.size(), broadcast ? kForwardTol : 0.0);

            // <gather(x), y> == <x, scatter(y)>, with dx batch stride 0 in the broadcast case.
            const Vec y = randn(B * ob);
            Vec gx(B * ob, 0.0f), sy(x.size(), 0.0f);
            be.gather_tokens(gx.data(), ob, x.data(), xb, idx.data(), B, n_sel, C, false);
            be.scatter_add_tokens(sy.data(), xb, y.data(), ob, idx.data(), B, n_sel, C);
            double lhs = 0.0, rhs = 0.0;
            for (int64_t b = 0; b < B; ++b)
                for (int64_t i = 0; i < n_sel * C; ++i) lhs += static_cast<double>(gx[b * ob + i]) * y[b * ob + i];
            for (size_t i = 0; i < x.size(); ++i) rhs += static_cast<double>(x[i]) * sy[i];
            harness::check_error(std::string("scatter_add_tokens ") + name + (broadcast ? " dx_bstride 0" : " strided") +
                                     ": <gather x, y> vs <x, scatter y>",
                                 std::abs(lhs - rhs) / std::max(std::abs(lhs), 1e-30), kForwardTol);
        }
        // scatter accumulates onto what dx holds.
        const int64_t xb = N * C;
        const Vec dout = randn(B * n_sel * C), prefill = randn(B * xb);
        Vec dx = prefill;
        be.scatter_add_tokens(dx.data(), xb, dout.data(), n_sel * C, idx.data(), B, n_sel, C);
        DVec want = to_double(prefill);
        for (int64_t b = 0; b < B; ++b)
            for (int64_t j = 0; j < n_sel; ++j)
                for (int64_t c = 0; c < C; ++c) want[b * xb + idx[b * n_sel + j] * C + c] += dout[(b * n_sel + j) * C + c];
        harness::check_close("scatter_add_tokens " + name + ": += onto dx", dx.data(), want.data(), dx.size(), kForwardTol);
    }
}

TEST_CASE("patchify, both orders") {
    auto& be = backend();
    for (auto [B, C, H, W, p] : {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>{2, 3, 8, 12, 4}, {3, 1, 28, 28, 4}, {1, 2, 3, 3, 1}}) {
        const Vec img = randn(B * C * H * W);
        const int64_t gh = H / p, gw = W / p, P = C * p * p;
        for (PatchOrder order : {PatchOrder::ChannelsFirst, PatchOrder::PixelsFirst}) {
            Vec out(B * gh * gw * P, NAN);
            be.patchify(out.data(), img.data(), B, C, H, W, p, order);
            DVec want(out.size(), NAN);
            for (int64_t b = 0; b < B; ++b)
                for (int64_t gy = 0; gy < gh; ++gy)
                    for (int64_t gx = 0; gx < gw; ++gx)
                        for (int64_t c = 0; c < C; ++c)
                            for (int64_t py = 0; py < p; ++py)
                                for (int64_t px = 0; px < p; ++px) {
                                    const int64_t token = gy * gw + gx;
                                    const int64_t within = order == PatchOrder::ChannelsFirst ? (c * p + py) * p + px
                                                                                              : (py * p + px) * C + c;
                                    want[(b * gh * gw + token) * P + within] =
                                        img[((b * C + c) * H + gy * p + py) * W + gx * p + px];
                                }
            harness::check_close(std::string("patchify ") + dims({B, C, H, W}) + " p" + std::to_string(p) +
                                     (order == PatchOrder::ChannelsFirst ? " (c,py,px)" : " (py,px,c)"),
                                 out.data(), want.data(), out.size(), 0.0);
        }
    }
}

TEST_CASE("patchify_gather = patchify then gather_tokens, both orders, repeated and unordered indices") {
    auto& be = backend();
    std::mt19937_64 rng(11);
    for (auto [B, C, H, W, p, n_sel] : {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>{2, 3, 8, 12, 4, 5},
                                        {3, 1, 28, 28, 4, 49}, {1, 2, 3, 3, 1, 1}, {2, 3, 32, 32, 16, 3}}) {
        const Vec img = randn(B * C * H * W);
        const int64_t N = (H / p) * (W / p), P = C * p * p;
        std::vector<int32_t> idx(static_cast<size_t>(B * n_sel));
        for (int32_t& i : idx) i = static_cast<int32_t>(rng() % static_cast<uint64_t>(N));
        for (PatchOrder order : {PatchOrder::ChannelsFirst, PatchOrder::PixelsFirst}) {
            Vec all(B * N * P, NAN), want(B * n_sel * P, NAN), got(B * n_sel * P, NAN);
            be.patchify(all.data(), img.data(), B, C, H, W, p, order);
            be.gather_tokens(want.data(), n_sel * P, all.data(), N * P, idx.data(), B, n_sel, P, false);
            be.patchify_gather(got.data(), img.data(), idx.data(), B, n_sel, C, H, W, p, order);
            harness::check(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0,
                           std::string("patchify_gather ") + dims({B, C, H, W}) + " p" + std::to_string(p) + " n_sel " +
                               std::to_string(n_sel) + (order == PatchOrder::ChannelsFirst ? " (c,py,px)" : " (py,px,c)") +
                               ": bitwise equal");
        }
    }
}

TEST_CASE("normalize_rows (unbiased variance, eps inside the sqrt)") {
    auto& be = backend();
    for (auto [rows, P] : {std::pair<int64_t, int64_t>{7, 13}, {5, 48}, {3, 768}, {2, 2}}) {
        Vec x = randn(rows * P, 0.3f, 0.6f);
        for (int64_t c = 0; c < P; ++c) x[c] = 0.25f;  // a constant row: var 0
        const DVec want = ref_normalize_rows(x, rows, P, 1e-6);
        be.normalize_rows(x.data(), rows, P, 1e-6f);
        harness::check_close("normalize_rows " + dims({rows, P}), x.data(), want.data(), x.size(), kForwardTol);
    }
}

// ---------------------------------------------------------------- losses

TEST_CASE("mse forward and backward, l2_norm") {
    auto& be = backend();
    for (int64_t n : {1, 13, 1000, 100003}) {
        const Vec pred = randn(n), target = randn(n);
        float loss = 0.0f;
        be.mse_forward(&loss, pred.data(), target.data(), n);
        auto ref = [&](const DVec& p) {
            double s = 0.0;
            for (int64_t i = 0; i < n; ++i) s += (p[i] - target[i]) * (p[i] - target[i]);
            return s / n;
        };
        DVec pd = to_double(pred);
        const double want = ref(pd);
        harness::check_close("mse_forward n=" + std::to_string(n), &loss, &want, 1, kForwardTol);

        if (n <= 1000) {
            const float scale = 0.7f;
            const Vec prefill = randn(n, 1.0f / n);  // the size of the gradient
            Vec dpred = prefill;
            be.mse_backward(dpred.data(), pred.data(), target.data(), n, scale);
            check_gradient("mse_backward n=" + std::to_string(n) + " scale 0.7: dpred", dpred, prefill,
                           finite_difference(pd, [&] { return scale * ref(pd); }));
        }

        float norm = 0.0f;
        be.l2_norm(&norm, pred.data(), n);
        double sq = 0.0;
        for (float v : pred) sq += static_cast<double>(v) * v;
        const double want_norm = std::sqrt(sq);
        harness::check_close("l2_norm n=" + std::to_string(n), &norm, &want_norm, 1, kForwardTol);
    }
}

// ---------------------------------------------------------------- AdamW

TEST_CASE("adamw vs double reference of torch.optim.AdamW, segments with a gap, clipping") {
    auto& be = backend();
    const int64_t n = 1200;
    // [0, 300) wd 0.05, gap [300, 350), [350, 387) wd 0 (odd length), [387, 700) wd 0.1,
    // gap [700, 800), [800, 1200) wd 0.05.
    const AdamWSegment segs[] = {{0, 300, 0.05f}, {350, 37, 0.0f}, {387, 313, 0.1f}, {800, 400, 0.05f}};
    auto in_segment = [&](int64_t i) {
        for (const AdamWSegment& s : segs)
            if (i >= s.offset && i < s.offset + s.count) return &s;
        return static_cast<const AdamWSegment*>(nullptr);
    };
    for (int clip_mode = 0; clip_mode < 3; ++clip_mode) {
        const char* mode = clip_mode == 0 ? "no clipping" : clip_mode == 1 ? "clipping active" : "clip above the norm";
        Vec p = randn(n, 0.1f), m = randn(n, 0.01f), v = randn(n, 0.01f);
        for (float& x : v) x = x * x;
        const Vec p0 = p, m0 = m, v0 = v;
        DVec rp = to_double(p), rm = to_double(m), rv = to_double(v);
        AdamWParams hp;
        hp.lr = 1e-2f;
        double worst_p = 0, worst_m = 0, worst_v = 0;
        for (int64_t step = 1; step <= 5; ++step) {
            const Vec g = randn(n, 0.05f);
            double sq = 0.0;
            for (float x : g) sq += static_cast<double>(x) * x;
            const float norm = static_cast<float>(std::sqrt(sq));
            hp.step = step;
            hp.max_grad_norm = clip_mode == 0 ? 0.0f : clip_mode == 1 ? 0.5f * norm : 10.0f * norm;
            const Vec before = p;
            // With clipping active, the bf16 copy is written too: every updated parameter's
            // rounding, nothing outside the segments (poisoned with 0xffff).
            std::vector<uint16_t> p16(static_cast<size_t>(n), 0xffff);
            be.adamw(p.data(), g.data(), m.data(), v.data(), segs, 4, hp, &norm, clip_mode == 1 ? p16.data() : nullptr);
            if (clip_mode == 1) {
                bool copy_ok = true;
                for (int64_t i = 0; i < n; ++i) {
                    const uint16_t want = in_segment(i) ? float_to_bf16(p[i]) : uint16_t{0xffff};
                    copy_ok = copy_ok && p16[static_cast<size_t>(i)] == want;
                }
                harness::check(copy_ok, "adamw writes the bf16 copy of exactly the updated parameters");
            }

            // The reference, in double from the same float hyperparameters.
            const double lr = hp.lr, b1 = hp.beta1, b2 = hp.beta2, eps = hp.eps;
            const double clip = hp.max_grad_norm > 0 ? std::min(1.0, double(hp.max_grad_norm) / (double(norm) + 1e-6)) : 1.0;
            const DVec rp_before = rp;
            for (int64_t i = 0; i < n; ++i) {
                const AdamWSegment* s = in_segment(i);
                if (!s) continue;
                const double gi = g[i] * clip;
                rp[i] *= 1.0 - lr * s->weight_decay;
                rm[i] = rm[i] * b1 + (1.0 - b1) * gi;
                rv[i] = rv[i] * b2 + (1.0 - b2) * gi * gi;
                const double bc1 = 1.0 - std::pow(b1, double(step)), bc2 = 1.0 - std::pow(b2, double(step));
                rp[i] -= lr / bc1 * rm[i] / (std::sqrt(rv[i]) / std::sqrt(bc2) + eps);
            }
            // Compare the update of this step (p - p_before), which is small next to p.
            DVec got_delta(n), want_delta(n);
            for (int64_t i = 0; i < n; ++i) {
                got_delta[i] = static_cast<double>(p[i]) - before[i];
                want_delta[i] = rp[i] - rp_before[i];
            }
            worst_p = std::max(worst_p, harness::rel_error(got_delta.data(), want_delta.data(), n));
            worst_m = std::max(worst_m, harness::rel_error(m.data(), rm.data(), n));
            worst_v = std::max(worst_v, harness::rel_error(v.data(), rv.data(), n));
        }
        harness::check_error(std::string("adamw ") + mode + ": parameter updates (5 steps, worst)", worst_p, kForwardTol);
        harness::check_error(std::string("adamw ") + mode + ": m (worst)", worst_m, kForwardTol);
        harness::check_error(std::string("adamw ") + mode + ": v (worst)", worst_v, kForwardTol);
        bool gap_kept = true;
        for (int64_t i = 0; i < n; ++i)
            if (!in_segment(i) && (p[i] != p0[i] || m[i] != m0[i] || v[i] != v0[i])) gap_kept = false;
        harness::check(gap_kept, std::string("adamw ") + mode + ": parameters outside the segments changed");
    }
}

// ---------------------------------------------------------------- threads

TEST_CASE("every op: bitwise repeatable per thread count, equal across 1, 2, 3 threads") {
    // Sizes large enough that every op splits its work.
    const int64_t rows = 1000, C = 192, n = rows * C;
    const Vec x = randn(n), y = randn(n), R = randn(n), w = randn(C), b = randn(C);
    AttentionShape s = attention_shape(8, 4, 40, 33, 16);
    s.ldq = s.ldk = s.ldv = 3 * 64;
    const Vec qkv = randn(s.batch * 40 * 3 * 64), dout = randn(s.batch * 40 * 64);
    const auto idx = random_indices(40, 50, 25);
    const int64_t n_params = 300000;
    const Vec grads = randn(n_params, 1e-2f);

    const std::vector<std::pair<const char*, std::function<Vec(cpu::CpuBackend&)>>> ops = {
        {"layernorm_forward", [&](cpu::CpuBackend& be) {
             Vec out(n), mean(rows), rstd(rows);
             be.layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), rows, C, 1e-6f);
             out.insert(out.end(), rstd.begin(), rstd.end());
             return out;
         }},
        {"layernorm_backward", [&](cpu::CpuBackend& be) {
             Vec out(n), mean(rows), rstd(rows), d(n + 2 * C, 0.0f);
             be.layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), rows, C, 1e-6f);
             be.layernorm_backward(d.data(), d.data() + n, d.data() + n + C, R.data(), x.data(), w.data(), mean.data(),
                                   rstd.data(), rows, C);
             return d;
         }},
        {"gelu_forward+backward", [&](cpu::CpuBackend& be) {
             Vec out(2 * n, 0.0f);
             be.gelu_forward(out.data(), x.data(), n);
             be.gelu_backward(out.data() + n, R.data(), x.data(), n);
             return out;
         }},
        {"bias_backward", [&](cpu::CpuBackend& be) {
             Vec d(C, 0.0f);
             be.bias_backward(d.data(), R.data(), C, rows, C);
             return d;
         }},
        {"residual_backward", [&](cpu::CpuBackend& be) {
             Vec d(2 * n + C, 0.0f);
             be.residual_backward(d.data(), d.data() + n, d.data() + 2 * n, R.data(), y.data(), w.data(), nullptr, 10,
                                  100, C);
             return d;
         }},
        {"attention_forward+backward", [&](cpu::CpuBackend& be) {
             Vec out(s.batch * 40 * 64), probs(s.batch * 4 * 40 * 33), grad(qkv.size(), 0.0f);
             be.attention_forward(out.data(), probs.data(), qkv.data(), qkv.data() + 64, qkv.data() + 128, s);
             be.attention_backward(grad.data(), grad.data() + 64, grad.data() + 128, dout.data(), probs.data(),
                                   qkv.data(), qkv.data() + 64, qkv.data() + 128, s);
             out.insert(out.end(), grad.begin(), grad.end());
             return out;
         }},
        {"gather+scatter", [&](cpu::CpuBackend& be) {
             Vec g(40 * 25 * C), d(40 * 50 * C, 0.0f);
             be.gather_tokens(g.data(), 25 * C, x.data(), 0, idx.data(), 40, 25, C, false);
             be.scatter_add_tokens(d.data(), 0, g.data(), 25 * C, idx.data(), 40, 25, C);
             return d;
         }},
        {"normalize_rows", [&](cpu::CpuBackend& be) {
             Vec v = x;
             be.normalize_rows(v.data(), rows, C, 1e-6f);
             return v;
         }},
        {"mse+l2_norm", [&](cpu::CpuBackend& be) {
             Vec out(2 + n, 0.0f);
             be.mse_forward(out.data(), x.data(), y.data(), n);
             be.l2_norm(out.data() + 1, x.data(), n);
             be.mse_backward(out.data() + 2, x.data(), y.data(), n, 1.0f);
             return out;
         }},
        {"adamw", [&](cpu::CpuBackend& be) {
             Vec p(n_params, 0.5f), m(n_params, 0.0f), v(n_params, 0.0f);
             const AdamWSegment seg[2] = {{0, 200000, 0.05f}, {200001, 99999, 0.0f}};
             AdamWParams hp;
             hp.lr = 1e-3f;
             hp.max_grad_norm = 1.0f;
             const float norm = 3.0f;
             be.adamw(p.data(), grads.data(), m.data(), v.data(), seg, 2, hp, &norm, nullptr);
             p.insert(p.end(), v.begin(), v.end());
             return p;
         }},
        {"gemm (backend)", [&](cpu::CpuBackend& be) {
             GemmArgs g;
             g.trans_b = true;
             g.m = rows;
             g.n = 100;
             g.k = C;
             g.a = x.data();
             g.lda = C;
             g.b = y.data();
             g.ldb = C;
             Vec c(rows * 100);
             g.c = c.data();
             g.ldc = 100;
             be.gemm(g);
             return c;
         }},
    };
    for (const auto& [name, op] : ops) {
        const Vec one = op(backend(1));
        bool repeatable = true;
        for (int t : {1, 2, 3}) {
            const Vec a = op(backend(t)), b2 = op(backend(t));
            repeatable = repeatable && std::memcmp(a.data(), b2.data(), a.size() * sizeof(float)) == 0;
            if (t > 1) {
                const bool bitwise = std::memcmp(a.data(), one.data(), a.size() * sizeof(float)) == 0;
                harness::check_close(std::string(name) + ": " + std::to_string(t) + " vs 1 thread" +
                                         (bitwise ? " (bitwise equal)" : ""),
                                     a.data(), one.data(), a.size(), 1e-6);
            }
        }
        harness::check(repeatable, std::string(name) + ": two runs with the same thread count differ");
    }
}

HARNESS_MAIN
