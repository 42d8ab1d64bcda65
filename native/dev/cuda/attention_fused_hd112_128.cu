// The fused attention kernels for head dims 112 and 128 (see attention_fused_kernels.cuh).
#define CAE_FUSED_ATTENTION_DEFINE_KERNELS
#include "attention_fused_kernels.cuh"

namespace cae::cuda::fused_kernels {

CAE_FUSED_ATTENTION_KERNELS(112);
CAE_FUSED_ATTENTION_KERNELS(128);

}  // namespace cae::cuda::fused_kernels
