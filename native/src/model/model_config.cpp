#include "model/model_config.h"

#include <cmath>
#include <cstring>

#include "common/error.h"

namespace cae {

void default_config(cae_model_config* c) {
    std::memset(c, 0, sizeof(*c));
    c->img_size = 224;
    c->patch_size = 16;
    c->in_chans = 3;
    c->embed_dim = 768;
    c->depth = 12;
    c->num_heads = 12;
    c->mlp_ratio = 4.0f;
    c->regressor_depth = 4;
    c->decoder_depth = 4;
    c->decoder_num_heads = 12;
    c->decoder_embed_dim = 768;
    c->layer_scale_init_value = 0.1f;
    c->decoder_layer_scale_init_value = 0.1f;
    c->align_loss_weight = 2.0f;
    c->drop_path_rate = 0.1f;
    c->layer_norm_eps = 1e-6f;
    c->norm_pix_eps = 1e-6f;
    c->target = CAE_TARGET_PIXEL_NORM;
}

ModelDims validate_config(const cae_model_config& c) {
    auto positive = [](const char* name, int64_t v, int64_t max) {
        CAE_REQUIRE(v >= 1 && v <= max, "config.", name, " is ", v, ", expected 1 to ", max);
    };
    positive("img_size", c.img_size, 8192);
    positive("patch_size", c.patch_size, 1024);
    positive("in_chans", c.in_chans, 64);
    positive("embed_dim", c.embed_dim, 16384);
    positive("depth", c.depth, 256);
    positive("num_heads", c.num_heads, 1024);
    positive("regressor_depth", c.regressor_depth, 256);
    CAE_REQUIRE(c.decoder_depth >= 0 && c.decoder_depth <= 256, "config.decoder_depth is ", c.decoder_depth,
                ", expected 0 to 256");
    positive("decoder_num_heads", c.decoder_num_heads, 1024);
    CAE_REQUIRE(c.img_size % c.patch_size == 0, "config.patch_size ", c.patch_size,
                " does not divide config.img_size ", c.img_size);
    CAE_REQUIRE(c.embed_dim % 4 == 0, "config.embed_dim ", c.embed_dim,
                " is not a multiple of 4 (the 2-D sin-cos position embedding needs it)");
    CAE_REQUIRE(c.embed_dim % c.num_heads == 0, "config.num_heads ", c.num_heads,
                " does not divide config.embed_dim ", c.embed_dim);
    CAE_REQUIRE(c.decoder_embed_dim == c.embed_dim, "config.decoder_embed_dim ", c.decoder_embed_dim,
                " differs from config.embed_dim ", c.embed_dim,
                ": a projection between encoder and regressor is not supported");
    CAE_REQUIRE(c.embed_dim % c.decoder_num_heads == 0, "config.decoder_num_heads ", c.decoder_num_heads,
                " does not divide the decoder width ", c.embed_dim);
    CAE_REQUIRE(std::isfinite(c.mlp_ratio) && c.mlp_ratio > 0 && c.mlp_ratio <= 64, "config.mlp_ratio is ",
                c.mlp_ratio, ", expected (0, 64]");
    CAE_REQUIRE(std::isfinite(c.layer_scale_init_value) && c.layer_scale_init_value >= 0,
                "config.layer_scale_init_value is ", c.layer_scale_init_value, ", expected >= 0");
    CAE_REQUIRE(std::isfinite(c.decoder_layer_scale_init_value) && c.decoder_layer_scale_init_value >= 0,
                "config.decoder_layer_scale_init_value is ", c.decoder_layer_scale_init_value, ", expected >= 0");
    CAE_REQUIRE(std::isfinite(c.align_loss_weight) && c.align_loss_weight >= 0, "config.align_loss_weight is ",
                c.align_loss_weight, ", expected >= 0");
    CAE_REQUIRE(std::isfinite(c.drop_path_rate) && c.drop_path_rate >= 0 && c.drop_path_rate < 1,
                "config.drop_path_rate is ", c.drop_path_rate, ", expected [0, 1)");
    CAE_REQUIRE(std::isfinite(c.layer_norm_eps) && c.layer_norm_eps > 0, "config.layer_norm_eps is ",
                c.layer_norm_eps, ", expected > 0");
    CAE_REQUIRE(std::isfinite(c.norm_pix_eps) && c.norm_pix_eps > 0, "config.norm_pix_eps is ", c.norm_pix_eps,
                ", expected > 0");
    CAE_REQUIRE(c.target == CAE_TARGET_PIXEL_NORM, "config.target is ", c.target,
                ", expected CAE_TARGET_PIXEL_NORM (0)");
    CAE_REQUIRE(c.reserved == 0, "config.reserved is ", c.reserved,
                ", expected 0 (initialize the config with cae_model_config_init)");

    ModelDims d;
    d.img = c.img_size;
    d.patch = c.patch_size;
    d.chans = c.in_chans;
    d.grid = c.img_size / c.patch_size;
    d.N = d.grid * d.grid;
    CAE_REQUIRE(d.N >= 2, "config: a ", c.img_size, "x", c.img_size, " image with patch size ", c.patch_size,
                " has ", d.N, " patch(es); masking needs at least 2");
    d.patch_dim = d.chans * d.patch * d.patch;
    d.D = c.embed_dim;
    d.depth = c.depth;
    d.heads = c.num_heads;
    d.mlp = static_cast<int64_t>(static_cast<double>(c.embed_dim) * c.mlp_ratio);
    CAE_REQUIRE(d.mlp >= 1, "config: mlp_ratio ", c.mlp_ratio, " gives an empty MLP");
    d.reg_depth = c.regressor_depth;
    d.dec_depth = c.decoder_depth;
    d.dec_heads = c.decoder_num_heads;
    d.ls_enc = c.layer_scale_init_value;
    d.ls_dec = c.decoder_layer_scale_init_value;
    d.align_weight = c.align_loss_weight;
    d.drop_path = c.drop_path_rate;
    d.ln_eps = c.layer_norm_eps;
    d.pix_eps = c.norm_pix_eps;
    return d;
}

}  // namespace cae
