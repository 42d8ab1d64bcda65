// Shared pieces of the model tests through the C ABI: a random batch (standard-normal images and a
// mask with the same number of masked patches per row at seeded random positions), a small
// configuration and a CPU model fixture.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cae/cae.h"
#include "harness.h"

struct ModelBatch {
    std::vector<float> images;
    std::vector<uint8_t> mask;
    cae_tensor img_t{}, mask_t{};
};

inline ModelBatch make_model_batch(const cae_model_config& c, int64_t B, int64_t masked, uint64_t seed) {
    ModelBatch b;
    const int64_t N = (c.img_size / c.patch_size) * (c.img_size / c.patch_size);
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal;
    b.images.resize(static_cast<size_t>(B * c.in_chans * c.img_size * c.img_size));
    for (float& x : b.images) x = normal(rng);
    b.mask.assign(static_cast<size_t>(B * N), 0);
    for (int64_t i = 0; i < B; ++i) {
        std::vector<int> perm(static_cast<size_t>(N));
        for (int64_t n = 0; n < N; ++n) perm[static_cast<size_t>(n)] = static_cast<int>(n);
        std::shuffle(perm.begin(), perm.end(), rng);
        for (int64_t k = 0; k < masked; ++k) b.mask[static_cast<size_t>(i * N + perm[static_cast<size_t>(k)])] = 1;
    }
    b.img_t.dtype = CAE_DTYPE_F32;
    b.img_t.ndim = 4;
    b.img_t.shape[0] = B;
    b.img_t.shape[1] = c.in_chans;
    b.img_t.shape[2] = b.img_t.shape[3] = c.img_size;
    b.img_t.host_data = b.images.data();
    b.mask_t.dtype = CAE_DTYPE_U8;
    b.mask_t.ndim = 2;
    b.mask_t.shape[0] = B;
    b.mask_t.shape[1] = N;
    b.mask_t.host_data = b.mask.data();
    return b;
}

// A small model of every kind of block (LayerScale, stochastic depth, two head counts).
inline cae_model_config tiny_config() {
    cae_model_config c;
    cae_model_config_init(&c);
    c.img_size = 12;
    c.patch_size = 3;
    c.in_chans = 2;
    c.embed_dim = 16;
    c.depth = 2;
    c.num_heads = 2;
    c.mlp_ratio = 2.0f;
    c.regressor_depth = 2;
    c.decoder_depth = 1;
    c.decoder_num_heads = 4;
    c.decoder_embed_dim = 16;
    c.layer_scale_init_value = 0.5f;
    c.decoder_layer_scale_init_value = 0.3f;
    c.drop_path_rate = 0.2f;
    return c;
}

// A context (CPU unless told) and a model in it, destroyed together.
struct Fixture {
    cae_context* ctx = nullptr;
    cae_model* model = nullptr;
    explicit Fixture(const cae_model_config& c, uint64_t seed = 7, int threads = 2,
                     cae_backend backend = CAE_BACKEND_CPU) {
        cae_context_options o;
        cae_context_options_init(&o);
        o.backend = backend;
        o.num_threads = threads;
        cae_context_create(&o, &ctx);
        cae_status s = cae_model_create(ctx, &c, seed, &model);
        if (s != CAE_OK) harness::fail(std::string("model create: ") + cae_last_error());
    }
    ~Fixture() {
        cae_model_destroy(model);
        cae_context_destroy(ctx);
    }
};
