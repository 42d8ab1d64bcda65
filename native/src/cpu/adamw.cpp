// AdamW in the order of operations of torch.optim.AdamW (single-tensor, foreach=False), with
// the gradient scaling of torch.nn.utils.clip_grad_norm_ folded in:
//   g = g * clip;  p *= 1 - lr wd;  m = lerp(m, g, 1 - beta1);  v = v beta2 + (1 - beta2) g g
//   p += -(lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/parallel.h"
#include "cpu/simd.h"

namespace cae::cpu {

// The per-step scalars, rounded to float where torch's tensor ops round them.
struct AdamWScalars {
    float grad_scale;      // clip_grad_norm_'s clip_coef_clamped, or 1
    float one_minus_beta1;
    float beta2;
    float one_minus_beta2;
    float bias_correction2_sqrt;
    float eps;
    float neg_step_size;   // -lr / bias_correction1
};

CAE_MULTIVERSION void adamw_range(float* p, const float* g, float* m, float* v, int64_t n,
                                  float decay, const AdamWScalars& s) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const f32x8 gi = load8(g + i) * s.grad_scale;
        const f32x8 pi = load8(p + i) * decay;
        f32x8 mi = load8(m + i);
        mi = mi + s.one_minus_beta1 * (gi - mi);
        f32x8 vi = load8(v + i) * s.beta2;
        vi = vi + s.one_minus_beta2 * gi * gi;
        const f32x8 denom = sqrt8(vi) / s.bias_correction2_sqrt + s.eps;
        store8(m + i, mi);
        store8(v + i, vi);
        store8(p + i, pi + s.neg_step_size * mi / denom);
    }
    for (; i < n; ++i) {
        const float gi = g[i] * s.grad_scale;
        const float pi = p[i] * decay;
        const float mi = m[i] + s.one_minus_beta1 * (gi - m[i]);
        const float vi = v[i] * s.beta2 + s.one_minus_beta2 * gi * gi;
        const float denom = std::sqrt(vi) / s.bias_correction2_sqrt + s.eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + s.neg_step_size * mi / denom;
    }
}

void CpuBackend::adamw(float* params, const float* grads, float* m, float* v,
                       const AdamWSegment* segments, int64_t num_segments, const AdamWParams& p,
                       const float* grad_norm, uint16_t* params_bf16) {
    AdamWScalars s;
    // clip_coef = max_norm / (total_norm + 1e-6), clamped to 1, all in float32 like torch.
    s.grad_scale = p.max_grad_norm > 0.0
                       ? std::min(1.0f, static_cast<float>(p.max_grad_norm) / (*grad_norm + 1e-6f))
                       : 1.0f;
    const double step = static_cast<double>(p.step);
    const double bias_correction1 = 1.0 - std::pow(p.beta1, step);
    const double bias_correction2 = 1.0 - std::pow(p.beta2, step);
    s.one_minus_beta1 = static_cast<float>(1.0 - p.beta1);
    s.beta2 = static_cast<float>(p.beta2);
    s.one_minus_beta2 = static_cast<float>(1.0 - p.beta2);
    s.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
    s.eps = static_cast<float>(p.eps);
    s.neg_step_size = static_cast<float>(-p.lr / bias_correction1);

    // Segments cut into pieces of at most kPiece parameters, spread over the team.
    constexpr int64_t kPiece = 1 << 14;
    struct Piece {
        int64_t offset, count;
        float decay;
    };
    std::vector<Piece> pieces;
    int64_t total = 0;
    for (int64_t k = 0; k < num_segments; ++k) {
        const AdamWSegment& seg = segments[k];
        const float decay = static_cast<float>(1.0 - p.lr * seg.weight_decay);
        for (int64_t o = 0; o < seg.count; o += kPiece)
            pieces.push_back({seg.offset + o, std::min(kPiece, seg.count - o), decay});
        total += std::max<int64_t>(seg.count, 0);
    }
    const int64_t n_pieces = static_cast<int64_t>(pieces.size());
#pragma omp parallel for num_threads(team_size(threads_, total, 1 << 15)) schedule(static)
    for (int64_t k = 0; k < n_pieces; ++k) {
        const Piece& pc = pieces[k];
        adamw_range(params + pc.offset, grads + pc.offset, m + pc.offset, v + pc.offset, pc.count,
                    pc.decay, s);
        if (params_bf16 != nullptr) {
            for (int64_t i = pc.offset; i < pc.offset + pc.count; ++i) params_bf16[i] = float_to_bf16(params[i]);
        }
    }
}

}  // namespace cae::cpu
