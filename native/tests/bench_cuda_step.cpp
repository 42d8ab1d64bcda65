// Times cae_train_step through the C ABI and prints one JSON line (not a test: run by
// tests/gpu/run.sh next to the PyTorch reference). The images live in a device buffer, as the
// PyTorch side keeps its batch on the GPU; the mask is host memory (it is checked on the host).
// cae_train_step returns after the step's work has finished, so host timing is exact. With
// --peak N it also times an N^3 GEMM of the step's precision (cae_context_measure_gemm) and
// prints the model FLOP utilization: FLOPs counted from the model's shapes (as
// org.caejava.FlopCount) per second against that GEMM's rate.
//
//   bench_cuda_step [--config base|tiny|vitb-depth2] [--batch B] [--steps N] [--warmup W]
//                   [--masked M] [--backend cuda|cpu] [--no-drop-path] [--precision fp32|bf16]
//                   [--peak N]
// CAE_CUDA_GRAPHS=0 turns the recording of steps off (replayed_steps counts the replays).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cae/cae.h"

namespace {

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "bench_cuda_step: %s: %s\n", what, cae_last_error());
    std::printf("{\"impl\":\"cae-native\",\"error\":\"%s\"}\n", what);
    std::exit(1);
}

// FLOPs of one training step per image (a multiply-add is 2): the matrix and attention products
// of the forward of every trained part, twice that for the backward, the alignment pass (forward
// only) and the patch embedding (forward of every patch, weight gradient from the visible ones).
double step_flops_per_image(const cae_model_config& c, int64_t masked) {
    const double n = static_cast<double>((c.img_size / c.patch_size) * (c.img_size / c.patch_size));
    const double d = c.embed_dim, mlp = std::floor(d * c.mlp_ratio);
    const double k = static_cast<double>(c.patch_size) * c.patch_size * c.in_chans;
    const double m = static_cast<double>(masked), v = n - m;
    auto block = [&](double t) { return 2 * t * (3 * d * d + d * d + 2 * d * mlp) + 4 * t * t * d; };
    auto regressor = [&](double q, double keys) {
        return 2 * (q * d * d + 2 * keys * d * d + q * d * d + 2 * q * d * mlp) + 4 * q * keys * d;
    };
    const double encoder = c.depth * block(1 + v), alignment = c.depth * block(1 + m);
    const double reg = c.regressor_depth * regressor(m, v + m);
    const double decoder = c.decoder_depth * block(m) + 2 * m * d * k;
    return 2 * n * k * d + 2 * v * k * d + 3 * (encoder + reg + decoder) + alignment;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config = "base", backend = "cuda";
    int64_t batch = 64, steps = 20, warmup = 3, masked = -1;
    bool drop_path = true;
    std::string precision = "fp32";
    int peak_n = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "missing value after %s\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--config") config = next();
        else if (a == "--batch") batch = std::atoll(next());
        else if (a == "--steps") steps = std::atoll(next());
        else if (a == "--warmup") warmup = std::atoll(next());
        else if (a == "--masked") masked = std::atoll(next());
        else if (a == "--backend") backend = next();
        else if (a == "--no-drop-path") drop_path = false;
        else if (a == "--precision") precision = next();
        else if (a == "--peak") peak_n = std::atoi(next());
        else {
            std::fprintf(stderr, "unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    cae_model_config c;
    cae_model_config_init(&c);  // CAE-base: ViT-B/16 at 224, regressor 4, decoder 4
    if (config == "tiny") {
        c.img_size = 32;
        c.patch_size = 4;
        c.in_chans = 3;
        c.embed_dim = 64;
        c.depth = 2;
        c.num_heads = 4;
        c.regressor_depth = 1;
        c.decoder_depth = 1;
        c.decoder_num_heads = 4;
        c.decoder_embed_dim = 64;
    } else if (config == "vitb-depth2") {
        c.depth = 2;
        c.regressor_depth = 1;
        c.decoder_depth = 1;
    } else if (config != "base") {
        std::fprintf(stderr, "unknown config %s (base, tiny, vitb-depth2)\n", config.c_str());
        return 2;
    }
    const int64_t N = (c.img_size / c.patch_size) * (c.img_size / c.patch_size);
    if (masked < 0) masked = N / 2;
    if (precision != "fp32" && precision != "bf16") {
        std::fprintf(stderr, "unknown precision %s (fp32, bf16)\n", precision.c_str());
        return 2;
    }
    const cae_precision prec = precision == "bf16" ? CAE_PRECISION_BF16 : CAE_PRECISION_FP32;

    cae_context_options o;
    cae_context_options_init(&o);
    o.backend = backend == "cpu" ? CAE_BACKEND_CPU : CAE_BACKEND_CUDA;
    cae_context* ctx = nullptr;
    if (cae_context_create(&o, &ctx) != CAE_OK) die("cae_context_create");
    cae_context_info info;
    cae_context_query(ctx, &info);
    cae_model* model = nullptr;
    if (cae_model_create(ctx, &c, 0, &model) != CAE_OK) die("cae_model_create");

    std::mt19937_64 rng(1);
    std::normal_distribution<float> normal;
    std::vector<float> images(static_cast<size_t>(batch * c.in_chans * c.img_size * c.img_size));
    for (float& x : images) x = normal(rng);
    std::vector<uint8_t> mask(static_cast<size_t>(batch * N), 0);
    for (int64_t b = 0; b < batch; ++b) {
        std::vector<int> perm(static_cast<size_t>(N));
        for (int64_t n = 0; n < N; ++n) perm[static_cast<size_t>(n)] = static_cast<int>(n);
        std::shuffle(perm.begin(), perm.end(), rng);
        for (int64_t k = 0; k < masked; ++k) mask[static_cast<size_t>(b * N + perm[static_cast<size_t>(k)])] = 1;
    }
    cae_buffer* img_buf = nullptr;
    const int64_t img_bytes = static_cast<int64_t>(images.size() * sizeof(float));
    if (cae_buffer_create(ctx, CAE_MEMORY_DEVICE, img_bytes, &img_buf) != CAE_OK) die("cae_buffer_create");
    if (cae_buffer_write(img_buf, 0, images.data(), img_bytes) != CAE_OK) die("cae_buffer_write");
    cae_tensor img_t{}, mask_t{};
    img_t.dtype = CAE_DTYPE_F32;
    img_t.ndim = 4;
    img_t.shape[0] = batch;
    img_t.shape[1] = c.in_chans;
    img_t.shape[2] = img_t.shape[3] = c.img_size;
    img_t.buffer = img_buf;
    mask_t.dtype = CAE_DTYPE_U8;
    mask_t.ndim = 2;
    mask_t.shape[0] = batch;
    mask_t.shape[1] = N;
    mask_t.host_data = mask.data();

    cae_step_options so;
    cae_step_options_init(&so);
    so.lr = 1.5e-3f * static_cast<float>(batch) / 2048.0f;
    so.drop_path = drop_path ? 1 : 0;
    so.precision = prec;
    int replayed = 0;
    std::vector<double> times, fwd, bwd, opt;
    float first_loss = 0.0f, last_loss = 0.0f;
    for (int64_t i = 0; i < warmup + steps; ++i) {
        so.step = i + 1;
        cae_step_result r;
        const auto t0 = std::chrono::steady_clock::now();
        if (cae_train_step(model, &img_t, &mask_t, &so, &r) != CAE_OK) die("cae_train_step");
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (i == 0) first_loss = r.loss;
        last_loss = r.loss;
        if (i >= warmup) {
            times.push_back(ms);
            fwd.push_back(r.forward_ms);
            bwd.push_back(r.backward_ms);
            opt.push_back(r.optimizer_ms);
            replayed += r.replayed;
        }
    }
    auto median = [](std::vector<double> v) {
        if (v.empty()) return 0.0;
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
    };
    const double med = median(times);
    double peak_gflops = 0.0;
    if (peak_n > 0 && cae_context_measure_gemm(ctx, prec, peak_n, peak_n, peak_n, 10, &peak_gflops) != CAE_OK)
        die("cae_context_measure_gemm");
    const double gflop_per_image = step_flops_per_image(c, masked) / 1e9;
    const double achieved = med > 0 ? gflop_per_image * static_cast<double>(batch) / (med / 1e3) : 0.0;
    std::string desc = info.description;
    for (char& ch : desc)
        if (ch == '"' || ch == '\\') ch = '\'';
    std::printf("{\"impl\":\"cae-native\",\"backend\":\"%s\",\"config\":\"%s\",\"batch\":%lld,\"masked\":%lld,"
                "\"steps\":%lld,\"warmup\":%lld,\"drop_path\":%s,\"step_ms\":%.3f,\"img_per_s\":%.2f,"
                "\"forward_ms\":%.3f,\"backward_ms\":%.3f,\"optimizer_ms\":%.3f,\"first_loss\":%.6f,"
                "\"last_loss\":%.6f,\"precision\":\"%s\",\"replayed_steps\":%d,\"gflop_per_image\":%.3f,"
                "\"achieved_gflops\":%.1f,\"peak_gemm_gflops\":%.1f,\"peak_gemm_n\":%d,\"mfu\":%.4f,"
                "\"description\":\"%s\",\"step_ms_all\":[",
                backend.c_str(), config.c_str(), static_cast<long long>(batch), static_cast<long long>(masked),
                static_cast<long long>(steps), static_cast<long long>(warmup), drop_path ? "true" : "false", med,
                med > 0 ? 1000.0 * static_cast<double>(batch) / med : 0.0, median(fwd), median(bwd), median(opt),
                first_loss, last_loss, precision.c_str(), replayed, gflop_per_image, achieved, peak_gflops, peak_n,
                peak_gflops > 0 ? achieved / peak_gflops : 0.0, desc.c_str());
    for (size_t i = 0; i < times.size(); ++i) std::printf("%s%.3f", i ? "," : "", times[i]);
    std::printf("]}\n");
    cae_buffer_destroy(img_buf);
    cae_model_destroy(model);
    cae_context_destroy(ctx);
    return 0;
}
