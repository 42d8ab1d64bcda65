// The CAE model through the C ABI on the CPU backend: whole-model gradients against central
// finite differences along random directions, determinism, training progress, encode and
// predict shapes, stochastic depth, and the checks on bad batches.
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cae/cae.h"
#include "harness.h"
#include "model_batch.h"

namespace {

using Batch = ModelBatch;

Batch make_batch(const cae_model_config& c, int64_t B, int64_t masked, uint64_t seed) {
    return make_model_batch(c, B, masked, seed);
}

// All trainable parameters as (index, numel).
std::vector<std::pair<int32_t, int64_t>> trainable(cae_model* m) {
    int32_t n = 0;
    cae_model_param_count(m, &n);
    std::vector<std::pair<int32_t, int64_t>> out;
    for (int32_t i = 0; i < n; ++i) {
        cae_param_info info;
        cae_model_param_info(m, i, &info);
        if (info.trainable) out.push_back({i, info.numel});
    }
    return out;
}

float loss_of(cae_model* m, Batch& b) {
    cae_step_result r;
    cae_status s = cae_compute_gradients(m, &b.img_t, &b.mask_t, nullptr, &r);
    if (s != CAE_OK) harness::fail(std::string("compute_gradients: ") + cae_last_error());
    return r.loss;
}

TEST_CASE("parameter table: official names, shapes and flags") {
    cae_model_config c = tiny_config();
    Fixture f(c);
    int32_t n = 0;
    cae_model_param_count(f.model, &n);
    int32_t idx = -1;
    harness::check(cae_model_param_find(f.model, "encoder.blocks.1.attn.qkv.weight", &idx) == CAE_OK, "find qkv");
    cae_param_info info;
    cae_model_param_info(f.model, idx, &info);
    harness::check(info.ndim == 2 && info.shape[0] == 48 && info.shape[1] == 16 && info.decayed == 1,
                   "qkv [3D, D], decayed");
    cae_model_param_find(f.model, "encoder.pos_embed", &idx);
    cae_model_param_info(f.model, idx, &info);
    harness::check(info.trainable == 0 && info.shape[1] == 17, "pos_embed [1, 1+N, D] frozen");
    cae_model_param_find(f.model, "mask_token", &idx);
    cae_model_param_info(f.model, idx, &info);
    harness::check(info.trainable == 1 && info.decayed == 1, "mask_token decayed");
    cae_model_param_find(f.model, "decoder.head.weight", &idx);
    cae_model_param_info(f.model, idx, &info);
    harness::check(info.shape[0] == 18 && info.shape[1] == 16, "pixel head [p*p*C, D]");
    cae_model_param_find(f.model, "regresser.regressor_blocks.0.gamma_1_cross", &idx);
    cae_model_param_info(f.model, idx, &info);
    harness::check(info.trainable == 1 && info.decayed == 0, "regressor gamma trainable, not decayed");
    cae_status s = cae_model_param_find(f.model, "encoder.blocks.9.norm1.weight", &idx);
    harness::check(s == CAE_ERR_INVALID_ARGUMENT && std::string(cae_last_error()).find("no parameter named") !=
                                                        std::string::npos,
                   "unknown names are refused by name");
    // Initialization: LayerScale values, xavier bound, truncated normal bound.
    std::vector<float> v(16 * 48);
    cae_model_param_find(f.model, "encoder.blocks.0.gamma_1", &idx);
    cae_model_read(f.model, idx, CAE_SLOT_VALUE, v.data(), 16);
    harness::check(v[0] == 0.5f && v[15] == 0.5f, "encoder gamma = layer_scale_init_value");
    cae_model_param_find(f.model, "encoder.blocks.0.attn.qkv.weight", &idx);
    cae_model_read(f.model, idx, CAE_SLOT_VALUE, v.data(), 48 * 16);
    float maxabs = 0;
    for (float x : v) maxabs = std::max(maxabs, std::fabs(x));
    const float bound = std::sqrt(6.0f / (48 + 16));
    harness::check(maxabs <= bound && maxabs > 0.8f * bound, "qkv xavier-uniform within sqrt(6/(fan_in+fan_out))");
    std::printf("    %d parameters; qkv max |w| %.4f, xavier bound %.4f\n", n, maxabs, bound);

    cae_model_config bad = tiny_config();
    bad.num_heads = 3;
    cae_model* m = nullptr;
    s = cae_model_create(f.ctx, &bad, 1, &m);
    harness::check(s == CAE_ERR_INVALID_ARGUMENT && std::string(cae_last_error()).find("num_heads 3") !=
                                                        std::string::npos,
                   std::string("heads that do not divide the width: ") + cae_last_error());
}

// Checks the gradient of the loss along random unit directions over the parameters that
// `include` selects against central differences of the loss itself.
void check_directional_derivatives(const cae_model_config& c, bool (*include)(const char* name), const char* label) {
    Fixture f(c, 11, 1);
    Batch b = make_batch(c, 3, 7, 5);
    std::vector<std::pair<int32_t, int64_t>> params;
    for (auto [i, n] : trainable(f.model)) {
        cae_param_info info;
        cae_model_param_info(f.model, i, &info);
        if (include(info.name)) params.push_back({i, n});
    }
    loss_of(f.model, b);
    std::vector<std::vector<float>> grad, p0;
    for (auto [i, n] : params) {
        grad.emplace_back(static_cast<size_t>(n));
        p0.emplace_back(static_cast<size_t>(n));
        cae_model_read(f.model, i, CAE_SLOT_GRAD, grad.back().data(), n);
        cae_model_read(f.model, i, CAE_SLOT_VALUE, p0.back().data(), n);
    }
    std::mt19937_64 rng(3);
    std::normal_distribution<double> normal;
    for (int trial = 0; trial < 3; ++trial) {
        std::vector<std::vector<double>> dir;
        double norm2 = 0;
        for (auto& g : grad) {
            dir.emplace_back(g.size());
            for (double& x : dir.back()) {
                x = normal(rng);
                norm2 += x * x;
            }
        }
        double analytic = 0;
        for (size_t t = 0; t < dir.size(); ++t) {
            for (size_t k = 0; k < dir[t].size(); ++k) {
                dir[t][k] /= std::sqrt(norm2);
                analytic += dir[t][k] * grad[t][k];
            }
        }
        const double h = 2e-3;
        double losses[2];
        for (int side = 0; side < 2; ++side) {
            for (size_t t = 0; t < params.size(); ++t) {
                std::vector<float> p(p0[t].size());
                for (size_t k = 0; k < p.size(); ++k) p[k] = static_cast<float>(p0[t][k] + (side ? -h : h) * dir[t][k]);
                cae_model_write(f.model, params[t].first, CAE_SLOT_VALUE, p.data(), params[t].second);
            }
            losses[side] = loss_of(f.model, b);
        }
        const double numeric = (losses[0] - losses[1]) / (2 * h);
        const double err = std::fabs(numeric - analytic) / std::max(std::fabs(analytic), 1e-6);
        std::printf("    %s, direction %d: analytic %.6e numeric %.6e rel err %.2e\n", label, trial, analytic,
                    numeric, err);
        harness::check(err < 1e-2, "directional derivative matches");
    }
}

bool any_param(const char*) { return true; }
bool outside_encoder(const char* name) { return std::strncmp(name, "encoder.", 8) != 0; }

}  // namespace

