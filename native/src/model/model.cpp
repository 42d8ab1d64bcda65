#include "model/model.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "common/error.h"
#include "common/memory_stats.h"
#include "model/rng.h"

namespace cae {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Random streams of the stochastic-depth draws, one per stack.
enum DropStream : uint64_t { kEncoder = 1, kAlignment = 2, kRegressor = 3, kDecoder = 4 };

}  // namespace

// Buffers of one training step for a batch shape (B, Nm); reallocated when it changes.
struct Model::StepBuffers {
    Workspace ws;
    int64_t B, Nv, Nm;
    int32_t *idx_vis, *idx_msk;               // [B, Nv], [B, Nm]
    float *patches_vis, *patches_msk;         // [B, Nv, K], [B, Nm, K] channels-first patches
    float *emb_vis, *emb_msk;                 // [B, Nv, D], [B, Nm, D] their patch embeddings
    std::vector<float*> enc_stream;           // depth + 1 x [B, 1+Nv, D]
    std::vector<BlockActs> enc_acts;
    float *z, *z_mean, *z_rstd;               // encoder.norm output [B, 1+Nv, D]
    float *al_stream0, *al_stream1, *al_out, *al_mean, *al_rstd, *t_align;  // alignment pass
    BlockActs al_acts;
    float *pos_m, *pk;                        // [B, Nm, D], [B, Nv+Nm, D]
    std::vector<float*> reg_q;                // reg_depth + 1 x [B, Nm, D]
    std::vector<RegressorActs> reg_acts;
    RegressorScratch reg_sc;
    float *latent, *lat_mean, *lat_rstd;      // regresser.norm output [B, Nm, D]
    std::vector<float*> dec_stream;           // dec_depth + 1 x [B, Nm, D]
    std::vector<BlockActs> dec_acts;
    float *dec_out, *dec_mean, *dec_rstd, *pred;  // [B, Nm, D], [B, Nm, K]
    float* target;                            // [B, Nm, K] pixels-first masked patches, normalized
    BlockScratch sc;                          // shared by encoder, alignment pass and decoder
    float* scalars;                           // loss_main, loss_align, grad_norm
    float *drop_enc, *drop_al, *drop_reg, *drop_dec;  // [depth, 2, B] per stack
    // backward
    float *d_pred, *d_latent, *d_decn, *d_dec, *d_reg, *d_z, *d_enc, *dx_vis;
    std::vector<int32_t> host_vis, host_msk;
    bool drop_used = false;                   // the last forward drew stochastic depth
    float* images = nullptr;                  // [B, C, H, W] the recorded passes read (see step)
    // Recorded forward + backward passes by (drop path, precision) (null: recording failed), and
    // the keys that ran once directly.
    std::map<int, std::unique_ptr<Backend::Recording>> recordings;
    std::set<int> ran_directly;

