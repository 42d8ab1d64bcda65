// The fused attention kernels for head dims 80 and 96 (see attention_fused_kernels.cuh).
#define CAE_FUSED_ATTENTION_DEFINE_KERNELS
#include "attention_fused_kernels.cuh"

namespace cae::cuda::fused_kernels {

CAE_FUSED_ATTENTION_KERNELS(80);
CAE_FUSED_ATTENTION_KERNELS(96);

}  // namespace cae::cuda::fused_kernels
