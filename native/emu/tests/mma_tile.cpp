#include "mma_tile.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "harness.h"
#include "kernels.h"

namespace emu_test {

uint32_t bits_of(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof(u));
    return u;
}

float float_of(uint32_t u) {
    float x;
    std::memcpy(&x, &u, sizeof(x));
    return x;
}

MmaTile random_mma_tile(std::mt19937& rng) {
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    MmaTile t{std::vector<float>(16 * 8), std::vector<float>(8 * 8), std::vector<float>(16 * 8)};
    for (float& v : t.a) v = float_of(bits_of(u(rng)) & 0xffffe000u);
    for (float& v : t.b) v = float_of(bits_of(u(rng)) & 0xffffe000u);
    for (float& v : t.c) v = u(rng);
    return t;
}

std::vector<float> run_mma_tile(const MmaTile& t, bool swap_a1_a2) {
    float* a = device_floats(t.a.size());
    float* b = device_floats(t.b.size());
    float* c = device_floats(t.c.size());
    float* d = device_floats(t.c.size());
    to_device(a, t.a);
    to_device(b, t.b);
    to_device(c, t.c);
    launch_mma_tile(a, b, c, d, swap_a1_a2);
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) check_error(e, cudaSuccess, "mma_tile_kernel launch");
    std::vector<float> out = from_device(d, t.c.size());
    for (float* p : {a, b, c, d}) cudaFree(p);
    return out;
}

MmaError mma_error(const MmaTile& t, const std::vector<float>& d) {
    MmaError e{0.0, 0.0};
    for (int i = 0; i < 16; ++i) {
        for (int j = 0; j < 8; ++j) {
            // Products of tf32 values (22 significant bits) are exact in double; the sum's own
            // rounding (2^-53 relative) is far below the tolerance.
            double ref = t.c[i * 8 + j], mag = std::fabs(ref);
            for (int k = 0; k < 8; ++k) {
                const double p = double(t.a[i * 8 + k]) * double(t.b[k * 8 + j]);
                ref += p;
                mag += std::fabs(p);
            }
            const double err = std::fabs(double(d[i * 8 + j]) - ref);
            const double tol = std::ldexp(mag, -23);
            e.max_abs = std::max(e.max_abs, std::isnan(err) ? INFINITY : err);
            e.max_ratio = std::max(e.max_ratio, std::isnan(err) ? INFINITY : err / tol);
        }
    }
    return e;
}

}  // namespace emu_test