    StepBuffers(Backend& be, const ModelDims& d, int64_t B_, int64_t Nm_) : ws(be), B(B_), Nv(d.N - Nm_), Nm(Nm_) {
        const int64_t D = d.D, K = d.patch_dim, Te = 1 + Nv, Ta = 1 + Nm, L = Nv + Nm;
        idx_vis = ws.ints(B * Nv);
        idx_msk = ws.ints(B * Nm);
        host_vis.resize(static_cast<size_t>(B * Nv));
        host_msk.resize(static_cast<size_t>(B * Nm));
        patches_vis = ws.floats(B * Nv * K);
        patches_msk = ws.floats(B * Nm * K);
        emb_vis = ws.floats(B * Nv * D);
        emb_msk = ws.floats(B * Nm * D);
        for (int64_t l = 0; l <= d.depth; ++l) enc_stream.push_back(ws.floats(B * Te * D));
        for (int64_t l = 0; l < d.depth; ++l) enc_acts.push_back(BlockActs::allocate(ws, B, Te, D, d.heads, d.mlp));
        z = ws.floats(B * Te * D);
        z_mean = ws.floats(B * Te);
        z_rstd = ws.floats(B * Te);
        al_stream0 = ws.floats(B * Ta * D);
        al_stream1 = ws.floats(B * Ta * D);
        al_acts = BlockActs::allocate(ws, B, Ta, D, d.heads, d.mlp);
        al_out = ws.floats(B * Ta * D);
        al_mean = ws.floats(B * Ta);
        al_rstd = ws.floats(B * Ta);
        t_align = ws.floats(B * Nm * D);
        pos_m = ws.floats(B * Nm * D);
        pk = ws.floats(B * L * D);
        for (int64_t j = 0; j <= d.reg_depth; ++j) reg_q.push_back(ws.floats(B * Nm * D));
        for (int64_t j = 0; j < d.reg_depth; ++j) {
            reg_acts.push_back(RegressorActs::allocate(ws, B, Nv, Nm, D, d.dec_heads, d.mlp));
        }
        reg_sc = RegressorScratch::allocate(ws, B, Nv, Nm, D, d.mlp);
        latent = ws.floats(B * Nm * D);
        lat_mean = ws.floats(B * Nm);
        lat_rstd = ws.floats(B * Nm);
        for (int64_t k = 0; k <= d.dec_depth; ++k) dec_stream.push_back(ws.floats(B * Nm * D));
        for (int64_t k = 0; k < d.dec_depth; ++k) {
            dec_acts.push_back(BlockActs::allocate(ws, B, Nm, D, d.dec_heads, d.mlp));
        }
        dec_out = ws.floats(B * Nm * D);
        dec_mean = ws.floats(B * Nm);
        dec_rstd = ws.floats(B * Nm);
        pred = ws.floats(B * Nm * K);
        target = ws.floats(B * Nm * K);
        sc = BlockScratch::allocate(ws, B * std::max(Te, Ta), D, d.mlp);
        scalars = ws.floats(4);
        drop_enc = ws.floats(d.depth * 2 * B);
        drop_al = ws.floats(d.depth * 2 * B);
        drop_reg = ws.floats(d.reg_depth * 2 * B);
        drop_dec = ws.floats(std::max<int64_t>(d.dec_depth, 1) * 2 * B);
        d_pred = ws.floats(B * Nm * K);
        d_latent = ws.floats(B * Nm * D);
        d_decn = ws.floats(B * Nm * D);
        d_dec = ws.floats(B * Nm * D);
        d_reg = ws.floats(B * Nm * D);
        d_z = ws.floats(B * Te * D);
        d_enc = ws.floats(B * Te * D);
        dx_vis = ws.floats(B * Nv * D);
        if (be.can_record()) images = ws.floats(B * d.chans * d.img * d.img);
    }
};

// Buffers of cae_encode for a batch size B: the encoder over every patch.
struct Model::EncodeBuffers {
    Workspace ws;
    int64_t B;
    int32_t* idx_all;
    float *patches, *emb, *stream0, *stream1, *out, *mean, *rstd, *ones;
    BlockActs acts;
    BlockScratch sc;

    EncodeBuffers(Backend& be, const ModelDims& d, int64_t B_) : ws(be), B(B_) {
        const int64_t D = d.D, N = d.N, T = 1 + N;
        idx_all = ws.ints(B * N);
        std::vector<int32_t> all(static_cast<size_t>(B * N));
        for (int64_t i = 0; i < B * N; ++i) all[static_cast<size_t>(i)] = static_cast<int32_t>(i % N);
        be.copy_to_device(idx_all, all.data(), all.size() * sizeof(int32_t));
        patches = ws.floats(B * N * d.patch_dim);
        emb = ws.floats(B * N * D);
        stream0 = ws.floats(B * T * D);
        stream1 = ws.floats(B * T * D);
        out = ws.floats(B * T * D);
        mean = ws.floats(B * T);
        rstd = ws.floats(B * T);
        ones = ws.floats(N);
        be.fill(ones, 1.0f, N);
        acts = BlockActs::allocate(ws, B, T, D, d.heads, d.mlp);
        sc = BlockScratch::allocate(ws, B * T, D, d.mlp);
    }
};

Model::Model(std::shared_ptr<Context> context, const cae_model_config& config, uint64_t seed)
    : context_(std::move(context)), config_(config), dims_(validate_config(config)), table_(dims_) {
    Backend& be = backend();
    const size_t bytes = static_cast<size_t>(table_.total()) * sizeof(float);
    std::vector<float> host(static_cast<size_t>(table_.total()), 0.0f);
    initialize_params(table_, dims_, seed, host.data());
    try {
        params_ = static_cast<float*>(be.alloc(bytes));
        grads_ = static_cast<float*>(be.alloc(bytes));
        exp_avg_ = static_cast<float*>(be.alloc(bytes));
        exp_avg_sq_ = static_cast<float*>(be.alloc(bytes));
    } catch (...) {
        be.release(params_);
        be.release(grads_);
        be.release(exp_avg_);
        throw;
    }
    be.copy_to_device(params_, host.data(), bytes);
    count_model(+1);
}

