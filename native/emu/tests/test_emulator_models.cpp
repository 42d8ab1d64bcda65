// The emulator's models of inline PTX (models.cpp) against the PTX ISA: cvt.rna.tf32.f32 against
// an independent reference and hand-worked cases, mma.m16n8k8 tf32 through a real emulated kernel
// against a double reference.
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <random>

#include "harness.h"
#include "kernels.h"
#include "mma_tile.h"

using namespace emu_test;

namespace {

// cvt.rna.tf32.f32 from its definition, in double: the multiple of the tf32 spacing at x's binade
// (2^(e-10) for 2^e <= |x| < 2^(e+1); denormals share the spacing of the smallest binade, 2^-136)
// nearest to |x|, ties away from zero; beyond FLT_MAX the result is inf.
uint32_t reference_tf32(uint32_t bits) {
    const float x = float_of(bits);
    if (std::isnan(x)) return 0x7fffffffu;
    if (std::isinf(x) || x == 0.0f) return bits;
    const double a = std::fabs(static_cast<double>(x));
    int e;
    std::frexp(a, &e);  // a = m 2^e with m in [0.5, 1): the binade is 2^(e-1)
    const double spacing = std::ldexp(1.0, std::max(e - 1, -126) - 10);
    const double q = a / spacing;  // exact: a power-of-two scaling
    double r = std::floor(q);
    if (q - r >= 0.5) r += 1.0;
    const double v = r * spacing;  // at most 11 significant bits: exact as a float unless too large
    const float f = v > static_cast<double>(FLT_MAX) ? INFINITY : static_cast<float>(v);
    return bits_of(std::signbit(x) ? -f : f);
}

void cvt_rna_tf32_cases(const std::vector<std::string>&) {
    struct Case {
        uint32_t in, out;
        const char* what;
    };
    const Case cases[] = {
        {0x3f800000u, 0x3f800000u, "1.0 is a tf32 value"},
        {0x3f801000u, 0x3f802000u, "tie 1 + 2^-11 rounds away (to even would give 1.0)"},
        {0xbf801000u, 0xbf802000u, "negative tie rounds away from zero"},
        {0x3f803000u, 0x3f804000u, "tie above an odd kept mantissa"},
        {0x3f800fffu, 0x3f800000u, "just below a tie rounds down"},
        {0x3f801001u, 0x3f802000u, "just above a tie rounds up"},
        {0xbf800fffu, 0xbf800000u, "negative, just below a tie"},
        {0x3fffffffu, 0x40000000u, "carry into the exponent (just below 2)"},
        {0x3ffff000u, 0x40000000u, "tie at the top of a binade carries into the exponent"},
        {0xbffff000u, 0xc0000000u, "negative tie at the top of a binade"},
        {0x3fffefffu, 0x3fffe000u, "just below the top tie stays in the binade"},
        {0x7f7fffffu, 0x7f800000u, "FLT_MAX rounds to inf"},
        {0xff7fffffu, 0xff800000u, "-FLT_MAX rounds to -inf"},
        {0x7f7fefffu, 0x7f7fe000u, "the largest value that does not overflow"},
        {0x7f7ff000u, 0x7f800000u, "the overflowing tie"},
        {0x7f800000u, 0x7f800000u, "inf"},
        {0xff800000u, 0xff800000u, "-inf"},
        {0x7fc00000u, 0x7fffffffu, "quiet NaN gives the canonical NaN"},
        {0x7f800001u, 0x7fffffffu, "signalling NaN gives the canonical NaN"},
        {0xffc00001u, 0x7fffffffu, "negative NaN gives the canonical NaN"},
        {0x00000000u, 0x00000000u, "+0"},
        {0x80000000u, 0x80000000u, "-0"},
        {0x00000001u, 0x00000000u, "smallest denormal rounds to +0"},
        {0x80000001u, 0x80000000u, "negative smallest denormal rounds to -0"},
        {0x007fffffu, 0x00800000u, "largest denormal rounds up to the smallest normal"},
        {0x00001000u, 0x00002000u, "tie between denormals rounds away"},
        {0x80001000u, 0x80002000u, "negative tie between denormals"},
        {0x00000fffu, 0x00000000u, "denormal just below a tie"},
        {0x00003000u, 0x00004000u, "denormal tie above an odd kept mantissa"},
        {0x00001001u, 0x00002000u, "denormal just above a tie"},
        {0x00002000u, 0x00002000u, "smallest tf32 denormal is kept"},
    };
    for (const Case& c : cases) {
        const uint32_t got = cvt_rna_tf32_model(float_of(c.in)), ref = reference_tf32(c.in);
        check(got == c.out && ref == c.out, "%-62s 0x%08x -> model 0x%08x, reference 0x%08x, expected 0x%08x", c.what,
              c.in, got, ref, c.out);
    }
}

void cvt_rna_tf32_random(const std::vector<std::string>&) {
    std::mt19937 rng(20240611);
    // Uniform bit patterns (every class: NaN, inf, denormals, both signs), then patterns whose
    // dropped 13 bits sit at or next to the tie.
    const long uniform = 4000000, near_tie = 1000000;
    const uint32_t tie_tails[] = {0x0fffu, 0x1000u, 0x1001u, 0x0000u, 0x1fffu};
    long mismatches = 0, low_bits_set = 0;
    for (long i = 0; i < uniform + near_tie; ++i) {
        uint32_t in = rng();
        if (i >= uniform) in = (in & 0xffffe000u) | tie_tails[i % 5];
        const uint32_t got = cvt_rna_tf32_model(float_of(in)), ref = reference_tf32(in);
        low_bits_set += (got & 0x1fffu) != 0 && got != 0x7fffffffu;
        if (got != ref && mismatches++ < 5) std::printf("    0x%08x -> model 0x%08x, reference 0x%08x\n", in, got, ref);
    }
    check(mismatches == 0, "%ld uniform and %ld near-tie bit patterns: %ld mismatches with the reference (0 allowed)",
          uniform, near_tie, mismatches);
    check(low_bits_set == 0, "results other than NaN with any of the low 13 bits set: %ld (0 allowed)", low_bits_set);
}

void mma_m16n8k8(const std::vector<std::string>&) {
    std::mt19937 rng(7);
    const int tiles = 16;
    double worst_abs = 0, worst_ratio = 0;
    long changed_by_low_bits = 0;
    for (int n = 0; n < tiles; ++n) {
        const MmaTile t = random_mma_tile(rng);
        const std::vector<float> d = run_mma_tile(t, false);
        const MmaError e = mma_error(t, d);
        worst_abs = std::max(worst_abs, e.max_abs);
        worst_ratio = std::max(worst_ratio, e.max_ratio);
        // tf32 operands read only their upper 19 bits: garbage below must not change d.
        MmaTile dirty = t;
        for (float& v : dirty.a) v = float_of(bits_of(v) | (rng() & 0x1fffu));
        for (float& v : dirty.b) v = float_of(bits_of(v) | (rng() & 0x1fffu));
        const std::vector<float> dd = run_mma_tile(dirty, false);
        for (size_t i = 0; i < d.size(); ++i) changed_by_low_bits += bits_of(d[i]) != bits_of(dd[i]);
    }
    check(worst_ratio <= 1.0,
          "%d random tiles: max |d - ref| = %.3g, max |d - ref| / tol = %.3g (tol = 2^-23 (|c| + sum|ab|), <= 1 "
          "required)",
          tiles, worst_abs, worst_ratio);
    check(changed_by_low_bits == 0, "elements of d changed by random low 13 bits in a and b: %ld (0 allowed)",
          changed_by_low_bits);
}

}  // namespace

int main(int argc, char** argv) {
    return run_cases(argc, argv,
                     {
                         {"cvt_rna_tf32_cases", cvt_rna_tf32_cases},
                         {"cvt_rna_tf32_random", cvt_rna_tf32_random},
                         {"mma_m16n8k8", mma_m16n8k8},
                     });
}
