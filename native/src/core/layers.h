// The CAE's layers, forward and backward, written once against the backend interface.
// Shapes are in comments as [batch, tokens, width]; B*T rows of a [B, T, C] tensor are contiguous.
#pragma once

#include <cstdint>

#include "core/backend.h"
#include "core/params.h"
#include "core/workspace.h"

namespace cae {

// A linear layer's weight matrix as its GEMMs read it: fp32, the arithmetic of the layer's GEMMs,
// and (for BF16, optional) the weight already rounded to bf16.
struct WeightRef {
    const float* f32 = nullptr;
    const uint16_t* bf16 = nullptr;
    GemmPrecision precision = GemmPrecision::FP32;
};

// Parameter and gradient arrays with the table that names their views. With precision BF16 the
// linear layers' GEMMs round their operands to bf16 (fp32 accumulation); params_bf16, when
// given, is the bf16 copy of params (the same offsets) that the weights are read from.
struct Weights {
    const ParamTable& table;
    float* params;
    float* grads;  // nullptr in passes without gradients
    GemmPrecision precision = GemmPrecision::FP32;
    const uint16_t* params_bf16 = nullptr;

    float* p(int i) const { return i < 0 ? nullptr : params + table[i].offset; }
    float* g(int i) const {
        return (i < 0 || grads == nullptr || !table[i].trainable) ? nullptr : grads + table[i].offset;
    }
    WeightRef wt(int i) const {
        WeightRef r;
        r.f32 = p(i);
        r.precision = precision;
        if (precision == GemmPrecision::BF16 && params_bf16 != nullptr && i >= 0) r.bf16 = params_bf16 + table[i].offset;
        return r;
    }
};

// The input of a linear layer: fp32, or for BF16 layers only its bf16 rounding (from a producer
// that wrote nothing else, see Backend::layernorm_forward_bf16).
struct LinearInput {
    const float* f32 = nullptr;
    const uint16_t* bf16 = nullptr;
    LinearInput(const float* x) : f32(x) {}  // NOLINT: fp32 inputs pass as plain pointers
    LinearInput(const float* x, const uint16_t* x16) : f32(x), bf16(x16) {}
};

// y [rows, out] = x [rows, in] W^T + b (b may be null)
void linear_forward(Backend& be, float* y, const LinearInput& x, const WeightRef& W, const float* b, int64_t rows,
                    int64_t in, int64_t out);

// dW += dy^T x; db = colsum(dy) (overwritten: with dW, the weight GEMM's bias gradient, summing dy
// as that GEMM reads it, so bf16 values for BF16); dx = dy W (or += when accumulate). Null outputs are
// skipped. The GEMMs use W's precision; dy may be given as its bf16 rounding only (BF16 layers
// with dW, see Backend::gelu_backward_bf16).
// dy_bf16 (rows * out, may be null): scratch for an fp32 dy rounded once for both GEMMs of a BF16 layer.
void linear_backward(Backend& be, float* dx, float* dW, float* db, const LinearInput& dy, const LinearInput& x,
                     const WeightRef& W, int64_t rows, int64_t in, int64_t out, bool accumulate_dx,
                     uint16_t* dy_bf16 = nullptr);

// Saved activations of one pre-norm block over [B, T, D] (see block_forward).
struct BlockActs {
    float *ln1, *ln1_mean, *ln1_rstd;  // [B,T,D], [B*T], [B*T]
    float *qkv, *probs, *att, *proj;   // [B,T,3D], [B,H,T,T], [B,T,D], [B,T,D]
    float* mid;                        // [B,T,D] stream after the attention residual
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc1, *fc2;                  // [B,T,M] (before GELU), [B,T,D]
    // [B,T,D]: the LN and attention outputs of BF16 passes, in the memory of ln1, ln2, att (unused then)
    uint16_t *ln1_bf16, *ln2_bf16, *att_bf16;