Model::~Model() {
    step_.reset();
    encode_.reset();
    Backend& be = backend();
    be.release(params_);
    be.release(grads_);
    be.release(exp_avg_);
    be.release(exp_avg_sq_);
    be.release(params_bf16_);
    count_model(-1);
}

float* Model::slot_base(cae_slot slot) const {
    switch (slot) {
        case CAE_SLOT_VALUE: return params_;
        case CAE_SLOT_GRAD: return grads_;
        case CAE_SLOT_EXP_AVG: return exp_avg_;
        case CAE_SLOT_EXP_AVG_SQ: return exp_avg_sq_;
    }
    fail(CAE_ERR_INVALID_ARGUMENT, "slot is ", slot,
         ", expected CAE_SLOT_VALUE (0), _GRAD (1), _EXP_AVG (2) or _EXP_AVG_SQ (3)");
}

void Model::read(int index, cae_slot slot, float* host) const {
    const ParamEntry& e = table_[index];
    context_->backend().copy_to_host(host, slot_base(slot) + e.offset, static_cast<size_t>(e.numel) * sizeof(float));
}

void Model::write(int index, cae_slot slot, const float* host) {
    const ParamEntry& e = table_[index];
    backend().copy_to_device(slot_base(slot) + e.offset, host, static_cast<size_t>(e.numel) * sizeof(float));
    if (slot == CAE_SLOT_VALUE) params_bf16_current_ = false;
}

Weights Model::weights(GemmPrecision precision, bool with_grads) const {
    Weights w{table_, params_, with_grads ? grads_ : nullptr};
    w.precision = precision;
    if (precision == GemmPrecision::BF16) w.params_bf16 = params_bf16_;
    return w;
}

void Model::refresh_bf16_params() {
    Backend& be = backend();
    if (params_bf16_ == nullptr) {
        params_bf16_ = static_cast<uint16_t*>(be.alloc(static_cast<size_t>(table_.total()) * sizeof(uint16_t)));
        params_bf16_current_ = false;
    }
    if (!params_bf16_current_) {
        be.round_to_bf16(params_bf16_, params_, table_.total());
        params_bf16_current_ = true;
    }
}

Model::StepBuffers& Model::step_buffers(int64_t B, int64_t Nm) {
    if (!step_ || step_->B != B || step_->Nm != Nm) {
        step_.reset();  // free the old shape's buffers before allocating the new ones
        step_ = std::make_unique<StepBuffers>(backend(), dims_, B, Nm);
    }
    return *step_;
}

void Model::upload_indices(StepBuffers& sb, const uint8_t* mask) {
    const int64_t N = dims_.N;
    for (int64_t b = 0; b < sb.B; ++b) {
        int64_t nv = 0, nm = 0;
        for (int64_t n = 0; n < N; ++n) {
            if (mask[b * N + n]) {
                sb.host_msk[static_cast<size_t>(b * sb.Nm + nm++)] = static_cast<int32_t>(n);
            } else {
                sb.host_vis[static_cast<size_t>(b * sb.Nv + nv++)] = static_cast<int32_t>(n);
            }
        }
    }
    Backend& be = backend();
    be.copy_to_device(sb.idx_vis, sb.host_vis.data(), sb.host_vis.size() * sizeof(int32_t));
    be.copy_to_device(sb.idx_msk, sb.host_msk.data(), sb.host_msk.size() * sizeof(int32_t));
}

std::vector<float> Model::drop_scales(uint64_t seed, uint64_t stream, int64_t step, int64_t depth, int64_t B,
                                      int64_t offset) const {
    // Per-sample keep/(1-p) scales [depth, 2 branches, B]; rates spaced linearly 0..rate over the
    // stack as torch.linspace(0, rate, depth). Row b draws as row offset + b of the global batch.
    std::vector<float> s(static_cast<size_t>(depth * 2 * B), 1.0f);
    for (int64_t l = 0; l < depth; ++l) {
        const double p = depth > 1 ? static_cast<double>(static_cast<float>(dims_.drop_path * l / (depth - 1)))
                                   : 0.0;
        if (p <= 0.0) continue;
        const double keep = 1.0 - p;
        for (int64_t branch = 0; branch < 2; ++branch) {
            Rng rng(seed, static_cast<uint64_t>(step), stream * 4096 + static_cast<uint64_t>(l * 2 + branch));
            for (int64_t g = 0; g < offset + B; ++g) {  // rows before this process's are drawn and skipped
                const double kept = std::floor(keep + rng.uniform());
                if (g >= offset) s[static_cast<size_t>((l * 2 + branch) * B + g - offset)] = static_cast<float>(kept / keep);
            }
        }
    }
    return s;
}

