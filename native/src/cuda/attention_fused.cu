// The fused attention kernels (attention_fused.h) and their dispatch: used by the CUDA backend's
// attention ops for head dims 32 and 64 and up to 256 queries and keys when CAE_FUSED_ATTENTION=1
// (off by default until a GPU run has validated and timed it against the batched-GEMM path).
// The forward then leaves each row's max and sum of exponentials in `probs` instead of the
// probabilities, and the backward recomputes them from there.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "cuda/attention_fused.h"
#include "cuda/cuda_backend.h"
#include "cuda/kernels.cuh"

namespace cae::cuda {

namespace {

// The three kernels: the block's cooperative load, a barrier, then one row per thread.
enum class Pass { Forward, BackwardQ, BackwardK };

template <int HD, Pass P>
__global__ void __launch_bounds__(fused::kRows) fused_kernel(fused::Args a) {
    extern __shared__ float smem[];
    const int64_t pair = blockIdx.y, tile = blockIdx.x;
    const int tid = static_cast<int>(threadIdx.x);
    if (P == Pass::Forward) fused::forward_load<HD>(a, pair, smem, tid);
    if (P == Pass::BackwardQ) fused::backward_q_load<HD>(a, pair, smem, tid);
    if (P == Pass::BackwardK) fused::backward_k_load<HD>(a, pair, smem, tid);
    __syncthreads();
    if (P == Pass::Forward) fused::forward_row<HD>(a, pair, tile, smem, tid);
    if (P == Pass::BackwardQ) fused::backward_q_row<HD>(a, pair, tile, smem, tid);
    if (P == Pass::BackwardK) fused::backward_k_row<HD>(a, pair, tile, smem, tid);
}

constexpr int64_t kMaxLen = 256;

unsigned int tiles(int64_t n) { return static_cast<unsigned int>((n + fused::kRows - 1) / fused::kRows); }

template <int HD>
int64_t max_smem_bytes() {
    return sizeof(float) * std::max({fused::forward_smem_floats<HD>(kMaxLen), fused::backward_q_smem_floats<HD>(kMaxLen),
                                     fused::backward_k_smem_floats<HD>(kMaxLen)});
}

// Lets each kernel use the shared memory of the longest sequence it accepts (beyond the default 48 KiB).
template <int HD>
void allow_smem(int64_t bytes) {
    const int b = static_cast<int>(bytes);
    const auto attr = cudaFuncAttributeMaxDynamicSharedMemorySize;
    CAE_CUDA_CHECK(cudaFuncSetAttribute(fused_kernel<HD, Pass::Forward>, attr, b));
    CAE_CUDA_CHECK(cudaFuncSetAttribute(fused_kernel<HD, Pass::BackwardQ>, attr, b));
    CAE_CUDA_CHECK(cudaFuncSetAttribute(fused_kernel<HD, Pass::BackwardK>, attr, b));
}

// One pass's kernel for the head dim, with the shared memory of `len` rows (keys for the forward
// and the query side, queries for the key side).
template <Pass P, int HD>
int64_t smem_bytes(int64_t len) {
    const int64_t floats = P == Pass::BackwardK ? fused::backward_k_smem_floats<HD>(len)
                           : P == Pass::BackwardQ ? fused::backward_q_smem_floats<HD>(len)
                                                  : fused::forward_smem_floats<HD>(len);
    return floats * static_cast<int64_t>(sizeof(float));
}

template <Pass P>
void launch(int64_t head_dim, dim3 grid, int64_t len, const fused::Args& a, cudaStream_t stream) {
    if (head_dim == 32) {
        fused_kernel<32, P><<<grid, fused::kRows, smem_bytes<P, 32>(len), stream>>>(a);
    } else {
        fused_kernel<64, P><<<grid, fused::kRows, smem_bytes<P, 64>(len), stream>>>(a);
    }
    CAE_CUDA_CHECK_LAUNCH("fused attention kernel");
}

fused::Args fused_args(const AttentionShape& s, const float* q, const float* k, const float* v) {
    fused::Args a{};
    a.q = q;
    a.k = k;
    a.v = v;
    a.ldq = s.ldq;
    a.ldk = s.ldk;
    a.ldv = s.ldv;
    a.ldo = s.ldo;
    a.heads = s.heads;
    a.nq = s.q_len;
    a.nk = s.kv_len;
    a.scale = s.scale;
    a.bf16 = s.precision == GemmPrecision::BF16;
    return a;
}

}  // namespace

bool fused_attention_from_environment() {
    const char* v = std::getenv("CAE_FUSED_ATTENTION");
    return v != nullptr && (std::strcmp(v, "1") == 0 || std::strcmp(v, "on") == 0 || std::strcmp(v, "true") == 0);
}

void CudaBackend::init_fused_attention() {
    fused_attention_ = fused_attention_from_environment();
    if (!fused_attention_) return;
    int optin = 0;
    CAE_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device_));
    fused_smem_limit_ = optin;
    if (max_smem_bytes<32>() <= optin) allow_smem<32>(max_smem_bytes<32>());
    if (max_smem_bytes<64>() <= optin) allow_smem<64>(max_smem_bytes<64>());
}

bool CudaBackend::fused_attention_applies(const AttentionShape& s) const {
    if (!fused_attention_ || (s.head_dim != 32 && s.head_dim != 64)) return false;
    if (s.q_len < 1 || s.q_len > kMaxLen || s.kv_len < 2 || s.kv_len > kMaxLen) return false;
    const int64_t need = s.head_dim == 32 ? max_smem_bytes<32>() : max_smem_bytes<64>();
    return need <= fused_smem_limit_ && s.batch * s.heads <= 65535;
}

void CudaBackend::fused_attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                                          const AttentionShape& s) {
    fused::Args a = fused_args(s, q, k, v);
    a.out = out;
    a.stats = probs;  // row statistics instead of probabilities (null: no backward follows)
    const dim3 grid(tiles(s.q_len), static_cast<unsigned int>(s.batch * s.heads));
    launch<Pass::Forward>(s.head_dim, grid, s.kv_len, a, stream_);
}

void CudaBackend::fused_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* probs,
                                           const float* q, const float* k, const float* v, const AttentionShape& s) {
    const int64_t pairs = s.batch * s.heads;
    Scratch rowdot(*this, static_cast<size_t>(pairs * s.q_len) * sizeof(float));
    fused::Args a = fused_args(s, q, k, v);
    a.dout = dout;
    a.dq = dq;
    a.dk = dk;
    a.dv = dv;
    a.stats = const_cast<float*>(probs);
    a.rowdot = rowdot.as<float>();
    const dim3 qgrid(tiles(s.q_len), static_cast<unsigned int>(pairs));
    const dim3 kgrid(tiles(s.kv_len), static_cast<unsigned int>(pairs));
    launch<Pass::BackwardQ>(s.head_dim, qgrid, s.kv_len, a, stream_);
    if (dk || dv) launch<Pass::BackwardK>(s.head_dim, kgrid, s.q_len, a, stream_);
}

}  // namespace cae::cuda
