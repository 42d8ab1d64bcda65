// AdamW over all parameter segments in one pass, in the order of operations of
// torch.optim.AdamW (foreach=False) with clip_grad_norm_'s scaling folded in, exactly as
// src/cpu/adamw.cpp (hyperparameters arrive in double; the step scalars are derived in double
// and rounded to float once, as PyTorch does from Python floats):
//   g = g * clip;  p *= 1 - lr wd;  m = m + (1 - beta1) (g - m);  v = v beta2 + ((1 - beta2) g) g
//   p += ((-lr / (1 - beta1^t)) m) / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Every operation is rounded on its own (__f*_rn: no fused multiply-add), so the result is the
// CPU backend's up to its own contractions. The clip coefficient min(1, max_norm / (norm + 1e-6))
// is computed in float from the norm in device memory, by every thread.
//
// The segments are a host array; they are kept on the device and uploaded again only when they
// change (the parameter table's segments are the same every step while the weight decay is).
// The upload goes through a pinned staging buffer on the stream; before the staging buffer is
// overwritten the host waits for the previous upload only (an event), never for the stream.
#include <cmath>
#include <cstring>
#include <vector>

#include <cuda_bf16.h>

#include "cuda/cuda_backend.h"
#include "cuda/kernels.cuh"

namespace cae::cuda {

namespace {

constexpr int kThreads = 256;

struct DeviceSegment {
    int64_t offset;  // first parameter of the segment
    int64_t prefix;  // parameters in the segments before it (its first index in the virtual concatenation)
    double weight_decay;
};
static_assert(sizeof(DeviceSegment) == 24, "DeviceSegment layout");

// The per-step scalars, from the double hyperparameters rounded to float where torch rounds them
// (as src/cpu/adamw.cpp); lr stays double for the per-segment decay 1 - lr wd.
struct Scalars {
    double lr;
    int clip;             // max_grad_norm > 0
    float max_grad_norm;  // as float, like clip_grad_norm_'s float32 arithmetic
    float one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps, neg_step_size;
};

// Thread i of the virtual concatenation of the segments (total parameters) finds its segment by
// binary search over the prefixes.
__global__ void __launch_bounds__(kThreads)
    adamw_kernel(float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ m,
                 float* __restrict__ v, const DeviceSegment* __restrict__ segs, int num_segs, int64_t total,
                 Scalars s, const float* __restrict__ grad_norm, __nv_bfloat16* __restrict__ params_bf16) {
    const float grad_scale = s.clip ? fminf(1.0f, __fdiv_rn(s.max_grad_norm, __fadd_rn(*grad_norm, 1e-6f))) : 1.0f;
    for (int64_t i = global_thread(); i < total; i += grid_threads()) {
        int lo = 0, hi = num_segs - 1;
        while (lo < hi) {
            const int mid = (lo + hi + 1) / 2;
            if (segs[mid].prefix <= i) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        const DeviceSegment seg = segs[lo];
        const int64_t k = seg.offset + (i - seg.prefix);
        const float decay = static_cast<float>(1.0 - s.lr * seg.weight_decay);
        const float gi = __fmul_rn(grads[k], grad_scale);
        const float pi = __fmul_rn(params[k], decay);
        const float m0 = m[k];
        const float mi = __fadd_rn(m0, __fmul_rn(s.one_minus_beta1, __fsub_rn(gi, m0)));
        const float vi = __fadd_rn(__fmul_rn(v[k], s.beta2), __fmul_rn(__fmul_rn(s.one_minus_beta2, gi), gi));
        const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bias_correction2_sqrt), s.eps);
        m[k] = mi;
        v[k] = vi;
        const float pn = __fadd_rn(pi, __fdiv_rn(__fmul_rn(s.neg_step_size, mi), denom));
        params[k] = pn;
        if (params_bf16 != nullptr) params_bf16[k] = __float2bfloat16_rn(pn);
    }
}

bool same_segments(const std::vector<AdamWSegment>& a, const AdamWSegment* b, int64_t n) {
    if (static_cast<int64_t>(a.size()) != n) return false;
    for (int64_t i = 0; i < n; ++i) {
        if (a[i].offset != b[i].offset || a[i].count != b[i].count ||
            std::memcmp(&a[i].weight_decay, &b[i].weight_decay, sizeof(a[i].weight_decay)) != 0)
            return false;
    }
    return true;
}

}  // namespace