// The alignment target is the encoder itself under stop-gradient, so the loss's total
// derivative differs from its gradient along encoder directions when the alignment term is on.
// Hence two checks: every parameter without the alignment term, and the parameters outside the
// encoder (which do not move the target) with it.
TEST_CASE("whole-model gradient = central finite differences along random directions") {
    cae_model_config c = tiny_config();
    c.align_loss_weight = 0.0f;
    check_directional_derivatives(c, any_param, "all parameters, no alignment term");
    c.align_loss_weight = 2.0f;
    check_directional_derivatives(c, outside_encoder, "regressor+decoder, alignment weight 2");
}

TEST_CASE("deterministic per thread count; training lowers the loss") {
    cae_model_config c = tiny_config();
    Batch b = make_batch(c, 4, 8, 9);
    std::vector<float> runs[2];
    for (int run = 0; run < 2; ++run) {
        Fixture f(c, 21, 2);
        cae_step_options o;
        cae_step_options_init(&o);
        o.lr = 3e-3f;
        o.seed = 99;
        for (int step = 1; step <= 30; ++step) {
            o.step = step;
            cae_step_result r;
            cae_status s = cae_train_step(f.model, &b.img_t, &b.mask_t, &o, &r);
            if (s != CAE_OK) harness::fail(cae_last_error());
            runs[run].push_back(r.loss);
            harness::check(r.skipped == 0 && std::isfinite(r.grad_norm), "finite step");
        }
    }
    harness::check(std::memcmp(runs[0].data(), runs[1].data(), runs[0].size() * sizeof(float)) == 0,
                   "two runs with the same seeds give bitwise equal losses");
    std::printf("    loss step 1 %.4f -> step 30 %.4f\n", runs[0].front(), runs[0].back());
    harness::check(runs[0].back() < 0.8f * runs[0].front(), "30 steps on one batch lower the loss by > 20%");
}

