// The fused attention kernels for head dims 16 and 32 (see attention_fused_kernels.cuh).
#define CAE_FUSED_ATTENTION_DEFINE_KERNELS
#include "attention_fused_kernels.cuh"

namespace cae::cuda::fused_kernels {

CAE_FUSED_ATTENTION_KERNELS(16);
CAE_FUSED_ATTENTION_KERNELS(32);

}  // namespace cae::cuda::fused_kernels
