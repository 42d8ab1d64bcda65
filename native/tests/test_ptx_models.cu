// The CUDA emulator's models of cvt.rna.tf32.f32 and mma.sync m16n8k8 tf32 (native/emu/ptx_models.h)
// against the real instructions, on random and edge-case inputs (NaN, inf, denormals, rounding
// ties, carries into the exponent), so that the model cannot share a misreading of the PTX ISA
// with the kernels it emulates. cvt must agree bitwise (NaN as NaN); each mma output within a
// small multiple of fp32 rounding of the sum of the magnitudes it adds. Prints "SKIPPED: ..." and
// exits 0 without a device.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../emu/ptx_models.h"

namespace {

__global__ void cvt_kernel(const float* in, uint32_t* out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(in[i]));
    out[i] = r;
}

// One warp per case: lane l's fragments at a[case][l][0..3], b[case][l][0..1], c[case][l][0..3].
__global__ void mma_kernel(const uint32_t* a, const uint32_t* b, const float* c, float* d) {
    const int cs = blockIdx.x, l = threadIdx.x;
    const uint32_t* al = a + (cs * 32 + l) * 4;
    const uint32_t* bl = b + (cs * 32 + l) * 2;
    float r[4];
    for (int e = 0; e < 4; ++e) r[e] = c[(cs * 32 + l) * 4 + e];
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(r[0]), "+f"(r[1]), "+f"(r[2]), "+f"(r[3])
        : "r"(al[0]), "r"(al[1]), "r"(al[2]), "r"(al[3]), "r"(bl[0]), "r"(bl[1]));
    for (int e = 0; e < 4; ++e) d[(cs * 32 + l) * 4 + e] = r[e];
}

#define CHECK(call)                                                                                  \
    do {                                                                                             \
        cudaError_t e_ = (call);                                                                     \
        if (e_ != cudaSuccess) {                                                                     \
            std::printf("FAIL %s: %s\n", #call, cudaGetErrorString(e_));                              \
            std::exit(1);                                                                            \
        }                                                                                            \
    } while (0)

float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof(f));
    return f;
}