TEST_CASE("stochastic depth follows (seed, step); gradients without it do not") {
    cae_model_config c = tiny_config();
    Batch b = make_batch(c, 4, 8, 2);
    Fixture f(c, 3, 1);
    float g1 = loss_of(f.model, b), g2 = loss_of(f.model, b);
    harness::check(g1 == g2, "cae_compute_gradients has no stochastic depth");
    cae_step_options o;
    cae_step_options_init(&o);
    o.lr = 0.0f;  // no update: compare the forward only
    o.weight_decay = 0.0f;
    cae_step_result r1, r2, r3;
    o.seed = 1;
    o.step = 5;
    cae_train_step(f.model, &b.img_t, &b.mask_t, &o, &r1);
    cae_train_step(f.model, &b.img_t, &b.mask_t, &o, &r2);
    o.step = 6;
    cae_train_step(f.model, &b.img_t, &b.mask_t, &o, &r3);
    harness::check(r1.loss == r2.loss, "same (seed, step): same draws");
    harness::check(r1.loss != r3.loss, "another step: other draws");
    harness::check(r1.loss != g1, "drop path changes the loss");
    o.drop_path = 0;
    cae_train_step(f.model, &b.img_t, &b.mask_t, &o, &r1);
    harness::check(r1.loss == g1, "drop_path = 0 gives the deterministic loss");
}

// The message of the last error without the "function: " prefix that names the ABI call.
std::string message_after(const char* function) {
    std::string m = cae_last_error();
    const std::string prefix = std::string(function) + ": ";
    harness::check(m.rfind(prefix, 0) == 0, "\"" + m + "\" starts with " + prefix);
    return m.substr(prefix.size());
}