void CudaBackend::adamw(float* params, const float* grads, float* m, float* v, const AdamWSegment* segments,
                        int64_t num_segments, const AdamWParams& p, const float* grad_norm,
                        uint16_t* params_bf16) {
    if (num_segments <= 0) return;
    CAE_REQUIRE(num_segments < (int64_t{1} << 30), "adamw: ", num_segments, " segments");
    use_device();

    // Segments with parameters, as the kernel's table.
    std::vector<DeviceSegment> table;
    int64_t total = 0;
    for (int64_t k = 0; k < num_segments; ++k) {
        if (segments[k].count <= 0) continue;
        table.push_back({segments[k].offset, total, segments[k].weight_decay});
        total += segments[k].count;
    }
    if (total == 0) return;

    if (!same_segments(adamw_host_, segments, num_segments) || adamw_device_ == nullptr) {
        const size_t bytes = table.size() * sizeof(DeviceSegment);
        if (bytes > adamw_capacity_) {
            if (adamw_staging_ != nullptr) {
                CAE_CUDA_CHECK(cudaEventSynchronize(adamw_uploaded_));  // the last upload has read it
                CAE_CUDA_CHECK(cudaFreeHost(adamw_staging_));
                adamw_staging_ = nullptr;
            }
            raw_release(adamw_device_);
            adamw_device_ = nullptr;
            adamw_capacity_ = 0;
            adamw_device_ = raw_alloc(bytes);
            CAE_CUDA_CHECK(cudaHostAlloc(&adamw_staging_, bytes, cudaHostAllocPortable));
            adamw_capacity_ = bytes;
        } else {
            CAE_CUDA_CHECK(cudaEventSynchronize(adamw_uploaded_));  // the last upload has read the staging buffer
        }
        std::memcpy(adamw_staging_, table.data(), bytes);
        CAE_CUDA_CHECK(cudaMemcpyAsync(adamw_device_, adamw_staging_, bytes, cudaMemcpyHostToDevice, stream_));
        CAE_CUDA_CHECK(cudaEventRecord(adamw_uploaded_, stream_));
        adamw_host_.assign(segments, segments + num_segments);
    }

    // The per-step scalars, rounded to float where torch rounds them (as src/cpu/adamw.cpp).
    Scalars s;
    const double step = static_cast<double>(p.step);
    const double bias_correction1 = 1.0 - std::pow(p.beta1, step);
    const double bias_correction2 = 1.0 - std::pow(p.beta2, step);
    s.lr = p.lr;
    s.clip = p.max_grad_norm > 0.0 ? 1 : 0;
    s.max_grad_norm = static_cast<float>(p.max_grad_norm);
    s.one_minus_beta1 = static_cast<float>(1.0 - p.beta1);
    s.beta2 = static_cast<float>(p.beta2);
    s.one_minus_beta2 = static_cast<float>(1.0 - p.beta2);
    s.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
    s.eps = static_cast<float>(p.eps);
    s.neg_step_size = static_cast<float>(-p.lr / bias_correction1);
    CAE_REQUIRE(!s.clip || grad_norm != nullptr, "adamw: clipping needs the gradient norm");

    adamw_kernel<<<grid_for(total, kThreads, 8192), kThreads, 0, stream_>>>(
        params, grads, m, v, static_cast<const DeviceSegment*>(adamw_device_), static_cast<int>(table.size()), total,
        s, grad_norm, reinterpret_cast<__nv_bfloat16*>(params_bf16));
    CAE_CUDA_CHECK_LAUNCH("adamw_kernel");
}

}  // namespace cae::cuda
