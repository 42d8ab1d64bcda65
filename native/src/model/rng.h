// Deterministic random numbers derived from (seed, stream ids): the same draws on every
// platform and backend, so runs replay exactly and CPU and CUDA make the same choices.
#pragma once

#include <cmath>
#include <cstdint>

namespace cae {

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// A stream of 64-bit values keyed by a seed and up to three ids.
class Rng {
public:
    explicit Rng(uint64_t seed, uint64_t a = 0, uint64_t b = 0, uint64_t c = 0)
        : state_(splitmix64(splitmix64(splitmix64(seed ^ 0x5CAE5CAE5CAE5CAEull) ^ a) ^ b) ^ c) {}

    uint64_t next() {
        state_ += 0x9E3779B97F4A7C15ull;
        return splitmix64(state_);
    }

    // Uniform in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    // Standard normal (Box-Muller).
    double normal() {
        double u1 = uniform(), u2 = uniform();
        if (u1 < 1e-300) u1 = 1e-300;
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
    }

    // Normal(0, std) truncated to [lo, hi] by rejection (as torch.nn.init.trunc_normal_).
    double truncated_normal(double std, double lo, double hi) {
        for (;;) {
            double x = std * normal();
            if (x >= lo && x <= hi) return x;
        }
    }

private:
    uint64_t state_;
};

}  // namespace cae
