// Times the CPU ops at CAE-tiny shapes on 28x28 images (batch 64, 50 tokens or 25 visible,
// dim 192, MLP 768, 12 or 3 heads) with 1 and 2 threads, and prints the median per call.
// Usage: bench_ops [filter [threads_a threads_b]]: the rows whose name contains the filter
// ("" for all), timed with threads_a and threads_b threads (default 1 and 2).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "cpu/cpu_backend.h"

using namespace cae;

namespace {

struct Buffer {
    std::vector<float> v;
    explicit Buffer(int64_t n, float scale = 1.0f, uint64_t seed = 1) : v(static_cast<size_t>(n)) {
        std::mt19937_64 rng(seed);
        std::normal_distribution<float> dist(0.0f, scale);
        for (float& x : v) x = dist(rng);
    }
    float* p() { return v.data(); }
};

// Median and minimum milliseconds of f over repetitions filling about 0.3 s (at least 5). On a
// shared machine the minimum is the better estimate of the uncontended time.
struct Timing {
    double median, min;
};

Timing time_ms(const std::function<void()>& f) {
    f();  // warm-up: page faults, scratch buffers, thread pool
    std::vector<double> t;
    double total = 0;
    while (t.size() < 5 || (total < 300.0 && t.size() < 200)) {
        const auto a = std::chrono::steady_clock::now();
        f();
        const auto b = std::chrono::steady_clock::now();
        t.push_back(std::chrono::duration<double, std::milli>(b - a).count());
        total += t.back();
    }
    std::sort(t.begin(), t.end());
    return {t[t.size() / 2], t[0]};
}

struct Row {
    std::string name;
    double flops;  // per call, 0 when not meaningful
    std::function<void(cpu::CpuBackend&)> run;
};

GemmArgs gemm_args(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
                   float* c, float beta = 0.0f) {
    return gemm_product(ta, tb, m, n, k, 1.0f, a, ta ? m : k, b, tb ? k : n, beta, c, n);
}

}  // namespace

