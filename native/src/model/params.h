// The parameter table: every parameter of the CAE model under its official name and shape,
// as a view into one flat array (the same layout serves gradients and AdamW moments).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model_config.h"

namespace cae {

struct ParamEntry {
    std::string name;
    std::vector<int64_t> shape;
    int64_t offset = 0;  // in floats, into the flat array
    int64_t numel = 0;
    bool trainable = true;
    bool decayed = false;  // AdamW weight decay applies (>= 2-D and not a bias)
};

// Indices into the table for one pre-norm transformer block (encoder and decoder).
struct BlockParams {
    int gamma1 = -1, gamma2 = -1;  // -1 without LayerScale
    int ln1_w, ln1_b, q_bias, v_bias, qkv_w, proj_w, proj_b, ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;
};

// Indices for one cross-attention regressor block.
struct RegressorParams {
    int gamma1, gamma2;  // always present; frozen ones when the init value is 0
    int lnq_w, lnq_b, lnk_w, lnk_b, lnv_w, lnv_b;
    int q_bias, v_bias, q_w, k_w, v_w, proj_w, proj_b;
    int ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;
};

class ParamTable {
public:
    explicit ParamTable(const ModelDims& d);

    const std::vector<ParamEntry>& entries() const { return entries_; }
    const ParamEntry& operator[](int i) const { return entries_[static_cast<size_t>(i)]; }
    int64_t total() const { return total_; }
    int find(const std::string& name) const;  // -1 when absent

    // AdamW segments: runs of trainable parameters with their weight decay.
    std::vector<AdamWSegment> adamw_segments(double weight_decay) const;

    int rd_pos, mask_token, cls_token, pos_embed, patch_w, patch_b;
    std::vector<BlockParams> encoder;
    int enc_norm_w, enc_norm_b;
    std::vector<RegressorParams> regressor;
    int reg_norm_w, reg_norm_b;
    std::vector<BlockParams> decoder;
    int dec_norm_w, dec_norm_b, head_w, head_b;

private:
    int add(const std::string& name, std::vector<int64_t> shape, bool trainable = true);
    BlockParams add_block(const std::string& prefix, const ModelDims& d, bool layer_scale);

    std::vector<ParamEntry> entries_;
    int64_t total_ = 0;
};

// Writes the official initialization into `host` (total() floats): xavier-uniform Linear weights,
// truncated-normal patch embedding and tokens, fixed 2-D sin-cos position embeddings.
void initialize_params(const ParamTable& t, const ModelDims& d, uint64_t seed, float* host);

// The fixed 2-D sin-cos embedding [1 + grid^2, D] with a zero row for cls (official layout).
void sincos_position_embedding(int64_t grid, int64_t D, float* out);

}  // namespace cae
