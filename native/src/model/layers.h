// The CAE's layers, forward and backward, written once against the backend interface.
// Shapes are in comments as [batch, tokens, width]; B*T rows of a [B, T, C] tensor are contiguous.
#pragma once

#include <cstdint>

#include "backend/backend.h"
#include "model/params.h"
#include "model/workspace.h"

namespace cae {

// A linear layer's weight matrix as its GEMMs read it: fp32, the arithmetic of the layer's GEMMs,
// and (for BF16, optional) the weight already rounded to bf16.
struct WeightRef {
    const float* f32 = nullptr;
    const uint16_t* bf16 = nullptr;
    GemmPrecision precision = GemmPrecision::FP32;
    Operand operand() const { return Operand(f32, bf16); }
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

// Memory for a tensor that a pass writes in one form: fp32, or in BF16 passes, where only GEMMs read
// it, its bf16 rounding alone. One allocation sized for fp32, seen as either element type.
class DualBuffer {
public:
    DualBuffer() = default;
    DualBuffer(Workspace& ws, int64_t n) : mem_(ws.bytes(static_cast<size_t>(n) * sizeof(float))) {}
    float* f32() const { return static_cast<float*>(mem_); }
    uint16_t* bf16() const { return static_cast<uint16_t*>(mem_); }
    // Where a pass of this precision writes the tensor, and what its GEMMs then read.
    Dest dest(bool bf16_pass) const { return bf16_pass ? Dest::rounded(bf16()) : Dest(f32()); }
    Operand operand(bool bf16_pass) const { return Operand(dest(bf16_pass)); }

private:
    void* mem_ = nullptr;
};

// y [rows, out] = x [rows, in] W^T + b; x is fp32, or for BF16 layers may be its bf16 rounding alone
// (from a producer that wrote nothing else, see Dest) (b may be null)
void linear_forward(Backend& be, float* y, const Operand& x, const WeightRef& W, const float* b, int64_t rows,
                    int64_t in, int64_t out);

// dW += dy^T x; db = colsum(dy) (overwritten: with dW, the weight GEMM's bias gradient, summing dy
// as that GEMM reads it, so bf16 values for BF16); dx = dy W (or += when accumulate). Null outputs are
// skipped. The GEMMs use W's precision; dy may be given as its bf16 rounding only (BF16 layers
// with dW, see Dest).
// dy_bf16 (rows * out, may be null): scratch for an fp32 dy rounded once for both GEMMs of a BF16 layer.
void linear_backward(Backend& be, float* dx, float* dW, float* db, const Operand& dy, const Operand& x,
                     const WeightRef& W, int64_t rows, int64_t in, int64_t out, bool accumulate_dx,
                     uint16_t* dy_bf16 = nullptr);

// Saved activations of one pre-norm block over [B, T, D] (see block_forward).
// ln1, ln2 and att feed only GEMMs: BF16 passes keep them as bf16 (DualBuffer).
struct BlockActs {
    DualBuffer ln1;                    // [B,T,D]
    float *ln1_mean, *ln1_rstd;        // [B*T], [B*T]
    float *qkv, *probs;                // [B,T,3D], [B,H,T,T]
    DualBuffer att;                    // [B,T,D]
    float* proj;                       // [B,T,D]
    float* mid;                        // [B,T,D] stream after the attention residual
    DualBuffer ln2;
    float *ln2_mean, *ln2_rstd;
    float *fc1, *fc2;                  // [B,T,M] (before GELU), [B,T,D]

    static BlockActs allocate(Workspace& ws, int64_t B, int64_t T, int64_t D, int64_t heads, int64_t mlp);
};

// Scratch shared by all blocks of a stack (sized for the largest T of the stack).
struct BlockScratch {
    DualBuffer gelu;       // [rows, M]
    float *d_big, *d_mlp, *d_proj, *d_att, *d_ln;
    DualBuffer d_qkv;      // [rows, 3D]: bf16 in BF16 backward passes with weight gradients
    float* qkv_bias;       // [3D]: [q_bias | 0 | v_bias], the fused qkv GEMM's bias
    float* qkv_bias_grad;  // [3D]: the column sums of the qkv output gradient (BF16 backward)
    uint16_t* dy_bf16;     // [rows, max(3D, M)]: a BF16 layer's output gradient, rounded once
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
// lnq, lnk, lnv and att feed only GEMMs: BF16 passes keep them as bf16 (DualBuffer).
struct RegressorActs {
    float* q_in;                                    // [B,Nm,D] q + pos_m
    DualBuffer lnq;                                 // its LN
    float *lnq_mean, *lnq_rstd;
    float *kv, *k_in;                               // [B,L,D] L = Nv + Nm
    DualBuffer lnk, lnv;
    float *lnk_mean, *lnk_rstd, *lnv_mean, *lnv_rstd;
    float *qp, *kp, *vp, *probs;                    // [B,Nm,D], [B,L,D] x2, [B,H,Nm,L]
    DualBuffer att;                                 // [B,Nm,D]
    float* proj;                                    // [B,Nm,D]
    float *h, *hn, *ln2_mean, *ln2_rstd;            // [B,Nm,D] residual, its LN
    float *fc1, *fc2;

    static RegressorActs allocate(Workspace& ws, int64_t B, int64_t Nv, int64_t Nm, int64_t D, int64_t heads,
                                  int64_t mlp);
};

struct RegressorScratch {
    DualBuffer gelu;
    float *d_mlp, *d_big, *d_proj, *d_att, *d_lnq, *d_lnk, *d_lnv, *d_h, *d_kv;
    DualBuffer d_q, d_k, d_v;  // bf16 in BF16 backward passes with weight gradients
    uint16_t* dy_bf16;         // as in BlockScratch
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