TEST_CASE("config check: a configuration's parameter table without a model") {
    cae_model_config frozen = tiny_config();
    frozen.layer_scale_init_value = 0.0f;          // no encoder gammas
    frozen.decoder_layer_scale_init_value = 0.0f;  // no decoder gammas, frozen regressor ones
    for (const cae_model_config& c : {tiny_config(), frozen}) {
        cae_model_config_info info;
        harness::check(cae_model_config_check(&c, &info) == CAE_OK, std::string("check: ") + cae_last_error());
        Fixture f(c);
        int32_t n = 0;
        cae_model_param_count(f.model, &n);
        int64_t total = 0, trainable = 0;
        for (int32_t i = 0; i < n; ++i) {
            cae_param_info p;
            cae_model_param_info(f.model, i, &p);
            total += p.numel;
            if (p.trainable) trainable += p.numel;
        }
        std::printf("    %d parameters, %lld floats, %lld trainable\n", info.param_count,
                    static_cast<long long>(info.total_floats), static_cast<long long>(info.trainable_floats));
        harness::check(info.param_count == n && info.total_floats == total && info.trainable_floats == trainable,
                       "the counts of a model created from the configuration");
        // Untrained: the two position embeddings [1, 1 + N, D], and the regressor's two gammas per block
        // when they are frozen.
        const int64_t N = (c.img_size / c.patch_size) * (c.img_size / c.patch_size);
        const int64_t fixed = 2 * (1 + N) * c.embed_dim +
                              (c.decoder_layer_scale_init_value > 0 ? 0 : 2 * c.regressor_depth * c.embed_dim);
        harness::check(info.total_floats - info.trainable_floats == fixed, "fixed floats");
    }

    cae_model_config bad = tiny_config();
    bad.num_heads = 3;
    cae_model_config_info info;
    info.param_count = 99;
    harness::check(cae_model_config_check(&bad, &info) == CAE_ERR_INVALID_ARGUMENT, "heads that do not divide");
    const std::string checked = message_after("cae_model_config_check");
    harness::check(info.param_count == 0 && info.total_floats == 0, "a refused configuration leaves zeros");
    Fixture f(tiny_config());
    cae_model* m = nullptr;
    harness::check(cae_model_create(f.ctx, &bad, 1, &m) == CAE_ERR_INVALID_ARGUMENT && m == nullptr,
                   "create refuses it too");
    const std::string created = message_after("cae_model_create");
    std::printf("    %s\n", checked.c_str());
    harness::check(checked == created && checked.find("config.num_heads 3") != std::string::npos,
                   "check and create give the same message");
    bad = tiny_config();
    bad.reserved = 1;
    harness::check(cae_model_config_check(&bad, &info) == CAE_ERR_INVALID_ARGUMENT &&
                       message_after("cae_model_config_check").find("config.reserved is 1") == 0,
                   "the reserved field is checked");
    harness::check(cae_model_config_check(nullptr, &info) == CAE_ERR_INVALID_ARGUMENT &&
                       message_after("cae_model_config_check") == "config is NULL",
                   "NULL config");
    const cae_model_config c = tiny_config();
    harness::check(cae_model_config_check(&c, nullptr) == CAE_ERR_INVALID_ARGUMENT &&
                       message_after("cae_model_config_check") == "out is NULL",
                   "NULL out");
}

TEST_CASE("encode and predict") {
    cae_model_config c = tiny_config();
    Fixture f(c, 4, 2);
    Batch b = make_batch(c, 5, 6, 8);
    std::vector<float> cls(5 * 16, NAN), mean(5 * 16, NAN);
    cae_tensor ct{}, mt{};
    ct.dtype = mt.dtype = CAE_DTYPE_F32;
    ct.ndim = mt.ndim = 2;
    ct.shape[0] = mt.shape[0] = 5;
    ct.shape[1] = mt.shape[1] = 16;
    ct.host_data = cls.data();
    mt.host_data = mean.data();
    harness::check(cae_encode(f.model, &b.img_t, &ct, &mt) == CAE_OK, std::string("encode: ") + cae_last_error());
    double s = 0;
    for (int d = 0; d < 16; ++d) s += cls[static_cast<size_t>(d)];
    harness::check(std::fabs(s) < 1e-3, "cls after the final LayerNorm (weight 1, bias 0) has zero mean");
    bool finite = true;
    for (float x : mean) finite = finite && std::isfinite(x);
    harness::check(finite, "mean features are finite");
    // Encoding image 2 alone gives the same features as in the batch.
    cae_tensor one = b.img_t;
    one.shape[0] = 1;
    one.host_data = b.images.data() + 2 * 2 * 144;
    std::vector<float> cls1(16);
    cae_tensor c1 = ct;
    c1.shape[0] = 1;
    c1.host_data = cls1.data();
    cae_encode(f.model, &one, &c1, nullptr);
    harness::check_close("encode: image alone vs in a batch", cls1.data(), cls.data() + 32, 16, 1e-5);

    std::vector<float> pred(5 * 6 * 18);
    cae_tensor pt{};
    pt.dtype = CAE_DTYPE_F32;
    pt.ndim = 3;
    pt.shape[0] = 5;
    pt.shape[1] = 6;
    pt.shape[2] = 18;
    pt.host_data = pred.data();
    harness::check(cae_predict(f.model, &b.img_t, &b.mask_t, &pt) == CAE_OK, std::string("predict: ") + cae_last_error());
    pt.shape[1] = 7;
    cae_status st = cae_predict(f.model, &b.img_t, &b.mask_t, &pt);
    harness::check(st == CAE_ERR_INVALID_ARGUMENT, std::string("predict checks the output shape: ") + cae_last_error());
}

