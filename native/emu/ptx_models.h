// Models of the two PTX instructions our kernels use inline, as plain host functions, written from
// the PTX ISA: cvt.rna.tf32.f32 and mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 (section
// "Matrix Fragments for mma.m16n8k8", .tf32). The emulator runs them (models.cpp), and
// native/tests/test_ptx_models.cu compares them with the real instructions on a GPU.
#pragma once

#include <cstdint>
#include <cstring>

namespace cae_emu::ptx {

// Round to nearest, ties away from zero, to 10 mantissa bits; the result is an f32 bit pattern
// with the low 13 bits zero. NaN gives the canonical NaN 0x7fffffff; inf stays inf; a carry may
// reach the exponent (up to inf).
inline uint32_t cvt_rna_tf32(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof(u));
    const uint32_t sign = u & 0x80000000u, mag = u & 0x7fffffffu;
    if (mag > 0x7f800000u) return 0x7fffffffu;
    if (mag == 0x7f800000u) return u;
    return sign | ((mag + 0x1000u) & 0xffffe000u);
}

// The value a tf32 operand register holds: its upper 19 bits (the low 13 are not read).
inline float tf32_operand(uint32_t bits) {
    bits &= 0xffffe000u;
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
}

// The fragments of one warp: lane l holds a[l][0..3], b[l][0..1], c[l][0..3] and receives d[l][0..3]:
//   a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4)   of A (16 x 8, row-major)
//   b0 (t, g), b1 (t+4, g)                               of B (8 x 8, k x n)
//   c0/d0 (g, 2t), c1/d1 (g, 2t+1), c2/d2 (g+8, 2t), c3/d3 (g+8, 2t+1)   of C, D (16 x 8)
// with g = l / 4, t = l % 4. Products of tf32 values are exact in fp32; each sum of eight products
// and c is rounded once to fp32 (the hardware's internal order and width are not specified; the
// GPU check measures how far it is from this).
inline void mma_m16n8k8_tf32(const uint32_t (*a)[4], const uint32_t (*b)[2], const float (*c)[4], float (*d)[4]) {
    double A[16][8], B[8][8], C[16][8];
    for (int l = 0; l < 32; ++l) {
        const int g = l / 4, t = l % 4;
        A[g][t] = tf32_operand(a[l][0]);
        A[g + 8][t] = tf32_operand(a[l][1]);
        A[g][t + 4] = tf32_operand(a[l][2]);
        A[g + 8][t + 4] = tf32_operand(a[l][3]);
        B[t][g] = tf32_operand(b[l][0]);
        B[t + 4][g] = tf32_operand(b[l][1]);
        C[g][2 * t] = c[l][0];
        C[g][2 * t + 1] = c[l][1];
        C[g + 8][2 * t] = c[l][2];
        C[g + 8][2 * t + 1] = c[l][3];
    }
    for (int l = 0; l < 32; ++l) {
        const int g = l / 4, t = l % 4;
        const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
        for (int e = 0; e < 4; ++e) {
            double s = C[rows[e]][cols[e]];
            for (int k = 0; k < 8; ++k) s += A[rows[e]][k] * B[k][cols[e]];
            d[l][e] = static_cast<float>(s);
        }
    }
}

}  // namespace cae_emu::ptx
