#include "model/layers.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace cae {

namespace {

void zero(Backend& be, float* x, int64_t n) { be.fill(x, 0.0f, n); }

AttentionShape self_attention(const BlockShape& s, GemmPrecision precision) {
    AttentionShape a = attention_shape(s.B, s.heads, s.T, s.T, s.D / s.heads, precision);
    a.ldq = a.ldk = a.ldv = 3 * s.D;  // q, k, v are column blocks of the fused qkv
    return a;
}

AttentionShape cross_attention(const RegressorShape& s, GemmPrecision precision) {
    return attention_shape(s.B, s.heads, s.Nm, s.Nv + s.Nm, s.D / s.heads, precision);
}

// Where a layer's output gradient goes: for a BF16 layer with a weight gradient, only its bf16
// rounding into dy16 (what its GEMMs read); otherwise fp32 into f32, zeroed first (the backward ops
// accumulate).
Dest grad_dest(Backend& be, float* f32, uint16_t* dy16, int64_t n, bool bf16_only) {
    if (bf16_only) return Dest::rounded(dy16);
    zero(be, f32, n);
    return Dest(f32);
}

// The gradient of a LayerScale residual branch's output y, s g dout (dgamma accumulated).
Operand branch_grad(Backend& be, float* f32, uint16_t* dy16, float* dgamma, const float* dout, const float* y,
                    const float* gamma, const float* scale, int64_t B, int64_t T, int64_t C, bool bf16_only) {
    const Dest d = grad_dest(be, f32, dy16, B * T * C, bf16_only);
    be.residual_backward(nullptr, d, dgamma, dout, y, gamma, scale, B, T, C);
    return d;
}

// The gradient of fc1's output, dout * GELU'(fc1).
Operand gelu_grad(Backend& be, float* f32, uint16_t* dy16, const float* dout, const float* fc1, int64_t n,
                  bool bf16_only) {
    const Dest d = grad_dest(be, f32, dy16, n, bf16_only);
    be.gelu_backward(d, dout, fc1, n);
    return d;
}

}  // namespace

void linear_forward(Backend& be, float* y, const Operand& x, const WeightRef& W, const float* b, int64_t rows,
                    int64_t in, int64_t out) {
    GemmArgs g = gemm_product(false, true, rows, out, in, 1.0f, x, in, W.operand(), in, 0.0f, y, out, W.precision);
    g.bias = b;  // added in the GEMM's epilogue where the backend can
    be.gemm(g);
}

void linear_backward(Backend& be, float* dx, float* dW, float* db, const Operand& dy, const Operand& x,
                     const WeightRef& W, int64_t rows, int64_t in, int64_t out, bool accumulate_dx,
                     uint16_t* dy_bf16) {
    const bool bf16 = W.precision == GemmPrecision::BF16;
    CAE_REQUIRE(dy.f32 != nullptr || (bf16 && dy.bf16 != nullptr && (dW != nullptr || db == nullptr)),
                "linear_backward: dy given as bf16 only needs BF16 GEMMs, and the weight gradient for a bias gradient");
    // BF16 with both GEMMs: dy rounded once, read by both (each would round it again).
    Operand dyr(dy.f32, bf16 ? dy.bf16 : nullptr);
    if (bf16 && dyr.bf16 == nullptr && dy_bf16 != nullptr && dW != nullptr && dx != nullptr) {
        be.round_to_bf16(dy_bf16, dy.f32, rows * out);
        dyr.bf16 = dy_bf16;
    }
    if (dW != nullptr) {  // dW [out, in] += dy^T [out, rows] x [rows, in]; db = colsum(dy) by the same GEMM
        GemmArgs g = gemm_product(true, false, out, in, rows, 1.0f, dyr, out, x, in, 1.0f, dW, in, W.precision);
        g.bias_grad = db;
        be.gemm(g);
    } else if (db != nullptr) {
        be.fill(db, 0.0f, out);
        be.bias_backward(db, dy.f32, out, rows, out);
    }
    if (dx != nullptr) {  // dx [rows, in] (+)= dy [rows, out] W [out, in]
        be.gemm(gemm_product(false, false, rows, in, out, 1.0f, dyr, out, W.operand(), in, accumulate_dx ? 1.0f : 0.0f,
                             dx, in, W.precision));
    }
}