int check_cvt(std::mt19937_64& rng) {
    std::vector<float> in;
    const uint32_t edges[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u,
                              0x7f800001u, 0x7f7fffffu, 0xff7fffffu, 0x00000001u, 0x80000001u, 0x007fffffu,
                              0x00001000u, 0x00000fffu, 0x00003000u, 0x00800000u, 0x3f801000u, 0xbf801000u,
                              0x3f800fffu, 0x3f803000u, 0x3fffefffu, 0x3ffff000u, 0x7f7ff000u, 0x4b7ff000u};
    for (uint32_t u : edges) in.push_back(from_bits(u));
    for (int i = 0; i < 1 << 20; ++i) in.push_back(from_bits(static_cast<uint32_t>(rng())));
    for (int i = 0; i < 1 << 16; ++i) in.push_back(from_bits((static_cast<uint32_t>(rng()) & 0xffffe000u) | 0x1000u));
    const int n = static_cast<int>(in.size());
    float* din;
    uint32_t* dout;
    CHECK(cudaMalloc(&din, n * sizeof(float)));
    CHECK(cudaMalloc(&dout, n * sizeof(uint32_t)));
    CHECK(cudaMemcpy(din, in.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    cvt_kernel<<<(n + 255) / 256, 256>>>(din, dout, n);
    CHECK(cudaGetLastError());
    std::vector<uint32_t> got(n);
    CHECK(cudaMemcpy(got.data(), dout, n * sizeof(uint32_t), cudaMemcpyDeviceToHost));
    cudaFree(din);
    cudaFree(dout);
    int bad = 0;
    for (int i = 0; i < n; ++i) {
        const uint32_t want = cae_emu::ptx::cvt_rna_tf32(in[i]);
        const bool both_nan = std::isnan(from_bits(want)) && std::isnan(from_bits(got[i]));
        if (got[i] != want && !both_nan) {
            if (bad < 10) {
                uint32_t u;
                std::memcpy(&u, &in[i], sizeof(u));
                std::printf("    cvt.rna.tf32 of 0x%08x: device 0x%08x, model 0x%08x\n", u, got[i], want);
            }
            ++bad;
        }
    }
    std::printf("    cvt.rna.tf32.f32: %d inputs (%zu edge cases), %d differ from the model %s\n", n,
                sizeof(edges) / sizeof(edges[0]), bad, bad ? "FAIL" : "ok");
    return bad;
}

int check_mma(std::mt19937_64& rng) {
    const int cases = 2048;
    std::vector<uint32_t> a(cases * 32 * 4), b(cases * 32 * 2);
    std::vector<float> c(cases * 32 * 4);
    std::normal_distribution<float> nd;
    for (int cs = 0; cs < cases; ++cs) {
        // Low mantissa bits set on purpose in half of the cases: the instruction must ignore them.
        const bool dirty = cs % 2 == 1;
        const float scale = cs % 7 == 0 ? 1e-30f : cs % 11 == 0 ? 1e20f : 1.0f;
        for (int i = 0; i < 32 * 4; ++i) {
            uint32_t u = cae_emu::ptx::cvt_rna_tf32(nd(rng) * scale);
            if (dirty) u |= static_cast<uint32_t>(rng()) & 0x1fffu;
            a[cs * 128 + i] = u;
        }
        for (int i = 0; i < 32 * 2; ++i) {
            uint32_t u = cae_emu::ptx::cvt_rna_tf32(nd(rng));
            if (dirty) u |= static_cast<uint32_t>(rng()) & 0x1fffu;
            b[cs * 64 + i] = u;
        }
        for (int i = 0; i < 32 * 4; ++i) c[cs * 128 + i] = nd(rng) * scale;
    }
    uint32_t *da, *db;
    float *dc, *dd;
    CHECK(cudaMalloc(&da, a.size() * 4));
    CHECK(cudaMalloc(&db, b.size() * 4));
    CHECK(cudaMalloc(&dc, c.size() * 4));
    CHECK(cudaMalloc(&dd, c.size() * 4));
    CHECK(cudaMemcpy(da, a.data(), a.size() * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(db, b.data(), b.size() * 4, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(dc, c.data(), c.size() * 4, cudaMemcpyHostToDevice));
    mma_kernel<<<cases, 32>>>(da, db, dc, dd);
    CHECK(cudaGetLastError());
    std::vector<float> got(c.size());
    CHECK(cudaMemcpy(got.data(), dd, got.size() * 4, cudaMemcpyDeviceToHost));
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
    cudaFree(dd);
    int bad = 0;
    double worst = 0.0;
    for (int cs = 0; cs < cases; ++cs) {
        float d[32][4];
        cae_emu::ptx::mma_m16n8k8_tf32(reinterpret_cast<const uint32_t(*)[4]>(&a[cs * 128]),
                                       reinterpret_cast<const uint32_t(*)[2]>(&b[cs * 64]),
                                       reinterpret_cast<const float(*)[4]>(&c[cs * 128]), d);
        // The scale of each output: the sum of the magnitudes of the terms it adds (its row of |A|
        // times its column of |B|, plus |c|), from the model with absolute values.
        uint32_t aa[32][4], ab[32][2];
        float ac[32][4], mag[32][4];
        for (int l = 0; l < 32; ++l) {
            for (int e = 0; e < 4; ++e) aa[l][e] = a[cs * 128 + l * 4 + e] & 0x7fffffffu;
            for (int e = 0; e < 2; ++e) ab[l][e] = b[cs * 64 + l * 2 + e] & 0x7fffffffu;
            for (int e = 0; e < 4; ++e) ac[l][e] = std::fabs(c[cs * 128 + l * 4 + e]);
        }
        cae_emu::ptx::mma_m16n8k8_tf32(aa, ab, ac, mag);
        for (int l = 0; l < 32; ++l)
            for (int e = 0; e < 4; ++e) {
                const double g = got[cs * 128 + l * 4 + e], w = d[l][e];
                const double err = std::fabs(g - w) / std::max(static_cast<double>(mag[l][e]), 1e-38);
                worst = std::max(worst, err);
                if (err > 4 * 6e-8) {  // a few fp32 roundings of the largest partial sum
                    if (bad < 10) std::printf("    mma case %d lane %d d%d: device %.9g, model %.9g\n", cs, l, e, g, w);
                    ++bad;
                }
            }
    }
    std::printf("    mma.sync m16n8k8 tf32: %d warps, worst |device - model| / sum|terms| %.3e (tol 2.4e-07), %d outside %s\n",
                cases, worst, bad, bad ? "FAIL" : "ok");
    return bad;
}

}  // namespace

int main() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        std::printf("SKIPPED: no CUDA device\n");
        return 0;
    }
    cudaDeviceProp p;
    CHECK(cudaGetDeviceProperties(&p, 0));
    std::printf("device: %s (sm_%d%d)\n", p.name, p.major, p.minor);
    std::mt19937_64 rng(2026);
    const int bad = check_cvt(rng) + check_mma(rng);
    std::printf("%s\n", bad ? "FAIL: the emulator's PTX models differ from the device" : "the emulator's PTX models match the device");
    return bad ? 1 : 0;
}