// BF16 against FP32 on the same model and batch. The tolerances are measured values (printed
// here: loss_main 4.7e-4, loss_align 6.8e-5, all gradients 3.0e-3 rel L2 on this configuration)
// with a margin of about 3x. Why that size: a bf16 operand carries a relative rounding error of
// up to 2^-9 (0.2%); a GEMM output sums many such errors of random sign, and the losses average
// again. The bf16 result must also differ from fp32 (the rounding happens at all).
cae_model_config small_config() {
    cae_model_config c;
    cae_model_config_init(&c);
    c.img_size = 32;
    c.patch_size = 4;
    c.in_chans = 3;
    c.embed_dim = 64;
    c.depth = 3;
    c.num_heads = 4;
    c.regressor_depth = 2;
    c.decoder_depth = 2;
    c.decoder_num_heads = 4;
    c.decoder_embed_dim = 64;
    c.drop_path_rate = 0.1f;
    return c;
}

cae_step_result gradients_at(cae_model* m, Batch& b, cae_precision precision) {
    cae_step_options o;
    cae_step_options_init(&o);
    o.drop_path = 0;
    o.precision = precision;
    cae_step_result r{};
    if (cae_compute_gradients(m, &b.img_t, &b.mask_t, &o, &r) != CAE_OK)
        harness::fail(std::string("compute_gradients: ") + cae_last_error());
    return r;
}

std::vector<float> read_all(cae_model* m, cae_slot slot) {
    std::vector<float> all;
    for (auto [index, numel] : trainable(m)) {
        std::vector<float> v(static_cast<size_t>(numel));
        cae_model_read(m, index, slot, v.data(), numel);
        all.insert(all.end(), v.begin(), v.end());
    }
    return all;
}

void copy_params(cae_model* from, cae_model* to) {
    int32_t n = 0;
    cae_model_param_count(from, &n);
    for (int32_t i = 0; i < n; ++i) {
        cae_param_info info;
        cae_model_param_info(from, i, &info);
        std::vector<float> v(static_cast<size_t>(info.numel));
        cae_model_read(from, i, CAE_SLOT_VALUE, v.data(), info.numel);
        cae_model_write(to, i, CAE_SLOT_VALUE, v.data(), info.numel);
    }
}

TEST_CASE("BF16: losses and gradients near FP32, and not equal to them") {
    cae_model_config c = small_config();
    Batch b = make_batch(c, 4, 32, 17);
    Fixture f(c, 11, 2);
    const cae_step_result r32 = gradients_at(f.model, b, CAE_PRECISION_FP32);
    const std::vector<float> g32 = read_all(f.model, CAE_SLOT_GRAD);
    const cae_step_result r16 = gradients_at(f.model, b, CAE_PRECISION_BF16);
    const std::vector<float> g16 = read_all(f.model, CAE_SLOT_GRAD);
    auto rel = [](double a, double b) { return std::abs(a - b) / std::abs(b); };
    const double e_main = rel(r16.loss_main, r32.loss_main), e_align = rel(r16.loss_align, r32.loss_align);
    const double e_grad = harness::rel_error(g16.data(), g32.data(), g32.size());
    std::printf("    bf16 vs fp32: loss_main %.3e, loss_align %.3e, grad_norm %.3e, all gradients rel L2 %.3e\n",
                e_main, e_align, rel(r16.grad_norm, r32.grad_norm), e_grad);
    harness::check_error("bf16 loss_main", e_main, 2e-3);
    harness::check_error("bf16 loss_align", e_align, 2e-3);
    harness::check_error("bf16 gradients (rel L2, all parameters)", e_grad, 1e-2);
    harness::check(e_grad > 1e-5, "bf16 gradients differ from fp32 (the operands are rounded)");
    // Deterministic.
    const cae_step_result again = gradients_at(f.model, b, CAE_PRECISION_BF16);
    harness::check(again.loss == r16.loss && again.grad_norm == r16.grad_norm, "bf16 gradients repeat bitwise");
}