BlockActs BlockActs::allocate(Workspace& ws, int64_t B, int64_t T, int64_t D, int64_t heads, int64_t mlp) {
    const int64_t rows = B * T;
    BlockActs a;
    a.ln1 = DualBuffer(ws, rows * D);
    a.ln1_mean = ws.floats(rows);
    a.ln1_rstd = ws.floats(rows);
    a.qkv = ws.floats(rows * 3 * D);
    a.probs = ws.floats(B * heads * T * T);
    a.att = DualBuffer(ws, rows * D);
    a.proj = ws.floats(rows * D);
    a.mid = ws.floats(rows * D);
    a.ln2 = DualBuffer(ws, rows * D);
    a.ln2_mean = ws.floats(rows);
    a.ln2_rstd = ws.floats(rows);
    a.fc1 = ws.floats(rows * mlp);
    a.fc2 = ws.floats(rows * D);
    return a;
}

BlockScratch BlockScratch::allocate(Workspace& ws, int64_t rows, int64_t D, int64_t mlp) {
    BlockScratch s;
    s.gelu = DualBuffer(ws, rows * mlp);
    s.d_mlp = ws.floats(rows * mlp);
    s.d_big = ws.floats(rows * D);
    s.d_proj = ws.floats(rows * D);
    s.d_att = ws.floats(rows * D);
    s.d_qkv = DualBuffer(ws, rows * 3 * D);
    s.d_ln = ws.floats(rows * D);
    s.qkv_bias = ws.floats(3 * D);  // zero-filled: the k part stays 0
    s.qkv_bias_grad = ws.floats(3 * D);
    s.dy_bf16 = ws.bf16s(rows * std::max<int64_t>(3 * D, mlp));
    return s;
}

void block_forward(Backend& be, const Weights& w, const BlockParams& bp, const BlockShape& s, BlockActs& a,
                   BlockScratch& sc, const float* x_in, float* x_out, const float* drop1, const float* drop2) {
    const int64_t rows = s.B * s.T, D = s.D;
    // BF16: the LN, attention and GELU outputs feed only GEMMs, which read them as bf16: written as such.
    const bool bf16 = w.precision == GemmPrecision::BF16;
    be.layernorm_forward(a.ln1.dest(bf16), a.ln1_mean, a.ln1_rstd, x_in, w.p(bp.ln1_w), w.p(bp.ln1_b), rows, D,
                         s.ln_eps);
    // qkv = LN1(x) Wqkv^T + [q_bias | 0 | v_bias], the bias added by the GEMM
    be.copy_on_device(sc.qkv_bias, w.p(bp.q_bias), static_cast<size_t>(D) * sizeof(float));
    be.copy_on_device(sc.qkv_bias + 2 * D, w.p(bp.v_bias), static_cast<size_t>(D) * sizeof(float));
    linear_forward(be, a.qkv, a.ln1.operand(bf16), w.wt(bp.qkv_w), sc.qkv_bias, rows, D, 3 * D);
    be.attention_forward(a.att.dest(bf16), a.probs, a.qkv, a.qkv + D, a.qkv + 2 * D, self_attention(s, w.precision));
    linear_forward(be, a.proj, a.att.operand(bf16), w.wt(bp.proj_w), w.p(bp.proj_b), rows, D, D);
    // mid = x + s1 g1 proj and its LayerNorm in one pass
    be.residual_layernorm_forward(a.mid, a.ln2.dest(bf16), a.ln2_mean, a.ln2_rstd, x_in, a.proj, w.p(bp.gamma1), drop1,
                                  w.p(bp.ln2_w), w.p(bp.ln2_b), s.B, s.T, D, s.ln_eps);
    linear_forward(be, a.fc1, a.ln2.operand(bf16), w.wt(bp.fc1_w), w.p(bp.fc1_b), rows, D, s.mlp);
    be.gelu_forward(sc.gelu.dest(bf16), a.fc1, rows * s.mlp);
    linear_forward(be, a.fc2, sc.gelu.operand(bf16), w.wt(bp.fc2_w), w.p(bp.fc2_b), rows, s.mlp, D);
    be.residual_forward(x_out, a.mid, a.fc2, w.p(bp.gamma2), drop2, s.B, s.T, D);
}