void Model::encode_tokens(const float* emb, const int32_t* idx, int64_t B, int64_t n_sel, const float* drops,
                          float* stream0, float* stream1, BlockActs& acts, BlockScratch& sc, float* out, float* mean,
                          float* rstd, GemmPrecision precision) {
    Backend& be = backend();
    const ModelDims& d = dims_;
    const Weights w = weights(precision, false);
    const int64_t D = d.D, T = 1 + n_sel;
    // [cls ; patches + pos]: cls's position row is zero
    be.copy_rows(stream0, T * D, w.p(table_.cls_token), 0, B, D);
    be.copy_rows(stream0 + D, T * D, emb, n_sel * D, B, n_sel * D);
    be.gather_tokens(stream0 + D, T * D, w.p(table_.pos_embed) + D, 0, idx, B, n_sel, D, true);
    const BlockShape shape{B, T, D, d.heads, d.mlp, d.ln_eps};
    float* cur = stream0;
    float* nxt = stream1;
    for (int64_t l = 0; l < d.depth; ++l) {
        const float* d1 = drops ? drops + (l * 2) * B : nullptr;
        const float* d2 = drops ? drops + (l * 2 + 1) * B : nullptr;
        block_forward(be, w, table_.encoder[static_cast<size_t>(l)], shape, acts, sc, cur, nxt, d1, d2);
        std::swap(cur, nxt);
    }
    be.layernorm_forward(out, mean, rstd, cur, w.p(table_.enc_norm_w), w.p(table_.enc_norm_b), B * T, D, d.ln_eps);
}

void Model::upload_drop_scales(StepBuffers& sb, uint64_t seed, int64_t step, int64_t offset) {
    Backend& be = backend();
    const ModelDims& d = dims_;
    auto upload = [&](float* dst, uint64_t stream, int64_t depth) {
        std::vector<float> s = drop_scales(seed, stream, step, depth, sb.B, offset);
        if (!s.empty()) be.copy_to_device(dst, s.data(), s.size() * sizeof(float));
    };
    upload(sb.drop_enc, kEncoder, d.depth);
    upload(sb.drop_al, kAlignment, d.depth);
    upload(sb.drop_reg, kRegressor, d.reg_depth);
    upload(sb.drop_dec, kDecoder, d.dec_depth);
}

