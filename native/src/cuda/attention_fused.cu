// The fused attention kernels (attention_fused.h) and their dispatch: used by the CUDA backend's
// attention ops for head dims 16 to 128 (multiples of 16) and up to 256 queries and keys when
// CAE_FUSED_ATTENTION=1 (off by default until a GPU run has validated and timed it against the
// batched-GEMM path). The forward then leaves each row's max and sum of exponentials in `probs`
// instead of the probabilities, and the backward recomputes them from there. The kernels are
// compiled in attention_fused_hd*.cu, a few head dims each, so that they build in parallel.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "cuda/attention_fused.h"
#include "cuda/attention_fused_kernels.cuh"
#include "cuda/cuda_backend.h"

namespace cae::cuda {

namespace {

using fused::Pass;

constexpr int64_t kMaxLen = 256;
constexpr int64_t kDefaultSmem = 48 * 1024;

unsigned int tiles(int64_t n) { return static_cast<unsigned int>((n + fused::kRows - 1) / fused::kRows); }

// Calls f(std::integral_constant<int, HD>{}) for a head dim with kernels; false for the others.
template <class F>
bool with_head_dim(int64_t hd, F&& f) {
    switch (hd) {
        case 16: f(std::integral_constant<int, 16>{}); return true;
        case 32: f(std::integral_constant<int, 32>{}); return true;
        case 48: f(std::integral_constant<int, 48>{}); return true;
        case 64: f(std::integral_constant<int, 64>{}); return true;
        case 80: f(std::integral_constant<int, 80>{}); return true;
        case 96: f(std::integral_constant<int, 96>{}); return true;
        case 112: f(std::integral_constant<int, 112>{}); return true;
        case 128: f(std::integral_constant<int, 128>{}); return true;
        default: return false;
    }
}

// Shared bytes of pass P's kernel for `len` rows on its tiled side (keys for the forward and the
// query side, queries for the key side). At most a tile's worth: the same for every len >= tile.
template <int HD, Pass P>
int64_t smem_bytes(int64_t len) {
    return fused::smem_floats<HD, P>(len) * static_cast<int64_t>(sizeof(float));
}

// Lets the kernel use the shared memory of the longest sequence it accepts where that is beyond
// the default 48 KiB (head dim 64's key side), up to the device's opt-in limit.
template <int HD, Pass P>
void allow_smem(int64_t optin) {
    const int64_t bytes = std::min(smem_bytes<HD, P>(kMaxLen), optin);
    if (bytes > kDefaultSmem) fused_kernels::set_max_smem<HD>(P, static_cast<int>(bytes));
}

template <Pass P>
void launch(int64_t head_dim, dim3 grid, int64_t len, const fused::Args& a, cudaStream_t stream) {
    with_head_dim(head_dim, [&](auto hd) {
        constexpr int HD = decltype(hd)::value;
        fused_kernels::launch<HD>(P, grid, static_cast<size_t>(smem_bytes<HD, P>(len)), a, stream);
    });
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
    for (int64_t hd = 16; hd <= 128; hd += 16) {
        with_head_dim(hd, [&](auto d) {
            constexpr int HD = decltype(d)::value;
            allow_smem<HD, Pass::Forward>(optin);
            allow_smem<HD, Pass::BackwardQ>(optin);
            allow_smem<HD, Pass::BackwardK>(optin);
        });
    }
}

// Both directions or neither: the forward's row statistics are only understood by the fused
// backward, so every pass's shared memory for this shape must be within the opt-in limit (beyond
// 48 KiB, allow_smem granted each kernel its need at kMaxLen, the most of any length, or the limit).
bool CudaBackend::fused_attention_applies(const AttentionShape& s) const {
    if (!fused_attention_) return false;
    if (s.q_len < 1 || s.q_len > kMaxLen || s.kv_len < 2 || s.kv_len > kMaxLen) return false;
    int64_t need = 0;
    const bool kernels = with_head_dim(s.head_dim, [&](auto hd) {
        constexpr int HD = decltype(hd)::value;
        need = std::max({smem_bytes<HD, Pass::Forward>(s.kv_len), smem_bytes<HD, Pass::BackwardQ>(s.kv_len),
                         smem_bytes<HD, Pass::BackwardK>(s.q_len)});
    });
    return kernels && need <= fused_smem_limit_ && s.batch * s.heads <= 65535;
}

void CudaBackend::fused_attention_forward(float* out, uint16_t* out16, float* probs, const float* q, const float* k,
                                          const float* v, const AttentionShape& s) {
    fused::Args a = fused_args(s, q, k, v);
    a.out = out;
    a.out16 = out16;
    a.stats = probs;  // row statistics instead of probabilities (null: no backward follows)
    const dim3 grid(tiles(s.q_len), static_cast<unsigned int>(s.batch * s.heads));
    launch<Pass::Forward>(s.head_dim, grid, s.kv_len, a, stream_);
}

void CudaBackend::fused_attention_backward(float* dq, float* dk, float* dv, bool grads16, const float* dout,
                                           const float* probs, const float* q, const float* k, const float* v,
                                           const AttentionShape& s) {
    const int64_t pairs = s.batch * s.heads;
    Scratch rowdot(*this, static_cast<size_t>(pairs * s.q_len) * sizeof(float));
    fused::Args a = fused_args(s, q, k, v);
    a.dout = dout;
    a.dq = dq;
    a.dk = dk;
    a.dv = dv;
    a.grads16 = grads16;
    a.stats = const_cast<float*>(probs);
    a.rowdot = rowdot.as<float>();
    const dim3 qgrid(tiles(s.q_len), static_cast<unsigned int>(pairs));
    const dim3 kgrid(tiles(s.kv_len), static_cast<unsigned int>(pairs));
    launch<Pass::BackwardQ>(s.head_dim, qgrid, s.kv_len, a, stream_);
    if (dk || dv) launch<Pass::BackwardK>(s.head_dim, kgrid, s.q_len, a, stream_);
}

}  // namespace cae::cuda