void block_backward(Backend& be, const Weights& w, const BlockParams& bp, const BlockShape& s, const BlockActs& a,
                    BlockScratch& sc, const float* x_in, float* dx, const float* drop1, const float* drop2) {
    const int64_t rows = s.B * s.T, D = s.D, M = s.mlp;
    const bool bf16 = w.precision == GemmPrecision::BF16;
    // x_out = mid + s2 g2 fc2: d(mid) = dx (kept in place), d(fc2) = s2 g2 dx
    const Operand dfc2 = branch_grad(be, sc.d_big, sc.dy_bf16, w.g(bp.gamma2), dx, a.fc2, w.p(bp.gamma2), drop2, s.B,
                                         s.T, D, bf16 && w.g(bp.fc2_w) != nullptr);
    // fc2 = GELU(fc1) W2^T + b2 (GELU recomputed rather than stored; BF16: as bf16, see block_forward)
    be.gelu_forward(sc.gelu.dest(bf16), a.fc1, rows * M);
    linear_backward(be, sc.d_mlp, w.g(bp.fc2_w), w.g(bp.fc2_b), dfc2, sc.gelu.operand(bf16), w.wt(bp.fc2_w), rows, M, D,
                    false, sc.dy_bf16);
    linear_backward(be, sc.d_ln, w.g(bp.fc1_w), w.g(bp.fc1_b),
                    gelu_grad(be, sc.gelu.f32(), sc.dy_bf16, sc.d_mlp, a.fc1, rows * M, bf16 && w.g(bp.fc1_w) != nullptr),
                    a.ln2.operand(bf16), w.wt(bp.fc1_w), rows, D, M, false, sc.dy_bf16);
    be.layernorm_backward(dx, w.g(bp.ln2_w), w.g(bp.ln2_b), sc.d_ln, a.mid, w.p(bp.ln2_w), a.ln2_mean, a.ln2_rstd,
                          rows, D);
    // mid = x_in + s1 g1 proj
    linear_backward(be, sc.d_att, w.g(bp.proj_w), w.g(bp.proj_b),
                    branch_grad(be, sc.d_proj, sc.dy_bf16, w.g(bp.gamma1), dx, a.proj, w.p(bp.gamma1), drop1, s.B, s.T,
                                D, bf16 && w.g(bp.proj_w) != nullptr),
                    a.att.operand(bf16), w.wt(bp.proj_w), rows, D, D, false, sc.dy_bf16);
    // BF16 with a weight gradient: the attention gradients written as the bf16 operand of the qkv
    // GEMMs; the q and v bias gradients are then the q and v parts of the weight GEMM's column sums.
    const bool qkv16 = bf16 && w.g(bp.qkv_w) != nullptr;
    const Dest dqkv = grad_dest(be, sc.d_qkv.f32(), sc.d_qkv.bf16(), rows * 3 * D, qkv16);
    auto part = [&](int64_t offset) {
        return qkv16 ? Dest::rounded(dqkv.bf16 + offset) : Dest(dqkv.f32 + offset);
    };
    be.attention_backward(part(0), part(D), part(2 * D), sc.d_att, a.probs, a.qkv, a.qkv + D, a.qkv + 2 * D,
                          self_attention(s, w.precision));
    if (qkv16) {
        linear_backward(be, sc.d_ln, w.g(bp.qkv_w), sc.qkv_bias_grad, dqkv, a.ln1.operand(bf16), w.wt(bp.qkv_w), rows, D,
                        3 * D, false, sc.dy_bf16);
        const size_t bytes = static_cast<size_t>(D) * sizeof(float);
        if (float* g = w.g(bp.q_bias)) be.copy_on_device(g, sc.qkv_bias_grad, bytes);
        if (float* g = w.g(bp.v_bias)) be.copy_on_device(g, sc.qkv_bias_grad + 2 * D, bytes);
    } else {
        if (float* g = w.g(bp.q_bias)) be.bias_backward(g, dqkv.f32, 3 * D, rows, D);
        if (float* g = w.g(bp.v_bias)) be.bias_backward(g, dqkv.f32 + 2 * D, 3 * D, rows, D);
        linear_backward(be, sc.d_ln, w.g(bp.qkv_w), nullptr, dqkv, a.ln1.operand(bf16), w.wt(bp.qkv_w), rows, D, 3 * D,
                        false, sc.dy_bf16);
    }
    be.layernorm_backward(dx, w.g(bp.ln1_w), w.g(bp.ln1_b), sc.d_ln, x_in, w.p(bp.ln1_w), a.ln1_mean, a.ln1_rstd,
                          rows, D);
}

