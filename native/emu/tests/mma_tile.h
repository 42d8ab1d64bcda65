// One m16n8k8 tf32 tile through the emulated mma (kernels.cu) and its double reference.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace emu_test {

struct MmaTile {
    std::vector<float> a, b, c;  // 16x8, 8x8, 16x8, row-major; a and b hold tf32 values
};

struct MmaError {
    double max_abs;    // max |d - reference|
    double max_ratio;  // max |d - reference| / tolerance, tolerance = 2^-23 (|c| + sum |a b|)
};

// a and b uniform in [-2, 2) cut to tf32 (the low 13 bits cleared); c uniform in [-2, 2), all 24 bits.
MmaTile random_mma_tile(std::mt19937& rng);
// d = a * b + c computed by one warp of the emulator.
std::vector<float> run_mma_tile(const MmaTile& t, bool swap_a1_a2);
MmaError mma_error(const MmaTile& t, const std::vector<float>& d);

uint32_t bits_of(float x);
float float_of(uint32_t u);

}  // namespace emu_test