    static BlockActs allocate(Workspace& ws, int64_t B, int64_t T, int64_t D, int64_t heads, int64_t mlp);
};

// Scratch shared by all blocks of a stack (sized for the largest T of the stack).
struct BlockScratch {
    float *gelu, *d_big, *d_mlp, *d_proj, *d_att, *d_qkv, *d_ln;
    float* qkv_bias;       // [3D]: [q_bias | 0 | v_bias], the fused qkv GEMM's bias
    float* qkv_bias_grad;  // [3D]: the column sums of the qkv output gradient (BF16 backward)
    uint16_t* gelu_bf16;  // [rows, M]: the GELU output of BF16 passes (gelu unused then)
    uint16_t* dy_bf16;    // [rows, max(3D, M)]: a BF16 layer's output gradient, rounded once
    static BlockScratch allocate(Workspace& ws, int64_t rows, int64_t D, int64_t mlp);
};

struct BlockShape {
    int64_t B, T, D, heads, mlp;
    float ln_eps;
};

// x_out = mid + s2 g2 MLP(LN2(mid)), mid = x_in + s1 g1 Attn(LN1(x_in)); x [B, T, D].
// drop1, drop2: per-sample scales [B] (null: 1).
void block_forward(Backend& be, const Weights& w, const BlockParams& bp, const BlockShape& s, BlockActs& a,
                   BlockScratch& sc, const float* x_in, float* x_out, const float* drop1, const float* drop2);

// On entry dx = d(x_out); on exit dx = d(x_in). Parameter gradients accumulate into w.grads.
void block_backward(Backend& be, const Weights& w, const BlockParams& bp, const BlockShape& s, const BlockActs& a,
                    BlockScratch& sc, const float* x_in, float* dx, const float* drop1, const float* drop2);

// Saved activations of one regressor block: queries [B, Nm, D] against [visible ; queries].
struct RegressorActs {
    float *q_in, *lnq, *lnq_mean, *lnq_rstd;        // [B,Nm,D] q + pos_m, and its LN
    float *kv, *k_in, *lnk, *lnk_mean, *lnk_rstd;   // [B,L,D] L = Nv + Nm
    float *lnv, *lnv_mean, *lnv_rstd;
    float *qp, *kp, *vp, *probs, *att, *proj;       // [B,Nm,D], [B,L,D] x2, [B,H,Nm,L], [B,Nm,D] x2
    float *h, *hn, *ln2_mean, *ln2_rstd;            // [B,Nm,D] residual, its LN
    float *fc1, *fc2;
    // the q/k/v LN and attention outputs of BF16 passes, in the memory of lnq, lnk, lnv, att (unused then)
    uint16_t *lnq_bf16, *lnk_bf16, *lnv_bf16, *att_bf16;

    static RegressorActs allocate(Workspace& ws, int64_t B, int64_t Nv, int64_t Nm, int64_t D, int64_t heads,
                                  int64_t mlp);
};

struct RegressorScratch {
    float *gelu, *d_mlp, *d_big, *d_proj, *d_att, *d_q, *d_k, *d_v, *d_lnq, *d_lnk, *d_lnv, *d_h, *d_kv;
    uint16_t *gelu_bf16, *dy_bf16;  // as in BlockScratch
    static RegressorScratch allocate(Workspace& ws, int64_t B, int64_t Nv, int64_t Nm, int64_t D, int64_t mlp);
};

struct RegressorShape {
    int64_t B, Nv, Nm, D, heads, mlp;
    float ln_eps;
};

// One regressor block (CAE v1): KV = [zv ; q]; a = CrossAttn(LNq(q + pos_m), LNk(KV + pk), LNv(KV));
// h = LN2(q + s1 g1 a); q_out = h + s2 g2 MLP(h).
// zv: visible latents, row b at zv + b*zv_bstride ([Nv, D] each); pos_m [B,Nm,D]; pk [B,L,D].
void regressor_forward(Backend& be, const Weights& w, const RegressorParams& rp, const RegressorShape& s,
                       RegressorActs& a, RegressorScratch& sc, const float* zv, int64_t zv_bstride,
                       const float* pos_m, const float* pk, const float* q, float* q_out, const float* drop1,
                       const float* drop2);

// On entry dq = d(q_out); on exit dq = d(q). d(zv) accumulates into dzv (row b at dzv + b*zv_bstride).
void regressor_backward(Backend& be, const Weights& w, const RegressorParams& rp, const RegressorShape& s,
                        const RegressorActs& a, RegressorScratch& sc, float* dq, float* dzv, int64_t zv_bstride,
                        const float* drop1, const float* drop2);

}  // namespace cae