void Model::forward(StepBuffers& sb, const float* images, bool with_alignment, bool drop_path,
                    GemmPrecision precision) {
    Backend& be = backend();
    const ModelDims& d = dims_;
    const Weights w = weights(precision, true);
    const int64_t B = sb.B, Nv = sb.Nv, Nm = sb.Nm, D = d.D, K = d.patch_dim, Te = 1 + Nv;
    const int64_t L = Nv + Nm;

    auto drop = [&](float* base, int64_t layer, int branch) -> const float* {
        return drop_path ? base + (layer * 2 + branch) * B : nullptr;
    };

    // Patch embedding (a Conv2d with kernel = stride = patch, as a GEMM) of the visible patches,
    // extracted in the encoder's token order (the gather done by the extraction).
    be.patchify_gather(sb.patches_vis, images, sb.idx_vis, B, Nv, d.chans, d.img, d.img, d.patch,
                       PatchOrder::ChannelsFirst);
    linear_forward(be, sb.emb_vis, sb.patches_vis, w.wt(table_.patch_w), w.p(table_.patch_b), B * Nv, K, D);

    // Encoder on [cls ; visible patches + pos].
    float* x0 = sb.enc_stream[0];
    be.copy_rows(x0, Te * D, w.p(table_.cls_token), 0, B, D);
    be.copy_rows(x0 + D, Te * D, sb.emb_vis, Nv * D, B, Nv * D);
    be.gather_tokens(x0 + D, Te * D, w.p(table_.pos_embed) + D, 0, sb.idx_vis, B, Nv, D, true);
    const BlockShape enc_shape{B, Te, D, d.heads, d.mlp, d.ln_eps};
    for (int64_t l = 0; l < d.depth; ++l) {
        block_forward(be, w, table_.encoder[static_cast<size_t>(l)], enc_shape, sb.enc_acts[static_cast<size_t>(l)],
                      sb.sc, sb.enc_stream[static_cast<size_t>(l)], sb.enc_stream[static_cast<size_t>(l + 1)],
                      drop(sb.drop_enc, l, 0), drop(sb.drop_enc, l, 1));
    }
    be.layernorm_forward(sb.z, sb.z_mean, sb.z_rstd, sb.enc_stream.back(), w.p(table_.enc_norm_w),
                         w.p(table_.enc_norm_b), B * Te, D, d.ln_eps);

    // Alignment target: the same encoder, no gradients, on the masked patches; cls dropped.
    if (with_alignment) {
        be.patchify_gather(sb.patches_msk, images, sb.idx_msk, B, Nm, d.chans, d.img, d.img, d.patch,
                           PatchOrder::ChannelsFirst);
        linear_forward(be, sb.emb_msk, sb.patches_msk, w.wt(table_.patch_w), w.p(table_.patch_b), B * Nm, K, D);
        encode_tokens(sb.emb_msk, sb.idx_msk, B, Nm, drop_path ? sb.drop_al : nullptr, sb.al_stream0, sb.al_stream1,
                      sb.al_acts, sb.sc, sb.al_out, sb.al_mean, sb.al_rstd, precision);
        be.copy_rows(sb.t_align, Nm * D, sb.al_out + D, (1 + Nm) * D, B, Nm * D);
    }

    // Positions of the regressor and decoder: pos_m, and [pos_v ; pos_m] for the keys.
    const float* rd_pos = w.p(table_.rd_pos) + D;
    be.gather_tokens(sb.pos_m, Nm * D, rd_pos, 0, sb.idx_msk, B, Nm, D, false);
    be.gather_tokens(sb.pk, L * D, rd_pos, 0, sb.idx_vis, B, Nv, D, false);
    be.copy_rows(sb.pk + Nv * D, L * D, sb.pos_m, Nm * D, B, Nm * D);

    // Regressor: mask-token queries cross-attend to [visible latents ; queries].
    be.copy_rows(sb.reg_q[0], D, w.p(table_.mask_token), 0, B * Nm, D);
    const RegressorShape reg_shape{B, Nv, Nm, D, d.dec_heads, d.mlp, d.ln_eps};
    for (int64_t j = 0; j < d.reg_depth; ++j) {
        regressor_forward(be, w, table_.regressor[static_cast<size_t>(j)], reg_shape,
                          sb.reg_acts[static_cast<size_t>(j)], sb.reg_sc, sb.z + D, Te * D, sb.pos_m, sb.pk,
                          sb.reg_q[static_cast<size_t>(j)], sb.reg_q[static_cast<size_t>(j + 1)],
                          drop(sb.drop_reg, j, 0), drop(sb.drop_reg, j, 1));
    }
    be.layernorm_forward(sb.latent, sb.lat_mean, sb.lat_rstd, sb.reg_q.back(), w.p(table_.reg_norm_w),
                         w.p(table_.reg_norm_b), B * Nm, D, d.ln_eps);

    // Decoder over the masked tokens only, then the pixel head.
    be.copy_on_device(sb.dec_stream[0], sb.latent, static_cast<size_t>(B * Nm * D) * sizeof(float));
    be.axpy(sb.dec_stream[0], sb.pos_m, 1.0f, B * Nm * D);
    const BlockShape dec_shape{B, Nm, D, d.dec_heads, d.mlp, d.ln_eps};
    for (int64_t k = 0; k < d.dec_depth; ++k) {
        block_forward(be, w, table_.decoder[static_cast<size_t>(k)], dec_shape, sb.dec_acts[static_cast<size_t>(k)],
                      sb.sc, sb.dec_stream[static_cast<size_t>(k)], sb.dec_stream[static_cast<size_t>(k + 1)],
                      drop(sb.drop_dec, k, 0), drop(sb.drop_dec, k, 1));
    }
    be.layernorm_forward(sb.dec_out, sb.dec_mean, sb.dec_rstd, sb.dec_stream.back(), w.p(table_.dec_norm_w),
                         w.p(table_.dec_norm_b), B * Nm, D, d.ln_eps);
    linear_forward(be, sb.pred, sb.dec_out, w.wt(table_.head_w), w.p(table_.head_b), B * Nm, D, K);

    // Target: the masked patches' pixels in (py, px, c) order, normalized per patch.
    be.patchify_gather(sb.target, images, sb.idx_msk, B, Nm, d.chans, d.img, d.img, d.patch, PatchOrder::PixelsFirst);
    be.normalize_rows(sb.target, B * Nm, K, d.pix_eps);

    be.mse_forward(sb.scalars + 0, sb.pred, sb.target, B * Nm * K);
    if (with_alignment) be.mse_forward(sb.scalars + 1, sb.latent, sb.t_align, B * Nm * D);
}