TEST_CASE("BF16: the bf16 weight copy follows updates, writes and fp32 steps") {
    cae_model_config c = small_config();
    Batch b = make_batch(c, 2, 32, 5);
    Fixture x(c, 3, 2), y(c, 99, 2);
    cae_step_options o;
    cae_step_options_init(&o);
    o.lr = 1e-3;
    o.precision = CAE_PRECISION_BF16;
    cae_step_result r{};
    // (1) bf16 steps keep the copy current through AdamW.
    for (int step = 1; step <= 2; ++step) {
        o.step = step;
        harness::check(cae_train_step(x.model, &b.img_t, &b.mask_t, &o, &r) == CAE_OK, "bf16 step");
    }
    // (2) an fp32 step changes the parameters without it.
    o.step = 3;
    o.precision = CAE_PRECISION_FP32;
    harness::check(cae_train_step(x.model, &b.img_t, &b.mask_t, &o, &r) == CAE_OK, "fp32 step");
    const cae_step_result rx = gradients_at(x.model, b, CAE_PRECISION_BF16);
    // y gets x's parameters by writes: its copy is made from them.
    gradients_at(y.model, b, CAE_PRECISION_BF16);  // y's copy of its own (other) parameters exists
    copy_params(x.model, y.model);
    const cae_step_result ry = gradients_at(y.model, b, CAE_PRECISION_BF16);
    harness::check(rx.loss == ry.loss && rx.grad_norm == ry.grad_norm,
                   "bf16 gradients after fp32 and bf16 steps equal those of a model written with the same parameters");
    const std::vector<float> gx = read_all(x.model, CAE_SLOT_GRAD), gy = read_all(y.model, CAE_SLOT_GRAD);
    harness::check(std::memcmp(gx.data(), gy.data(), gx.size() * sizeof(float)) == 0, "bitwise equal gradients");
    // (3) a bf16 step after the bf16 gradients (copy current) matches a model without history.
    o.precision = CAE_PRECISION_BF16;
    o.step = 4;
    cae_step_result sx{}, sy{};
    cae_train_step(x.model, &b.img_t, &b.mask_t, &o, &sx);
    cae_train_step(y.model, &b.img_t, &b.mask_t, &o, &sy);
    std::vector<float> px = read_all(x.model, CAE_SLOT_VALUE), py = read_all(y.model, CAE_SLOT_VALUE);
    // x and y differ in their AdamW moments (y has none), so only the losses of this step agree.
    harness::check(sx.loss == sy.loss, "the same bf16 loss from the same parameters");
    o.step = 5;
    cae_train_step(x.model, &b.img_t, &b.mask_t, &o, &sx);
    copy_params(x.model, y.model);
    const cae_step_result fx = gradients_at(x.model, b, CAE_PRECISION_BF16), fy = gradients_at(y.model, b, CAE_PRECISION_BF16);
    harness::check(fx.loss == fy.loss && fx.grad_norm == fy.grad_norm,
                   "after a bf16 AdamW step the copy equals a fresh rounding of the parameters");
    (void)px;
    (void)py;
}

TEST_CASE("step options: precision is checked") {
    cae_model_config c = tiny_config();
    Batch b = make_batch(c, 2, 5, 1);
    Fixture f(c, 1, 1);
    cae_step_options o;
    cae_step_options_init(&o);
    harness::check(o.precision == CAE_PRECISION_FP32, "fp32 by default");
    o.precision = 7;
    cae_step_result r{};
    harness::check(cae_train_step(f.model, &b.img_t, &b.mask_t, &o, &r) == CAE_ERR_INVALID_ARGUMENT &&
                       std::strstr(cae_last_error(), "precision") != nullptr,
                   std::string("precision 7 refused: ") + cae_last_error());
    harness::check(cae_compute_gradients(f.model, &b.img_t, &b.mask_t, &o, &r) == CAE_ERR_INVALID_ARGUMENT,
                   "refused by compute_gradients too");
}

