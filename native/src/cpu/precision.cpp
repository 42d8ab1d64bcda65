// bf16 rounding (the mirror of src/cuda/precision.cu; the CPU's bf16 GEMM operands are rounded in
// cpu_backend.cpp's gemm).
#include "cpu/cpu_backend.h"

namespace cae::cpu {

void CpuBackend::round_to_bf16(uint16_t* dst, const float* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = float_to_bf16(src[i]);
}

}  // namespace cae::cpu