RegressorActs RegressorActs::allocate(Workspace& ws, int64_t B, int64_t Nv, int64_t Nm, int64_t D, int64_t heads,
                                      int64_t mlp) {
    const int64_t R = B * Nm, RL = B * (Nv + Nm);
    RegressorActs a;
    a.q_in = ws.floats(R * D);
    a.lnq = DualBuffer(ws, R * D);
    a.lnq_mean = ws.floats(R);
    a.lnq_rstd = ws.floats(R);
    a.kv = ws.floats(RL * D);
    a.k_in = ws.floats(RL * D);
    a.lnk = DualBuffer(ws, RL * D);
    a.lnk_mean = ws.floats(RL);
    a.lnk_rstd = ws.floats(RL);
    a.lnv = DualBuffer(ws, RL * D);
    a.lnv_mean = ws.floats(RL);
    a.lnv_rstd = ws.floats(RL);
    a.qp = ws.floats(R * D);
    a.kp = ws.floats(RL * D);
    a.vp = ws.floats(RL * D);
    a.probs = ws.floats(B * heads * Nm * (Nv + Nm));
    a.att = DualBuffer(ws, R * D);
    a.proj = ws.floats(R * D);
    a.h = ws.floats(R * D);
    a.hn = ws.floats(R * D);
    a.ln2_mean = ws.floats(R);
    a.ln2_rstd = ws.floats(R);
    a.fc1 = ws.floats(R * mlp);
    a.fc2 = ws.floats(R * D);
    return a;
}

RegressorScratch RegressorScratch::allocate(Workspace& ws, int64_t B, int64_t Nv, int64_t Nm, int64_t D,
                                            int64_t mlp) {
    const int64_t R = B * Nm, RL = B * (Nv + Nm);
    RegressorScratch s;
    s.gelu = DualBuffer(ws, R * mlp);
    s.d_mlp = ws.floats(R * mlp);
    s.d_big = ws.floats(R * D);
    s.d_proj = ws.floats(R * D);
    s.d_att = ws.floats(R * D);
    s.d_q = DualBuffer(ws, R * D);
    s.d_k = DualBuffer(ws, RL * D);
    s.d_v = DualBuffer(ws, RL * D);
    s.d_lnq = ws.floats(R * D);
    s.d_lnk = ws.floats(RL * D);
    s.d_lnv = ws.floats(RL * D);
    s.d_h = ws.floats(R * D);
    s.d_kv = ws.floats(RL * D);
    s.dy_bf16 = ws.bf16s(std::max(R * mlp, RL * D));
    return s;
}