TEST_CASE("compute gradients: NULL options are fp32 without stochastic depth") {
    cae_model_config c = tiny_config();
    Batch b = make_batch(c, 3, 7, 4);
    Fixture f(c, 2, 1);
    cae_step_result plain{}, with{};
    harness::check(cae_compute_gradients(f.model, &b.img_t, &b.mask_t, nullptr, &plain) == CAE_OK, "NULL options");
    const std::vector<float> g_plain = read_all(f.model, CAE_SLOT_GRAD);
    cae_step_options o;
    cae_step_options_init(&o);
    o.drop_path = 0;
    o.seed = 9;
    harness::check(cae_compute_gradients(f.model, &b.img_t, &b.mask_t, &o, &with) == CAE_OK, "fp32, no drop path");
    const std::vector<float> g_with = read_all(f.model, CAE_SLOT_GRAD);
    harness::check(plain.loss == with.loss && plain.grad_norm == with.grad_norm &&
                       std::memcmp(g_plain.data(), g_with.data(), g_plain.size() * sizeof(float)) == 0,
                   "NULL options give the fp32 gradients without stochastic depth, bitwise");
    o.drop_path = 1;
    bool dropped = false;  // a step whose draws keep every block gives the plain loss: try a few
    for (o.step = 1; o.step <= 8 && !dropped; ++o.step) {
        harness::check(cae_compute_gradients(f.model, &b.img_t, &b.mask_t, &o, &with) == CAE_OK, "drop path on");
        dropped = with.loss != plain.loss;
    }
    harness::check(dropped, "the options' stochastic depth is applied");
    harness::check(cae_compute_gradients(f.model, &b.img_t, &b.mask_t, nullptr, nullptr) == CAE_ERR_INVALID_ARGUMENT &&
                       std::string(cae_last_error()) == "cae_compute_gradients: result is NULL",
                   "NULL result");
}

TEST_CASE("bad batches are refused with the reason") {
    cae_model_config c = tiny_config();
    Fixture f(c, 4, 1);
    Batch b = make_batch(c, 2, 5, 1);
    cae_step_result r;
    auto expect = [&](const char* what, const char* needle) {
        cae_status s = cae_compute_gradients(f.model, &b.img_t, &b.mask_t, nullptr, &r);
        std::string msg = cae_last_error();
        std::printf("    %-34s -> %s\n", what, msg.c_str());
        harness::check(s == CAE_ERR_INVALID_ARGUMENT && msg.find(needle) != std::string::npos, what);
    };
    b.mask[16 + 3] = 1 - b.mask[16 + 3];
    expect("uneven mask rows", "mask row 1 masks");
    b.mask[16 + 3] = 1 - b.mask[16 + 3];
    b.mask[4] = 7;
    expect("mask value 7", "mask[0, 4] is 7");
    b.mask[4] = 0;
    b.img_t.shape[1] = 3;
    expect("3 channels for a 2-channel model", "images has shape [2, 3, 12, 12], expected [B, 2, 12, 12]");
    b.img_t.shape[1] = 2;
    b.mask_t.shape[1] = 15;
    expect("mask of 15 patches", "mask has shape [2, 15], expected [2, 16]");
    b.mask_t.shape[1] = 16;
    b.img_t.dtype = CAE_DTYPE_BF16;
    expect("BF16 images", "images has dtype BF16, expected F32");
    b.img_t.dtype = CAE_DTYPE_F32;
    std::vector<uint8_t> all(32, 1);
    b.mask_t.host_data = all.data();
    expect("everything masked", "at least one must be masked and one visible");
    b.mask_t.host_data = b.mask.data();
    harness::check(cae_compute_gradients(f.model, &b.img_t, &b.mask_t, nullptr, &r) == CAE_OK, "the fixed batch works");
    float dummy;
    harness::check(cae_model_read(f.model, 0, CAE_SLOT_VALUE, &dummy, 1) == CAE_ERR_INVALID_ARGUMENT,
                   "read with a wrong count");
    harness::check(cae_model_read(f.model, 5000, CAE_SLOT_VALUE, &dummy, 1) == CAE_ERR_INVALID_ARGUMENT,
                   "read past the parameter count");
    cae_model_destroy(f.model);
    harness::check(cae_compute_gradients(f.model, &b.img_t, &b.mask_t, nullptr, &r) == CAE_ERR_INVALID_HANDLE,
                   "a destroyed model");
    f.model = nullptr;
}

HARNESS_MAIN
