#include "model/params.h"

#include <cmath>
#include <string>

#include "common/error.h"
#include "model/rng.h"

namespace cae {

namespace {

bool ends_with(const std::string& s, const char* suffix) {
    std::string x(suffix);
    return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

}  // namespace

int ParamTable::add(const std::string& name, std::vector<int64_t> shape, bool trainable) {
    ParamEntry e;
    e.name = name;
    e.numel = 1;
    for (int64_t s : shape) e.numel *= s;
    e.shape = std::move(shape);
    e.offset = total_;
    e.trainable = trainable;
    // The official rule: no decay for 1-D parameters and biases; cls and mask tokens decay.
    e.decayed = trainable && e.shape.size() > 1 && !ends_with(name, ".bias");
    // Keep every tensor 16-float aligned (64 bytes) in the flat array.
    total_ += (e.numel + 15) / 16 * 16;
    entries_.push_back(std::move(e));
    return static_cast<int>(entries_.size() - 1);
}

BlockParams ParamTable::add_block(const std::string& p, const ModelDims& d, bool layer_scale) {
    const int64_t D = d.D;
    BlockParams b;
    if (layer_scale) {
        b.gamma1 = add(p + "gamma_1", {D});
        b.gamma2 = add(p + "gamma_2", {D});
    }
    b.ln1_w = add(p + "norm1.weight", {D});
    b.ln1_b = add(p + "norm1.bias", {D});
    b.q_bias = add(p + "attn.q_bias", {D});
    b.v_bias = add(p + "attn.v_bias", {D});
    b.qkv_w = add(p + "attn.qkv.weight", {3 * D, D});
    b.proj_w = add(p + "attn.proj.weight", {D, D});
    b.proj_b = add(p + "attn.proj.bias", {D});
    b.ln2_w = add(p + "norm2.weight", {D});
    b.ln2_b = add(p + "norm2.bias", {D});
    b.fc1_w = add(p + "mlp.fc1.weight", {d.mlp, D});
    b.fc1_b = add(p + "mlp.fc1.bias", {d.mlp});
    b.fc2_w = add(p + "mlp.fc2.weight", {D, d.mlp});
    b.fc2_b = add(p + "mlp.fc2.bias", {D});
    return b;
}

ParamTable::ParamTable(const ModelDims& d) {
    const int64_t D = d.D;
    rd_pos = add("rd_pos_embed", {1, 1 + d.N, D}, false);
    mask_token = add("mask_token", {1, 1, D});

    cls_token = add("encoder.cls_token", {1, 1, D});
    pos_embed = add("encoder.pos_embed", {1, 1 + d.N, D}, false);
    patch_w = add("encoder.patch_embed.proj.weight", {D, d.chans, d.patch, d.patch});
    patch_b = add("encoder.patch_embed.proj.bias", {D});
    for (int64_t i = 0; i < d.depth; ++i) {
        encoder.push_back(add_block(cat("encoder.blocks.", i, "."), d, d.ls_enc > 0));
    }
    enc_norm_w = add("encoder.norm.weight", {D});
    enc_norm_b = add("encoder.norm.bias", {D});

    for (int64_t j = 0; j < d.reg_depth; ++j) {
        std::string p = cat("regresser.regressor_blocks.", j, ".");
        RegressorParams r;
        bool gammas_train = d.ls_dec > 0;
        r.gamma1 = add(p + "gamma_1_cross", {D}, gammas_train);
        r.gamma2 = add(p + "gamma_2_cross", {D}, gammas_train);
        r.lnq_w = add(p + "norm1_q.weight", {D});
        r.lnq_b = add(p + "norm1_q.bias", {D});
        r.lnk_w = add(p + "norm1_k.weight", {D});
        r.lnk_b = add(p + "norm1_k.bias", {D});
        r.lnv_w = add(p + "norm1_v.weight", {D});
        r.lnv_b = add(p + "norm1_v.bias", {D});
        r.q_bias = add(p + "cross_attn.q_bias", {D});
        r.v_bias = add(p + "cross_attn.v_bias", {D});
        r.q_w = add(p + "cross_attn.q.weight", {D, D});
        r.k_w = add(p + "cross_attn.k.weight", {D, D});
        r.v_w = add(p + "cross_attn.v.weight", {D, D});
        r.proj_w = add(p + "cross_attn.proj.weight", {D, D});
        r.proj_b = add(p + "cross_attn.proj.bias", {D});
        r.ln2_w = add(p + "norm2_cross.weight", {D});
        r.ln2_b = add(p + "norm2_cross.bias", {D});
        r.fc1_w = add(p + "mlp_cross.fc1.weight", {d.mlp, D});
        r.fc1_b = add(p + "mlp_cross.fc1.bias", {d.mlp});
        r.fc2_w = add(p + "mlp_cross.fc2.weight", {D, d.mlp});
        r.fc2_b = add(p + "mlp_cross.fc2.bias", {D});
        regressor.push_back(r);
    }
    reg_norm_w = add("regresser.norm.weight", {D});
    reg_norm_b = add("regresser.norm.bias", {D});

    for (int64_t k = 0; k < d.dec_depth; ++k) {
        decoder.push_back(add_block(cat("decoder.decoder_blocks.", k, "."), d, d.ls_dec > 0));
    }
    dec_norm_w = add("decoder.norm.weight", {D});
    dec_norm_b = add("decoder.norm.bias", {D});
    head_w = add("decoder.head.weight", {d.patch_dim, D});
    head_b = add("decoder.head.bias", {d.patch_dim});
}

int ParamTable::find(const std::string& name) const {
    for (size_t i = 0; i < entries_.size(); ++i) {
        if (entries_[i].name == name) return static_cast<int>(i);
    }
    return -1;
}

std::vector<AdamWSegment> ParamTable::adamw_segments(double weight_decay) const {
    std::vector<AdamWSegment> segs;
    for (const ParamEntry& e : entries_) {
        if (!e.trainable) continue;
        double wd = e.decayed ? weight_decay : 0.0;
        if (!segs.empty() && segs.back().weight_decay == wd &&
            segs.back().offset + segs.back().count == e.offset) {
            segs.back().count = e.offset + e.numel - segs.back().offset;  // merge with the previous run
        } else {
            segs.push_back({e.offset, e.numel, wd});
        }
    }
    return segs;
}

void sincos_position_embedding(int64_t grid, int64_t D, float* out) {
    // pe[m] = [sin(r w), cos(r w), sin(c w), cos(c w)], w_k = 1 / 10000^(k / P), P = D / 4,
    // with r = m / grid (row) and c = m % grid (column); row 0 (cls) is zero.
    const int64_t P = D / 4;
    for (int64_t j = 0; j < D; ++j) out[j] = 0.0f;
    for (int64_t m = 0; m < grid * grid; ++m) {
        float* row = out + (1 + m) * D;
        const double r = static_cast<double>(m / grid), c = static_cast<double>(m % grid);
        for (int64_t k = 0; k < P; ++k) {
            // float32 arithmetic as in the official code (torch.arange(..., dtype=float32))
            float omega = static_cast<float>(k) / static_cast<float>(P);
            omega = 1.0f / std::pow(10000.0f, omega);
            const float rw = static_cast<float>(r) * omega, cw = static_cast<float>(c) * omega;
            row[k] = std::sin(rw);
            row[P + k] = std::cos(rw);
            row[2 * P + k] = std::sin(cw);
            row[3 * P + k] = std::cos(cw);
        }
    }
}

void initialize_params(const ParamTable& t, const ModelDims& d, uint64_t seed, float* host) {
    for (size_t i = 0; i < t.entries().size(); ++i) {
        const ParamEntry& e = t.entries()[i];
        float* p = host + e.offset;
        Rng rng(seed, 0x1A17, i);  // one stream per parameter: independent of table changes elsewhere
        const std::string& n = e.name;
        const int idx = static_cast<int>(i);
        if (idx == t.rd_pos || idx == t.pos_embed) {
            sincos_position_embedding(d.grid, d.D, p);
        } else if (idx == t.patch_w || idx == t.cls_token || idx == t.mask_token) {
            // trunc_normal(std 0.02) truncated at +-1 std, as the official wrapper calls it
            for (int64_t k = 0; k < e.numel; ++k) p[k] = static_cast<float>(rng.truncated_normal(0.02, -0.02, 0.02));
        } else if (ends_with(n, ".weight") && e.shape.size() == 2) {
            // every nn.Linear: xavier_uniform, bound sqrt(6 / (fan_in + fan_out))
            const double bound = std::sqrt(6.0 / static_cast<double>(e.shape[0] + e.shape[1]));
            for (int64_t k = 0; k < e.numel; ++k) p[k] = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
        } else if (ends_with(n, "gamma_1") || ends_with(n, "gamma_2")) {
            const float v = n.rfind("encoder.", 0) == 0 ? d.ls_enc : d.ls_dec;
            for (int64_t k = 0; k < e.numel; ++k) p[k] = v;
        } else if (ends_with(n, "gamma_1_cross") || ends_with(n, "gamma_2_cross")) {
            const float v = d.ls_dec > 0 ? d.ls_dec : 1.0f;
            for (int64_t k = 0; k < e.numel; ++k) p[k] = v;
        } else if (ends_with(n, "norm.weight") || ends_with(n, "norm1.weight") || ends_with(n, "norm2.weight") ||
                   ends_with(n, "norm1_q.weight") || ends_with(n, "norm1_k.weight") ||
                   ends_with(n, "norm1_v.weight") || ends_with(n, "norm2_cross.weight")) {
            for (int64_t k = 0; k < e.numel; ++k) p[k] = 1.0f;
        } else {
            for (int64_t k = 0; k < e.numel; ++k) p[k] = 0.0f;  // biases, q_bias, v_bias
        }
    }
}

}  // namespace cae
