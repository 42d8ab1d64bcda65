// The emulator's side of the inline PTX in gemm_fallback.cu: cvt is a plain function, mma a
// warp-wide meeting point whose lanes' fragments meet in ptx_models.h's model.
#include <cstring>

#include "emu_internal.h"
#include "ptx_models.h"

namespace cae_emu {

namespace {

struct MmaIn {
    uint32_t a[4], b[2];
    float c[4];
};

void resolve_mma(const unsigned char (*in)[64], unsigned char (*out)[64], unsigned lanes) {
    uint32_t a[32][4], b[32][2];
    float c[32][4], d[32][4];
    for (int l = 0; l < 32; ++l) {
        MmaIn f;
        std::memcpy(&f, in[l], sizeof(f));
        std::memcpy(a[l], f.a, sizeof(f.a));
        std::memcpy(b[l], f.b, sizeof(f.b));
        std::memcpy(c[l], f.c, sizeof(f.c));
    }
    ptx::mma_m16n8k8_tf32(a, b, c, d);
    for (int l = 0; l < 32; ++l) std::memcpy(out[l], d[l], sizeof(d[l]));
    (void)lanes;  // a full mask: the meeting checked that all 32 lanes are here
}

}  // namespace

uint32_t cvt_rna_tf32(float x) { return ptx::cvt_rna_tf32(x); }

void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
    MmaIn in;
    std::memcpy(in.a, a, sizeof(in.a));
    std::memcpy(in.b, b, sizeof(in.b));
    std::memcpy(in.c, d, sizeof(in.c));
    warp_collective(0xffffffffu, resolve_mma, &in, sizeof(in), d, sizeof(d));
}

}  // namespace cae_emu