void Model::backward(StepBuffers& sb, GemmPrecision precision) {
    Backend& be = backend();
    const ModelDims& d = dims_;
    const Weights w = weights(precision, true);
    const int64_t B = sb.B, Nv = sb.Nv, Nm = sb.Nm, D = d.D, K = d.patch_dim, Te = 1 + Nv;
    auto drop = [&](float* base, int64_t layer, int branch) -> const float* {
        return sb.drop_used ? base + (layer * 2 + branch) * B : nullptr;
    };

    be.fill(grads_, 0.0f, table_.total());
    // Losses: L = mse(pred, target) + w_align * mse(latent, sg(t_align))
    be.fill(sb.d_pred, 0.0f, B * Nm * K);
    be.mse_backward(sb.d_pred, sb.pred, sb.target, B * Nm * K, 1.0f);
    be.fill(sb.d_latent, 0.0f, B * Nm * D);
    be.mse_backward(sb.d_latent, sb.latent, sb.t_align, B * Nm * D, d.align_weight);

    // Pixel head and decoder.
    linear_backward(be, sb.d_decn, w.g(table_.head_w), w.g(table_.head_b), sb.d_pred, sb.dec_out,
                    w.wt(table_.head_w), B * Nm, D, K, false);
    be.fill(sb.d_dec, 0.0f, B * Nm * D);
    be.layernorm_backward(sb.d_dec, w.g(table_.dec_norm_w), w.g(table_.dec_norm_b), sb.d_decn, sb.dec_stream.back(),
                          w.p(table_.dec_norm_w), sb.dec_mean, sb.dec_rstd, B * Nm, D);
    const BlockShape dec_shape{B, Nm, D, d.dec_heads, d.mlp, d.ln_eps};
    for (int64_t k = d.dec_depth - 1; k >= 0; --k) {
        block_backward(be, w, table_.decoder[static_cast<size_t>(k)], dec_shape, sb.dec_acts[static_cast<size_t>(k)],
                       sb.sc, sb.dec_stream[static_cast<size_t>(k)], sb.d_dec, drop(sb.drop_dec, k, 0),
                       drop(sb.drop_dec, k, 1));
    }
    be.axpy(sb.d_latent, sb.d_dec, 1.0f, B * Nm * D);  // decoder input = latent + pos_m

    // Regressor.
    be.fill(sb.d_reg, 0.0f, B * Nm * D);
    be.layernorm_backward(sb.d_reg, w.g(table_.reg_norm_w), w.g(table_.reg_norm_b), sb.d_latent, sb.reg_q.back(),
                          w.p(table_.reg_norm_w), sb.lat_mean, sb.lat_rstd, B * Nm, D);
    be.fill(sb.d_z, 0.0f, B * Te * D);
    const RegressorShape reg_shape{B, Nv, Nm, D, d.dec_heads, d.mlp, d.ln_eps};
    for (int64_t j = d.reg_depth - 1; j >= 0; --j) {
        regressor_backward(be, w, table_.regressor[static_cast<size_t>(j)], reg_shape,
                           sb.reg_acts[static_cast<size_t>(j)], sb.reg_sc, sb.d_reg, sb.d_z + D, Te * D,
                           drop(sb.drop_reg, j, 0), drop(sb.drop_reg, j, 1));
    }
    if (float* g = w.g(table_.mask_token)) be.bias_backward(g, sb.d_reg, D, B * Nm, D);

    // Encoder (the cls output's gradient is zero: CAE v1 discards it).
    be.fill(sb.d_enc, 0.0f, B * Te * D);
    be.layernorm_backward(sb.d_enc, w.g(table_.enc_norm_w), w.g(table_.enc_norm_b), sb.d_z, sb.enc_stream.back(),
                          w.p(table_.enc_norm_w), sb.z_mean, sb.z_rstd, B * Te, D);
    const BlockShape enc_shape{B, Te, D, d.heads, d.mlp, d.ln_eps};
    for (int64_t l = d.depth - 1; l >= 0; --l) {
        block_backward(be, w, table_.encoder[static_cast<size_t>(l)], enc_shape, sb.enc_acts[static_cast<size_t>(l)],
                       sb.sc, sb.enc_stream[static_cast<size_t>(l)], sb.d_enc, drop(sb.drop_enc, l, 0),
                       drop(sb.drop_enc, l, 1));
    }

    // Encoder input [cls ; emb[vis] + pos[vis]]: only visible patches reach the patch embedding.
    if (float* g = w.g(table_.cls_token)) be.bias_backward(g, sb.d_enc, Te * D, B, D);
    be.copy_rows(sb.dx_vis, Nv * D, sb.d_enc + D, Te * D, B, Nv * D);
    linear_backward(be, nullptr, w.g(table_.patch_w), w.g(table_.patch_b), sb.dx_vis, sb.patches_vis,
                    w.wt(table_.patch_w), B * Nv, K, D, false);

    be.l2_norm(sb.scalars + 2, grads_, table_.total());
}