void regressor_forward(Backend& be, const Weights& w, const RegressorParams& rp, const RegressorShape& s,
                       RegressorActs& a, RegressorScratch& sc, const float* zv, int64_t zv_bstride,
                       const float* pos_m, const float* pk, const float* q, float* q_out, const float* drop1,
                       const float* drop2) {
    const int64_t D = s.D, L = s.Nv + s.Nm, R = s.B * s.Nm, RL = s.B * L;
    // Q' = LNq(q + pos_m)
    be.copy_on_device(a.q_in, q, static_cast<size_t>(R * D) * sizeof(float));
    be.axpy(a.q_in, pos_m, 1.0f, R * D);
    // BF16: the q/k/v LayerNorms, the attention and the GELU feed only GEMMs: written as their bf16 operands.
    const bool bf16 = w.precision == GemmPrecision::BF16;
    be.layernorm_forward(a.lnq.dest(bf16), a.lnq_mean, a.lnq_rstd, a.q_in, w.p(rp.lnq_w), w.p(rp.lnq_b), R, D, s.ln_eps);
    // KV = [zv ; q] per image; K' = LNk(KV + [pos_v ; pos_m]); V' = LNv(KV)
    be.copy_rows(a.kv, L * D, zv, zv_bstride, s.B, s.Nv * D);
    be.copy_rows(a.kv + s.Nv * D, L * D, q, s.Nm * D, s.B, s.Nm * D);
    be.copy_on_device(a.k_in, a.kv, static_cast<size_t>(RL * D) * sizeof(float));
    be.axpy(a.k_in, pk, 1.0f, RL * D);
    be.layernorm_forward(a.lnk.dest(bf16), a.lnk_mean, a.lnk_rstd, a.k_in, w.p(rp.lnk_w), w.p(rp.lnk_b), RL, D, s.ln_eps);
    be.layernorm_forward(a.lnv.dest(bf16), a.lnv_mean, a.lnv_rstd, a.kv, w.p(rp.lnv_w), w.p(rp.lnv_b), RL, D, s.ln_eps);
    // q/k/v projections without bias, plus q_bias and v_bias (k has none)
    linear_forward(be, a.qp, a.lnq.operand(bf16), w.wt(rp.q_w), w.p(rp.q_bias), R, D, D);
    linear_forward(be, a.kp, a.lnk.operand(bf16), w.wt(rp.k_w), nullptr, RL, D, D);
    linear_forward(be, a.vp, a.lnv.operand(bf16), w.wt(rp.v_w), w.p(rp.v_bias), RL, D, D);
    be.attention_forward(a.att.dest(bf16), a.probs, a.qp, a.kp, a.vp, cross_attention(s, w.precision));
    linear_forward(be, a.proj, a.att.operand(bf16), w.wt(rp.proj_w), w.p(rp.proj_b), R, D, D);
    // h = LN2(q + s1 g1 a): the norm is applied to the residual stream itself (hn stays fp32: the
    // residual below reads it)
    be.residual_layernorm_forward(a.h, a.hn, a.ln2_mean, a.ln2_rstd, q, a.proj, w.p(rp.gamma1), drop1, w.p(rp.ln2_w),
                                  w.p(rp.ln2_b), s.B, s.Nm, D, s.ln_eps);
    linear_forward(be, a.fc1, a.hn, w.wt(rp.fc1_w), w.p(rp.fc1_b), R, D, s.mlp);
    be.gelu_forward(sc.gelu.dest(bf16), a.fc1, R * s.mlp);
    linear_forward(be, a.fc2, sc.gelu.operand(bf16), w.wt(rp.fc2_w), w.p(rp.fc2_b), R, s.mlp, D);
    be.residual_forward(q_out, a.hn, a.fc2, w.p(rp.gamma2), drop2, s.B, s.Nm, D);
}

