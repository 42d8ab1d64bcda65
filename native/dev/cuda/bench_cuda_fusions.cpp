// Times each fused or bf16 path of the CUDA backend beside the sequence of ops it replaces, in
// one process, at CAE-B shapes (batch 128: 12672 encoder rows of width 768, MLP 3072, 12 heads
// of 64 over 99 tokens), and prints one JSON line per pair: the median milliseconds of both and
// the speed-up. Not a test (the tests check the values); run by tests/gpu/run.sh.
//
//   bench_cuda_fusions [--backend cuda|cpu] [--batch B]
// --backend cpu runs the same pairs on the CPU backend (a check of this program without a GPU;
// use a small --batch).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"

using namespace cae;

namespace {

// Median milliseconds per call of f: 3 warm-up calls, then rounds of `reps` calls each ended by
// a synchronization, until 11 rounds or 2 s.
double median_ms(Backend& be, const std::function<void()>& f) {
    for (int i = 0; i < 3; ++i) f();
    be.synchronize();
    const int reps = 10;
    std::vector<double> t;
    double total = 0;
    while (t.size() < 11 && (total < 2000.0 || t.size() < 3)) {
        const auto a = std::chrono::steady_clock::now();
        for (int i = 0; i < reps; ++i) f();
        be.synchronize();
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
        t.push_back(ms / reps);
        total += ms;
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

void report(const char* name, const char* replaces, double fused, double separate, const std::string& shape) {
    std::printf("{\"bench\":\"cuda-fusions\",\"name\":\"%s\",\"replaces\":\"%s\",\"shape\":\"%s\",\"ms\":%.4f,"
                "\"ms_replaced\":%.4f,\"speedup\":%.3f}\n",
                name, replaces, shape.c_str(), fused, separate, separate / fused);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    std::string backend = "cuda";
    int64_t batch = 128;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--backend" && i + 1 < argc) backend = argv[++i];
        else if (a == "--batch" && i + 1 < argc) batch = std::atoll(argv[++i]);
        else {
            std::fprintf(stderr, "usage: bench_cuda_fusions [--backend cuda|cpu] [--batch B]\n");
            return 2;
        }
    }
    std::unique_ptr<Backend> bep;
    try {
        bep = backend == "cpu" ? make_cpu_backend(0) : make_cuda_backend(0);
    } catch (const std::exception& e) {
        std::printf("{\"bench\":\"cuda-fusions\",\"error\":\"%s\"}\n", e.what());
        return 1;
    }
    Backend& be = *bep;
    const int64_t T = 99, D = 768, M = 3072, H = 12, hd = 64, rows = batch * T;
    std::mt19937_64 rng(3);
    std::normal_distribution<float> normal;
    std::vector<void*> blocks;
    auto floats = [&](int64_t n, float scale) {
        std::vector<float> h(static_cast<size_t>(n));
        for (float& x : h) x = scale * normal(rng);
        float* p = static_cast<float*>(be.alloc(static_cast<size_t>(n) * sizeof(float)));
        be.copy_to_device(p, h.data(), h.size() * sizeof(float));
        blocks.push_back(p);
        return p;
    };
    auto halfs = [&](int64_t n) {
        auto* p = static_cast<uint16_t*>(be.alloc(static_cast<size_t>(n) * sizeof(uint16_t)));
        blocks.push_back(p);
        return p;
    };
    const std::string rd = std::to_string(rows) + "x" + std::to_string(D);
    float *x = floats(rows * D, 1.0f), *y = floats(rows * D, 1.0f), *mid = floats(rows * D, 0.0f);
    float *out = floats(rows * D, 0.0f), *mean = floats(rows, 0.0f), *rstd = floats(rows, 0.0f);
    float *gamma = floats(D, 0.1f), *w = floats(D, 1.0f), *b = floats(D, 0.1f), *scale = floats(batch, 1.0f);
    uint16_t* out16 = halfs(rows * D);

    // 1. residual + LayerNorm
    const double sep = median_ms(be, [&] {
        be.residual_forward(mid, x, y, gamma, scale, batch, T, D);
        be.layernorm_forward(out, mean, rstd, mid, w, b, rows, D, 1e-6f);
    });
    report("residual_layernorm_forward", "residual_forward + layernorm_forward", median_ms(be, [&] {
               be.residual_layernorm_forward(mid, out, mean, rstd, x, y, gamma, scale, w, b, batch, T, D,
                                             1e-6f);
           }), sep, rd);
    const double sep16 = median_ms(be, [&] {
        be.residual_forward(mid, x, y, gamma, scale, batch, T, D);
        be.layernorm_forward(out, mean, rstd, mid, w, b, rows, D, 1e-6f);
        be.round_to_bf16(out16, out, rows * D);
    });
    report("residual_layernorm_forward bf16 out", "residual_forward + layernorm_forward + round_to_bf16",
           median_ms(be, [&] {
               be.residual_layernorm_forward(mid, Dest::rounded(out16), mean, rstd, x, y, gamma, scale, w, b, batch, T, D,
                                             1e-6f);
           }), sep16, rd);

    // 1b. a LayerScale branch's output gradient written as the bf16 operand of its GEMMs
    {
        float *dy = floats(rows * D, 0.0f), *dgamma = floats(D, 0.0f);
        report("residual_backward to bf16", "fill + residual_backward + round_to_bf16", median_ms(be, [&] {
                   be.residual_backward(nullptr, Dest::rounded(out16), dgamma, x, y, gamma, scale, batch, T, D);
               }), median_ms(be, [&] {
                   be.fill(dy, 0.0f, rows * D);
                   be.residual_backward(nullptr, dy, dgamma, x, y, gamma, scale, batch, T, D);
                   be.round_to_bf16(out16, dy, rows * D);
               }), rd);
    }

    // 2. LayerNorm writing bf16
    report("layernorm_forward to bf16", "layernorm_forward + round_to_bf16", median_ms(be, [&] {
               be.layernorm_forward(Dest::rounded(out16), mean, rstd, x, w, b, rows, D, 1e-6f);
           }), median_ms(be, [&] {
               be.layernorm_forward(out, mean, rstd, x, w, b, rows, D, 1e-6f);
               be.round_to_bf16(out16, out, rows * D);
           }), rd);

    // 3. GELU writing bf16
    float *f1 = floats(rows * M, 1.0f), *g1 = floats(rows * M, 0.0f);
    uint16_t* g16 = halfs(rows * M);
    const std::string rm = std::to_string(rows) + "x" + std::to_string(M);
    report("gelu_forward to bf16", "gelu_forward + round_to_bf16",
           median_ms(be, [&] { be.gelu_forward(Dest::rounded(g16), f1, rows * M); }), median_ms(be, [&] {
               be.gelu_forward(g1, f1, rows * M);
               be.round_to_bf16(g16, g1, rows * M);
           }), rm);

    // 3b. the GELU backward writing the bf16 output gradient of fc1 that its GEMMs read
    {
        float *dmlp = floats(rows * M, 1.0f), *dfc1 = floats(rows * M, 0.0f);
        uint16_t* dfc1_16 = halfs(rows * M);
        report("gelu_backward to bf16", "fill + gelu_backward + round_to_bf16",
               median_ms(be, [&] { be.gelu_backward(Dest::rounded(dfc1_16), dmlp, f1, rows * M); }), median_ms(be, [&] {
                   be.fill(dfc1, 0.0f, rows * M);
                   be.gelu_backward(dfc1, dmlp, f1, rows * M);
                   be.round_to_bf16(dfc1_16, dfc1, rows * M);
               }), rm);
    }

    // 4. the fc1 GEMM: bias in the epilogue; bf16 against fp32; a pre-rounded operand
    float *W = floats(M * D, 0.02f), *bias = floats(M, 0.1f);
    uint16_t *W16 = halfs(M * D), *x16 = halfs(rows * D);
    be.round_to_bf16(W16, W, M * D);
    be.round_to_bf16(x16, x, rows * D);
    auto fc1 = [&](GemmPrecision p, const float* bias_ptr, bool pre_rounded) {
        const bool b16 = p == GemmPrecision::BF16;
        GemmArgs g = gemm_product(false, true, rows, M, D, 1.0f, Operand(x, b16 && pre_rounded ? x16 : nullptr), D,
                                  Operand(W, b16 ? W16 : nullptr), D, 0.0f, f1, M, p);
        g.bias = bias_ptr;
        return g;
    };
    const std::string gs = std::to_string(rows) + "x" + std::to_string(M) + "x" + std::to_string(D);
    for (GemmPrecision p : {GemmPrecision::FP32, GemmPrecision::BF16}) {
        const bool b16 = p == GemmPrecision::BF16;
        report(b16 ? "gemm bf16 + bias epilogue" : "gemm fp32 + bias epilogue",
               b16 ? "gemm bf16 + add_bias" : "gemm fp32 + add_bias",
               median_ms(be, [&] { be.gemm(fc1(p, bias, b16)); }), median_ms(be, [&] {
                   be.gemm(fc1(p, nullptr, b16));
                   be.add_bias(f1, M, bias, rows, M);
               }), gs);
    }
    report("gemm bf16, A already bf16", "gemm fp32", median_ms(be, [&] { be.gemm(fc1(GemmPrecision::BF16, bias, true)); }),
           median_ms(be, [&] { be.gemm(fc1(GemmPrecision::FP32, bias, false)); }), gs);
    report("gemm bf16, A already bf16", "gemm bf16, A rounded in the GEMM",
           median_ms(be, [&] { be.gemm(fc1(GemmPrecision::BF16, bias, true)); }),
           median_ms(be, [&] { be.gemm(fc1(GemmPrecision::BF16, bias, false)); }), gs);

    // 4b. the fc1 weight gradient: dW += dy^T x with the bias gradient in the same GEMM (BGRADB
    // epilogue) against the GEMM then bias_backward
    float *dW = floats(M * D, 0.0f), *db = floats(M, 0.0f);
    uint16_t* dy16 = halfs(rows * M);
    be.round_to_bf16(dy16, g1, rows * M);
    auto fc1_wgrad = [&](GemmPrecision p, float* bias_grad) {
        const bool b16 = p == GemmPrecision::BF16;
        GemmArgs g = gemm_product(true, false, M, D, rows, 1.0f, Operand(g1, b16 ? dy16 : nullptr), M,
                                  Operand(x, b16 ? x16 : nullptr), D, 1.0f, dW, D, p);
        g.bias_grad = bias_grad;
        return g;
    };
    const std::string ws = std::to_string(M) + "x" + std::to_string(D) + "x" + std::to_string(rows);
    for (GemmPrecision p : {GemmPrecision::FP32, GemmPrecision::BF16}) {
        const bool b16 = p == GemmPrecision::BF16;
        report(b16 ? "weight gemm bf16 + bias-gradient epilogue" : "weight gemm fp32 + bias-gradient epilogue",
               b16 ? "weight gemm bf16 + bias_backward" : "weight gemm fp32 + bias_backward",
               median_ms(be, [&] { be.gemm(fc1_wgrad(p, db)); }), median_ms(be, [&] {
                   be.gemm(fc1_wgrad(p, nullptr));
                   be.fill(db, 0.0f, M);
                   be.bias_backward(db, g1, M, rows, M);
               }), ws);
    }

    // 4c. the patch embedding of a step (224x224 images, 16x16 patches, 98 of 196 masked): the
    // visible and masked patches extracted in token order, each embedded by its own GEMM, and the
    // pixel targets extracted masked-only, against extracting every patch, one GEMM over all of
    // them, then gathering the embeddings and the targets (fp32 GEMMs).
    {
        const int64_t N = 196, Nv = 98, Nm = 98, K = 768, C = 3, img_side = 224, p = 16;
        float* images = floats(batch * C * img_side * img_side, 1.0f);
        float *pw = floats(D * K, 0.02f), *pb = floats(D, 0.1f);
        float *all_patches = floats(batch * N * K, 0.0f), *all_emb = floats(batch * N * D, 0.0f);
        float *pv = floats(batch * Nv * K, 0.0f), *pm = floats(batch * Nm * K, 0.0f), *target = floats(batch * Nm * K, 0.0f);
        float *ev = floats(batch * Nv * D, 0.0f), *em = floats(batch * Nm * D, 0.0f);
        std::vector<int32_t> vis(static_cast<size_t>(batch * Nv)), msk(static_cast<size_t>(batch * Nm));
        for (int64_t bi = 0; bi < batch; ++bi) {
            std::vector<int32_t> order(static_cast<size_t>(N));
            for (int64_t t = 0; t < N; ++t) order[static_cast<size_t>(t)] = static_cast<int32_t>(t);
            std::shuffle(order.begin(), order.end(), rng);
            std::sort(order.begin(), order.begin() + Nv);
            std::sort(order.begin() + Nv, order.end());
            std::copy(order.begin(), order.begin() + Nv, vis.begin() + bi * Nv);
            std::copy(order.begin() + Nv, order.end(), msk.begin() + bi * Nm);
        }
        auto ints = [&](const std::vector<int32_t>& h) {
            auto* d = static_cast<int32_t*>(be.alloc(h.size() * sizeof(int32_t)));
            be.copy_to_device(d, h.data(), h.size() * sizeof(int32_t));
            blocks.push_back(d);
            return d;
        };
        const int32_t *idx_vis = ints(vis), *idx_msk = ints(msk);
        auto embed = [&](float* y, const float* patches, int64_t n) {
            GemmArgs g = gemm_product(false, true, n, D, K, 1.0f, patches, K, pw, K, 0.0f, y, D);
            g.bias = pb;
            be.gemm(g);
        };
        const double fused = median_ms(be, [&] {
            be.patchify_gather(pv, images, idx_vis, batch, Nv, C, img_side, img_side, p, PatchOrder::ChannelsFirst);
            embed(ev, pv, batch * Nv);
            be.patchify_gather(pm, images, idx_msk, batch, Nm, C, img_side, img_side, p, PatchOrder::ChannelsFirst);
            embed(em, pm, batch * Nm);
            be.patchify_gather(target, images, idx_msk, batch, Nm, C, img_side, img_side, p, PatchOrder::PixelsFirst);
        });
        const double separate = median_ms(be, [&] {
            be.patchify(all_patches, images, batch, C, img_side, img_side, p, PatchOrder::ChannelsFirst);
            embed(all_emb, all_patches, batch * N);
            be.gather_tokens(ev, Nv * D, all_emb, N * D, idx_vis, batch, Nv, D, false);
            be.gather_tokens(em, Nm * D, all_emb, N * D, idx_msk, batch, Nm, D, false);
            be.gather_tokens(pv, Nv * K, all_patches, N * K, idx_vis, batch, Nv, K, false);  // the weight gradient's input
            be.patchify(all_patches, images, batch, C, img_side, img_side, p, PatchOrder::PixelsFirst);
            be.gather_tokens(target, Nm * K, all_patches, N * K, idx_msk, batch, Nm, K, false);
        });
        report("patchify_gather (visible, masked, target) + 2 embedding gemms",
               "patchify x2 + embedding gemm over all patches + 4 gathers", fused, separate,
               std::to_string(batch) + "x3x224x224 p16");
    }

    // 5. attention, forward and backward, bf16 products against fp32
    float *qkv = floats(rows * 3 * D, 1.0f), *att = floats(rows * D, 0.0f);
    float *probs = floats(batch * H * T * T, 0.0f), *dqkv = floats(rows * 3 * D, 0.0f), *datt = floats(rows * D, 1.0f);
    AttentionShape s = attention_shape(batch, H, T, T, hd);
    s.ldq = s.ldk = s.ldv = 3 * D;
    auto attention = [&](GemmPrecision p) {
        s.precision = p;
        be.attention_forward(att, probs, qkv, qkv + D, qkv + 2 * D, s);
        be.attention_backward(dqkv, dqkv + D, dqkv + 2 * D, datt, probs, qkv, qkv + D, qkv + 2 * D, s);
    };
    report("attention fwd+bwd bf16", "attention fwd+bwd fp32", median_ms(be, [&] { attention(GemmPrecision::BF16); }),
           median_ms(be, [&] { attention(GemmPrecision::FP32); }),
           std::to_string(batch) + "x" + std::to_string(H) + "x" + std::to_string(T) + "x" + std::to_string(hd));

    for (void* p : blocks) be.release(p);
    return 0;
}