bool Model::forward_backward_recorded(StepBuffers& sb, const float* images, GemmPrecision precision) {
    Backend& be = backend();
    if (!be.can_record() || sb.images == nullptr) return false;
    const int key = (sb.drop_used ? 1 : 0) + 2 * static_cast<int>(precision);
    auto found = sb.recordings.find(key);
    if (found == sb.recordings.end()) {
        // The first run is direct: it creates the GEMM plans and fills the memory caches, so that
        // the recording (from the second run on) holds no first-use work.
        if (sb.ran_directly.insert(key).second) return false;
        std::unique_ptr<Backend::Recording> rec;
        be.begin_recording();
        bool recorded = true;
        try {
            forward(sb, sb.images, true, sb.drop_used, precision);
            backward(sb, precision);
        } catch (...) {
            recorded = false;
        }
        rec = be.end_recording();  // ends the capture either way
        if (!recorded) rec.reset();  // what a failed pass recorded is dropped
        found = sb.recordings.emplace(key, std::move(rec)).first;
    }
    if (!found->second) return false;  // recording failed for this key: run directly
    // The recording reads the images from sb.images: the caller's buffer may differ every step.
    const int64_t image_floats = sb.B * dims_.chans * dims_.img * dims_.img;
    be.copy_on_device(sb.images, images, static_cast<size_t>(image_floats) * sizeof(float));
    found->second->replay();
    return true;
}

StepOutput Model::step(const float* images, const uint8_t* mask, int64_t B, const StepOptions& o) {
    Backend& be = backend();
    const int64_t N = dims_.N;
    int64_t Nm = 0;
    for (int64_t n = 0; n < N; ++n) Nm += mask[n] ? 1 : 0;
    StepBuffers& sb = step_buffers(B, Nm);
    StepOutput out;

    auto t0 = Clock::now();
    if (o.precision == GemmPrecision::BF16) refresh_bf16_params();
    upload_indices(sb, mask);
    sb.drop_used = o.drop_path && dims_.drop_path > 0;
    if (sb.drop_used) upload_drop_scales(sb, o.seed, o.adam.step, o.batch_offset);
    float scalars[3];
    if (forward_backward_recorded(sb, images, o.precision)) {
        be.copy_to_host(scalars, sb.scalars, sizeof(scalars));
        out.replayed = true;
        out.forward_ms = ms_since(t0);
    } else {
        forward(sb, images, true, sb.drop_used, o.precision);
        be.synchronize();
        out.forward_ms = ms_since(t0);
        auto t1 = Clock::now();
        backward(sb, o.precision);
        be.copy_to_host(scalars, sb.scalars, sizeof(scalars));
        out.backward_ms = ms_since(t1);
    }
    if (comm_ && comm_->size() > 1) {
        auto tc = Clock::now();
        average_over_ranks(sb, scalars);
        out.reduce_ms = ms_since(tc);
    }
    out.loss_main = scalars[0];
    out.loss_align = scalars[1];
    out.grad_norm = scalars[2];

    const float loss = out.loss_main + dims_.align_weight * out.loss_align;
    out.skipped = !std::isfinite(loss) || !std::isfinite(out.grad_norm);
    if (o.update && !out.skipped) {
        auto t2 = Clock::now();
        if (segments_decay_ != o.weight_decay) {
            segments_ = table_.adamw_segments(o.weight_decay);
            segments_decay_ = o.weight_decay;
        }
        // A BF16 step keeps the bf16 copy current in the same pass; an FP32 step leaves it stale.
        const bool bf16 = o.precision == GemmPrecision::BF16;
        be.adamw(params_, grads_, exp_avg_, exp_avg_sq_, segments_.data(), static_cast<int64_t>(segments_.size()),
                 o.adam, sb.scalars + 2, bf16 ? params_bf16_ : nullptr);
        params_bf16_current_ = bf16 && params_bf16_current_;
        be.synchronize();
        out.optimizer_ms = ms_since(t2);
    }
    return out;
}