int main(int argc, char** argv) {
    const std::string filter = argc > 1 ? argv[1] : "";
    const int64_t B = 64, N = 50, Nv = 25, D = 192, F = 768;
    const int64_t T = B * N;

    Buffer x(T * F), y(T * F), z(T * F), w(T * F, 0.05f), qkv(T * 3 * D);
    Buffer out(T * D), probs(B * 12 * N * N), dqkv(T * 3 * D), mean(T), rstd(T), gamma(F), dgamma(F);
    Buffer img(B * 28 * 28), patches(B * 49 * 16);
    const int64_t n_params = 5'500'000;
    Buffer params(n_params, 0.02f), grads(n_params, 1e-3f, 7), m1(n_params, 0.0f), m2(n_params, 0.0f);
    std::vector<int32_t> idx(B * Nv);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < Nv; ++j) idx[b * Nv + j] = static_cast<int32_t>((j * 2 + b) % N);

    std::vector<Row> rows;
    auto add_gemm = [&](const std::string& name, bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
        const double flops = 2.0 * m * n * k;
        rows.push_back({"gemm " + name, flops, [=, &x, &w, &y](cpu::CpuBackend& be) {
                            be.gemm(gemm_args(ta, tb, m, n, k, x.p(), w.p(), y.p()));
                        }});
        rows.push_back({"gemm_builtin " + name, flops, [=, &x, &w, &y](cpu::CpuBackend& be) {
                            cpu::gemm_builtin(gemm_args(ta, tb, m, n, k, x.p(), w.p(), y.p()), be.num_threads());
                        }});
        if (cpu::have_blas())
            rows.push_back({"gemm_blas " + name, flops, [=, &x, &w, &y](cpu::CpuBackend& be) {
                                cpu::gemm_blas(gemm_args(ta, tb, m, n, k, x.p(), w.p(), y.p()), be.num_threads());
                            }});
    };
    add_gemm("qkv   3200x576x192 (x W^T)", false, true, T, 3 * D, D);
    add_gemm("fc1   3200x768x192 (x W^T)", false, true, T, F, D);
    add_gemm("fc2   3200x192x768 (x W^T)", false, true, T, D, F);
    add_gemm("dx    3200x192x768 (dy W)", false, false, T, D, F);
    add_gemm("dW    768x192x3200 (dy^T x)", true, false, F, D, T);
    add_gemm("enc   1600x576x192 (visible)", false, true, B * Nv, 3 * D, D);

    for (int64_t heads : {12, 3}) {
        for (int64_t n : {N, Nv}) {
            AttentionShape s = attention_shape(B, heads, n, n, D / heads);
            s.ldq = s.ldk = s.ldv = 3 * D;
            const double flops = 4.0 * B * heads * n * n * s.head_dim;
            const std::string shape = "B64 H" + std::to_string(heads) + " N" + std::to_string(n) +
                                      " hd" + std::to_string(s.head_dim);
            rows.push_back({"attention_forward  " + shape, flops, [=, &qkv, &out, &probs](cpu::CpuBackend& be) {
                                be.attention_forward(out.p(), probs.p(), qkv.p(), qkv.p() + D, qkv.p() + 2 * D, s);
                            }});
            rows.push_back({"attention_backward " + shape, 2 * flops, [=, &qkv, &out, &probs, &dqkv](cpu::CpuBackend& be) {
                                be.attention_backward(dqkv.p(), dqkv.p() + D, dqkv.p() + 2 * D, out.p(), probs.p(),
                                                      qkv.p(), qkv.p() + D, qkv.p() + 2 * D, s);
                            }});
        }
    }
    rows.push_back({"layernorm_forward  3200x192", 0, [&](cpu::CpuBackend& be) {
                        be.layernorm_forward(y.p(), mean.p(), rstd.p(), x.p(), gamma.p(), w.p(), T, D, 1e-6f);
                    }});
    rows.push_back({"layernorm_backward 3200x192", 0, [&](cpu::CpuBackend& be) {
                        be.layernorm_backward(z.p(), dgamma.p(), dgamma.p() + D, y.p(), x.p(), gamma.p(), mean.p(),
                                              rstd.p(), T, D);
                    }});
    rows.push_back({"gelu_forward       3200x768", 0, [&](cpu::CpuBackend& be) { be.gelu_forward(y.p(), x.p(), T * F); }});
    rows.push_back({"gelu_backward      3200x768", 0, [&](cpu::CpuBackend& be) {
                        be.gelu_backward(z.p(), y.p(), x.p(), T * F);
                    }});
    rows.push_back({"add_bias           3200x768", 0, [&](cpu::CpuBackend& be) { be.add_bias(y.p(), F, w.p(), T, F); }});
    rows.push_back({"bias_backward      3200x768", 0, [&](cpu::CpuBackend& be) {
                        be.bias_backward(dgamma.p(), y.p(), F, T, F);
                    }});
    rows.push_back({"residual_forward   3200x192", 0, [&](cpu::CpuBackend& be) {
                        be.residual_forward(z.p(), x.p(), y.p(), gamma.p(), nullptr, B, N, D);
                    }});
    rows.push_back({"residual_backward  3200x192", 0, [&](cpu::CpuBackend& be) {
                        be.residual_backward(z.p(), w.p(), dgamma.p(), y.p(), x.p(), gamma.p(), nullptr, B, N, D);
                    }});
    rows.push_back({"gather_tokens      64x25 of 50, C192", 0, [&](cpu::CpuBackend& be) {
                        be.gather_tokens(y.p(), Nv * D, x.p(), N * D, idx.data(), B, Nv, D, false);
                    }});
    rows.push_back({"scatter_add_tokens 64x25 of 50, C192", 0, [&](cpu::CpuBackend& be) {
                        be.scatter_add_tokens(y.p(), N * D, x.p(), Nv * D, idx.data(), B, Nv, D);
                    }});
    rows.push_back({"patchify           64x1x28x28 p4", 0, [&](cpu::CpuBackend& be) {
                        be.patchify(patches.p(), img.p(), B, 1, 28, 28, 4, PatchOrder::PixelsFirst);
                    }});
    rows.push_back({"normalize_rows     1600x16", 0, [&](cpu::CpuBackend& be) {
                        std::copy(x.v.begin(), x.v.begin() + B * Nv * 16, y.v.begin());
                        be.normalize_rows(y.p(), B * Nv, 16, 1e-6f);
                    }});
    rows.push_back({"mse_forward+backward 1600x16", 0, [&](cpu::CpuBackend& be) {
                        be.mse_forward(out.p(), x.p(), y.p(), B * Nv * 16);
                        be.mse_backward(z.p(), x.p(), y.p(), B * Nv * 16, 1.0f);
                    }});
    rows.push_back({"l2_norm            5.5M", 0, [&](cpu::CpuBackend& be) { be.l2_norm(out.p(), grads.p(), n_params); }});
    rows.push_back({"adamw              5.5M, clipped", 0, [&](cpu::CpuBackend& be) {
                        AdamWSegment seg[2] = {{0, n_params / 2, 0.05f}, {n_params / 2, n_params - n_params / 2, 0.0f}};
                        AdamWParams p;
                        p.lr = 1e-4f;
                        p.max_grad_norm = 3.0f;
                        const float norm = 5.0f;
                        be.adamw(params.p(), grads.p(), m1.p(), m2.p(), seg, 2, p, &norm, nullptr);
                    }});

    const int ta = argc > 3 ? std::atoi(argv[2]) : 1, tb = argc > 3 ? std::atoi(argv[3]) : 2;
    cpu::CpuBackend one(ta), two(tb);
    std::printf("%s | %s\n", one.description().c_str(), two.description().c_str());
    std::printf("milliseconds per call, median (min); GFLOP/s from the median\n");
    std::printf("%-46s %9d thread(s) %9d thread(s) %7s %8s\n", "op (shape)", ta, tb, "ratio", "GFLOP/s");
    for (const Row& r : rows) {
        if (!filter.empty() && r.name.find(filter) == std::string::npos) continue;
        const Timing t1 = time_ms([&] { r.run(one); });
        const Timing t2 = time_ms([&] { r.run(two); });
        std::printf("%-46s %8.3f (%7.3f) %8.3f (%7.3f) %7.2f", r.name.c_str(), t1.median, t1.min, t2.median,
                    t2.min, t1.median / t2.median);
        if (r.flops > 0) std::printf(" %5.1f/%5.1f", r.flops / t1.median * 1e-6, r.flops / t2.median * 1e-6);
        std::printf("\n");
        std::fflush(stdout);
    }
    return 0;
}
