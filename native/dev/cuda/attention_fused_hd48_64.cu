// The fused attention kernels for head dims 48 and 64 (see attention_fused_kernels.cuh).
#define CAE_FUSED_ATTENTION_DEFINE_KERNELS
#include "attention_fused_kernels.cuh"

namespace cae::cuda::fused_kernels {

CAE_FUSED_ATTENTION_KERNELS(48);
CAE_FUSED_ATTENTION_KERNELS(64);

}  // namespace cae::cuda::fused_kernels