void Model::set_comm(std::shared_ptr<Communicator> comm) {
    device_comm_.reset();
    comm_ = std::move(comm);
    if (!comm_ || comm_->size() == 1) {
        reduction_ = "none: one process";
        return;
    }
    Backend& be = backend();
    if (be.kind() == BackendKind::CPU) {
        reduction_ = cat("MPI on host memory (", comm_->library(), ")");
        return;
    }
    std::string why_not;
    device_comm_ = be.make_device_communicator(*comm_, &why_not);
    reduction_ = device_comm_ != nullptr
                     ? cat(device_comm_->library(), " on device memory")
                     : cat("MPI through host memory (", comm_->library(), "); no device sums: ", why_not);
}

void Model::average_over_ranks(StepBuffers& sb, float* scalars) {
    Backend& be = backend();
    const int64_t n = table_.total();
    if (device_comm_ != nullptr) {
        // Queued behind the backward on the backend's stream; the norm below waits for it.
        device_comm_->allreduce_mean(grads_, n);
    } else {
        // One sum over the whole gradient array: host memory in place, device memory through a host copy.
        const float inv = 1.0f / static_cast<float>(comm_->size());
        be.synchronize();
        float* host = grads_;
        if (be.kind() != BackendKind::CPU) {
            comm_staging_.resize(static_cast<size_t>(n));
            be.copy_to_host(comm_staging_.data(), grads_, static_cast<size_t>(n) * sizeof(float));
            host = comm_staging_.data();
        }
        comm_->allreduce_sum(host, n);
        for (int64_t i = 0; i < n; ++i) host[i] *= inv;
        if (host != grads_) be.copy_to_device(grads_, host, static_cast<size_t>(n) * sizeof(float));
    }
    double losses[2] = {scalars[0], scalars[1]};
    comm_->allreduce_sum(losses, 2);
    scalars[0] = static_cast<float>(losses[0] / comm_->size());
    scalars[1] = static_cast<float>(losses[1] / comm_->size());
    // The norm that clips the update is the averaged gradients' (AdamW reads it from sb.scalars).
    be.l2_norm(sb.scalars + 2, grads_, n);
    be.copy_to_host(scalars + 2, sb.scalars + 2, sizeof(float));
}

void Model::encode(const float* images, int64_t B, float* cls, float* mean) {
    Backend& be = backend();
    const ModelDims& d = dims_;
    const int64_t D = d.D, N = d.N, T = 1 + N;
    if (!encode_ || encode_->B != B) {
        encode_.reset();
        encode_ = std::make_unique<EncodeBuffers>(be, d, B);
    }
    EncodeBuffers& eb = *encode_;
    const Weights w{table_, params_, nullptr};
    be.patchify(eb.patches, images, B, d.chans, d.img, d.img, d.patch, PatchOrder::ChannelsFirst);
    linear_forward(be, eb.emb, eb.patches, w.wt(table_.patch_w), w.p(table_.patch_b), B * N, d.patch_dim, D);
    encode_tokens(eb.emb, eb.idx_all, B, N, nullptr, eb.stream0, eb.stream1, eb.acts, eb.sc, eb.out, eb.mean, eb.rstd,
                  GemmPrecision::FP32);
    if (cls != nullptr) be.copy_rows(cls, D, eb.out, T * D, B, D);
    if (mean != nullptr) {
        // mean[b] = (1/N) * ones[1, N] x out[b, 1:, :]
        GemmArgs g = gemm_product(false, false, 1, D, N, 1.0f / static_cast<float>(N), eb.ones, N, eb.out + D, D, 0.0f,
                                  mean, D);
        g.stride_b = T * D;  // one ones row (stride_a 0) for every image
        g.stride_c = D;
        g.batch = B;
        be.gemm(g);
    }
    be.synchronize();
}

void Model::predict(const float* images, const uint8_t* mask, int64_t B, float* pred) {
    const int64_t N = dims_.N;
    int64_t Nm = 0;
    for (int64_t n = 0; n < N; ++n) Nm += mask[n] ? 1 : 0;
    StepBuffers& sb = step_buffers(B, Nm);
    upload_indices(sb, mask);
    sb.drop_used = false;
    forward(sb, images, false, false, GemmPrecision::FP32);
    backend().copy_on_device(pred, sb.pred, static_cast<size_t>(B * Nm * dims_.patch_dim) * sizeof(float));
    backend().synchronize();
}

}  // namespace cae
