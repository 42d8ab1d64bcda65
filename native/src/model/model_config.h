// A validated model configuration and the sizes derived from it.
#pragma once

#include <cstdint>

#include "cae/cae.h"

namespace cae {

struct ModelDims {
    int64_t img = 0, patch = 0, chans = 0;
    int64_t grid = 0;        // patches per side
    int64_t N = 0;           // patches per image
    int64_t patch_dim = 0;   // chans * patch * patch: the patch-embedding input and pixel target
    int64_t D = 0;           // width of every stack
    int64_t depth = 0, heads = 0, mlp = 0;
    int64_t reg_depth = 0, dec_depth = 0, dec_heads = 0;
    float ls_enc = 0, ls_dec = 0;
    float align_weight = 0, drop_path = 0, ln_eps = 0, pix_eps = 0;
};

// Checks every field; throws CAE_ERR_INVALID_ARGUMENT naming the first bad one.
ModelDims validate_config(const cae_model_config& c);

// The CAE-base defaults (ViT-B/16 at 224).
void default_config(cae_model_config* c);

}  // namespace cae
