// A random batch for model tests through the C ABI: standard-normal images and a mask with
// the same number of masked patches per row at seeded random positions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "cae/cae.h"

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