void regressor_backward(Backend& be, const Weights& w, const RegressorParams& rp, const RegressorShape& s,
                        const RegressorActs& a, RegressorScratch& sc, float* dq, float* dzv, int64_t zv_bstride,
                        const float* drop1, const float* drop2) {
    const int64_t D = s.D, L = s.Nv + s.Nm, R = s.B * s.Nm, RL = s.B * L, M = s.mlp;
    const bool bf16 = w.precision == GemmPrecision::BF16;
    // q_out = hn + s2 g2 fc2
    const Operand dfc2 = branch_grad(be, sc.d_big, sc.dy_bf16, w.g(rp.gamma2), dq, a.fc2, w.p(rp.gamma2), drop2, s.B,
                                         s.Nm, D, bf16 && w.g(rp.fc2_w) != nullptr);
    be.gelu_forward(sc.gelu.dest(bf16), a.fc1, R * M);
    linear_backward(be, sc.d_mlp, w.g(rp.fc2_w), w.g(rp.fc2_b), dfc2, sc.gelu.operand(bf16), w.wt(rp.fc2_w), R, M, D,
                    false, sc.dy_bf16);
    linear_backward(be, dq, w.g(rp.fc1_w), w.g(rp.fc1_b),
                    gelu_grad(be, sc.gelu.f32(), sc.dy_bf16, sc.d_mlp, a.fc1, R * M, bf16 && w.g(rp.fc1_w) != nullptr),
                    a.hn, w.wt(rp.fc1_w), R, D, M, true, sc.dy_bf16);
    // dq = d(hn) now; hn = LN2(h)
    zero(be, sc.d_h, R * D);
    be.layernorm_backward(sc.d_h, w.g(rp.ln2_w), w.g(rp.ln2_b), dq, a.h, w.p(rp.ln2_w), a.ln2_mean, a.ln2_rstd, R, D);
    // h = q + s1 g1 proj: d(q) = d_h, d(proj) = s1 g1 d_h
    linear_backward(be, sc.d_att, w.g(rp.proj_w), w.g(rp.proj_b),
                    branch_grad(be, sc.d_proj, sc.dy_bf16, w.g(rp.gamma1), sc.d_h, a.proj, w.p(rp.gamma1), drop1, s.B,
                                s.Nm, D, bf16 && w.g(rp.proj_w) != nullptr),
                    a.att.operand(bf16), w.wt(rp.proj_w), R, D, D, false, sc.dy_bf16);
    // BF16 with weight gradients: the attention gradients written as the bf16 operands of the q, k,
    // v GEMMs
    const bool qkv16 = bf16 && w.g(rp.q_w) != nullptr && w.g(rp.k_w) != nullptr && w.g(rp.v_w) != nullptr;
    const Dest dq_in = grad_dest(be, sc.d_q.f32(), sc.d_q.bf16(), R * D, qkv16);
    const Dest dk_in = grad_dest(be, sc.d_k.f32(), sc.d_k.bf16(), RL * D, qkv16);
    const Dest dv_in = grad_dest(be, sc.d_v.f32(), sc.d_v.bf16(), RL * D, qkv16);
    be.attention_backward(dq_in, dk_in, dv_in, sc.d_att, a.probs, a.qp, a.kp, a.vp, cross_attention(s, w.precision));
    linear_backward(be, sc.d_lnq, w.g(rp.q_w), w.g(rp.q_bias), dq_in, a.lnq.operand(bf16), w.wt(rp.q_w), R, D, D, false,
                    sc.dy_bf16);
    linear_backward(be, sc.d_lnk, w.g(rp.k_w), nullptr, dk_in, a.lnk.operand(bf16), w.wt(rp.k_w), RL, D, D, false,
                    sc.dy_bf16);
    linear_backward(be, sc.d_lnv, w.g(rp.v_w), w.g(rp.v_bias), dv_in, a.lnv.operand(bf16), w.wt(rp.v_w), RL, D, D, false,
                    sc.dy_bf16);
    // q_in = q + pos_m
    be.layernorm_backward(sc.d_h, w.g(rp.lnq_w), w.g(rp.lnq_b), sc.d_lnq, a.q_in, w.p(rp.lnq_w), a.lnq_mean,
                          a.lnq_rstd, R, D);
    // k_in = KV + pk and V' = LNv(KV)
    zero(be, sc.d_kv, RL * D);
    be.layernorm_backward(sc.d_kv, w.g(rp.lnk_w), w.g(rp.lnk_b), sc.d_lnk, a.k_in, w.p(rp.lnk_w), a.lnk_mean,
                          a.lnk_rstd, RL, D);
    be.layernorm_backward(sc.d_kv, w.g(rp.lnv_w), w.g(rp.lnv_b), sc.d_lnv, a.kv, w.p(rp.lnv_w), a.lnv_mean,
                          a.lnv_rstd, RL, D);
    // KV = [zv ; q]
    be.add_rows(dzv, zv_bstride, sc.d_kv, L * D, s.B, s.Nv * D);
    be.add_rows(sc.d_h, s.Nm * D, sc.d_kv + s.Nv * D, L * D, s.B, s.Nm * D);
    be.copy_on_device(dq, sc.d_h, static_cast<size_t>(R * D) * sizeof(float));
}

}  // namespace cae
