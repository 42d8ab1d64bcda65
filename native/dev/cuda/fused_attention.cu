// The dispatch of the fused attention kernels (fused_attention.h). The kernels are compiled in
// attention_fused_hd*.cu, a few head dims each, so that they build in parallel.
#include "fused_attention.h"

#include <algorithm>
#include <stdexcept>
#include <type_traits>

#include "attention_fused.h"
#include "attention_fused_kernels.cuh"
#include "cuda/cuda_check.h"

namespace cae::lab {

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
    if (bytes > kDefaultSmem) cuda::fused_kernels::set_max_smem<HD>(P, static_cast<int>(bytes));
}

template <Pass P>
void launch(int64_t head_dim, dim3 grid, int64_t len, const fused::Args& a, cudaStream_t stream) {
    with_head_dim(head_dim, [&](auto hd) {
        constexpr int HD = decltype(hd)::value;
        cuda::fused_kernels::launch<HD>(P, grid, static_cast<size_t>(smem_bytes<HD, P>(len)), a, stream);
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

FusedAttention::FusedAttention(int device, cudaStream_t stream) : stream_(stream) {
    int optin = 0;
    CAE_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    smem_limit_ = optin;
    for (int64_t hd = 16; hd <= 128; hd += 16) {
        with_head_dim(hd, [&](auto d) {
            constexpr int HD = decltype(d)::value;
            allow_smem<HD, Pass::Forward>(optin);
            allow_smem<HD, Pass::BackwardQ>(optin);
            allow_smem<HD, Pass::BackwardK>(optin);
        });
    }
}

FusedAttention::~FusedAttention() {
    if (rowdot_ != nullptr) cudaFree(rowdot_);
}

// Both directions or neither: the forward's row statistics are only understood by the fused
// backward, so every pass's shared memory for this shape must be within the opt-in limit (beyond
// 48 KiB, allow_smem granted each kernel its need at kMaxLen, the most of any length, or the limit).
bool FusedAttention::applies(const AttentionShape& s) const {
    if (s.q_len < 1 || s.q_len > kMaxLen || s.kv_len < 2 || s.kv_len > kMaxLen) return false;
    int64_t need = 0;
    const bool kernels = with_head_dim(s.head_dim, [&](auto hd) {
        constexpr int HD = decltype(hd)::value;
        need = std::max({smem_bytes<HD, Pass::Forward>(s.kv_len), smem_bytes<HD, Pass::BackwardQ>(s.kv_len),
                         smem_bytes<HD, Pass::BackwardK>(s.q_len)});
    });
    return kernels && need <= smem_limit_ && s.batch * s.heads <= 65535;
}

void FusedAttention::forward(Dest out, float* stats, const float* q, const float* k, const float* v,
                             const AttentionShape& s) {
    fused::Args a = fused_args(s, q, k, v);
    a.out = out.f32;
    a.out16 = out.bf16;
    a.stats = stats;
    const dim3 grid(tiles(s.q_len), static_cast<unsigned int>(s.batch * s.heads));
    launch<Pass::Forward>(s.head_dim, grid, s.kv_len, a, stream_);
}

void FusedAttention::backward(Dest dq, Dest dk, Dest dv, const float* dout, const float* stats, const float* q,
                              const float* k, const float* v, const AttentionShape& s) {
    const bool grads16 = dq.bf16 != nullptr || dk.bf16 != nullptr || dv.bf16 != nullptr;
    if (grads16 && (dq.f32 != nullptr || dk.f32 != nullptr || dv.f32 != nullptr)) {
        throw std::invalid_argument("fused attention: the gradients are all fp32 or all bf16");
    }
    auto ptr = [&](Dest d) { return grads16 ? reinterpret_cast<float*>(d.bf16) : d.f32; };
    const int64_t pairs = s.batch * s.heads;
    if (pairs * s.q_len > rowdot_floats_) {
        if (rowdot_ != nullptr) CAE_CUDA_CHECK(cudaFree(rowdot_));
        rowdot_ = nullptr;
        CAE_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&rowdot_), static_cast<size_t>(pairs * s.q_len) * sizeof(float)));
        rowdot_floats_ = pairs * s.q_len;
    }
    fused::Args a = fused_args(s, q, k, v);
    a.dout = dout;
    a.dq = ptr(dq);
    a.dk = ptr(dk);
    a.dv = ptr(dv);
    a.grads16 = grads16;
    a.stats = const_cast<float*>(stats);
    a.rowdot = rowdot_;
    const dim3 qgrid(tiles(s.q_len), static_cast<unsigned int>(pairs));
    const dim3 kgrid(tiles(s.kv_len), static_cast<unsigned int>(pairs));
    launch<Pass::BackwardQ>(s.head_dim, qgrid, s.kv_len, a, stream_);
    if (a.dk != nullptr || a.dv != nullptr) launch<Pass::BackwardK>(s.head_dim, kgrid, s.q_len, a, stream_);
}

}  // namespace cae::lab
