// The backend interface: every numerical operation the CAE model needs, implemented once
// per device kind (src/cpu, src/cuda). A backend knows tensors as raw float arrays in its
// own memory; it does not know what a CAE is. The model in src/model is written against this
// interface only, so the CPU and CUDA paths are comparable op by op.
//
// Conventions for every op:
//  - Pointers are memory of this backend (from alloc()), unless documented as host memory.
//  - Matrices are row-major; a "row stride" (ld) is counted in elements.
//  - Forward ops overwrite their outputs.
//  - Backward ops ACCUMULATE (+=) into every gradient output; callers zero them first.
//    A gradient output passed as nullptr is skipped.
//  - Sizes are validated by the caller (src/model); ops assume them consistent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "comm/comm.h"

namespace cae {

enum class BackendKind : int32_t { CPU = 0, CUDA = 1 };

// The arithmetic of a GEMM. BF16: both operands are rounded to bfloat16 (round to nearest even)
// and their products summed in fp32, as tensor cores do; the exact products of two bf16 values
// fit in fp32, so two backends differ only in the order of the fp32 sums. C stays fp32.
enum class GemmPrecision : int32_t { FP32 = 0, BF16 = 1 };

// Round-to-nearest-even float -> bfloat16 (bits), NaN kept a quiet NaN; and back (exact).
inline uint16_t float_to_bf16(float f) {
    uint32_t u;
    __builtin_memcpy(&u, &f, sizeof(u));
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_float(uint16_t h) {
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    __builtin_memcpy(&f, &u, sizeof(f));
    return f;
}

// Where an op writes a tensor: fp32 (f32), or only its bf16 rounding (bf16; round to nearest even,
// float_to_bf16) for a consumer that reads nothing else, a BF16 GEMM. At most one is set; an op
// skips an output with neither where it says so. Forward outputs are overwritten in either form.
// A gradient output in fp32 is accumulated (+=), as every backward op does; in bf16 it is
// OVERWRITTEN with the rounding of the op's own contribution (what the fp32 form adds to zeros).
// A backend without a fused bf16 form of an op writes the fp32 form into a temporary and rounds
// it (Backend::through_fp32): by definition the same numbers.
struct Dest {
    float* f32 = nullptr;
    uint16_t* bf16 = nullptr;
    Dest() = default;
    Dest(float* x) : f32(x) {}  // NOLINT: fp32 outputs pass as plain pointers
    static Dest rounded(uint16_t* x) {
        Dest d;
        d.bf16 = x;
        return d;
    }
    bool empty() const { return f32 == nullptr && bf16 == nullptr; }
};

// What an op reads: fp32, or (for a BF16 GEMM, which reads bf16 values) only its bf16 rounding.
struct Operand {
    const float* f32 = nullptr;
    const uint16_t* bf16 = nullptr;
    Operand() = default;
    Operand(const float* x) : f32(x) {}  // NOLINT: fp32 inputs pass as plain pointers
    Operand(const float* x, const uint16_t* x16) : f32(x), bf16(x16) {}
    Operand(const Dest& d) : f32(d.f32), bf16(d.bf16) {}  // NOLINT: what an op wrote, read by the next
};

// C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] for b in [0, batch), where op(A) is M x K
// and op(B) is K x N; op(X) = X^T when trans_x. Batch b reads A + b*stride_a, and so on.
// With precision BF16, a_bf16 / b_bf16 may hold the operand already rounded (the same layout as
// a / b, element for element): the backend then reads it instead of rounding a / b itself.
// bias (optional, n floats): C[b][i, j] += bias[j] after the product, in the same pass where the
// backend can (a cuBLASLt epilogue).
// bias_grad (optional, m floats; only with trans_a and batch 1, the weight gradient of a linear
// layer dW = dy^T x): bias_grad[i] = sum over k of op(A)[i, k], OVERWRITTEN (not accumulated), the
// sum of A as the product reads it (its bf16 values for BF16), in the same pass where the backend
// can (the cuBLASLt BGRADB epilogue).
struct GemmArgs {
    bool trans_a = false;
    bool trans_b = false;
    int64_t m = 0, n = 0, k = 0;
    float alpha = 1.0f;
    const float* a = nullptr;
    int64_t lda = 0;
    int64_t stride_a = 0;
    const float* b = nullptr;
    int64_t ldb = 0;
    int64_t stride_b = 0;
    float beta = 0.0f;
    float* c = nullptr;
    int64_t ldc = 0;
    int64_t stride_c = 0;
    int64_t batch = 1;
    GemmPrecision precision = GemmPrecision::FP32;
    const uint16_t* a_bf16 = nullptr;
    const uint16_t* b_bf16 = nullptr;
    const float* bias = nullptr;
    float* bias_grad = nullptr;
};

// One product C [m, n] = alpha op(A) op(B) + beta C: A and B fp32, or for BF16 their bf16 copies
// (Operand), with row strides lda, ldb, ldc. Batches, biases and epilogues are set on the result.
inline GemmArgs gemm_product(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, Operand a,
                             int64_t lda, Operand b, int64_t ldb, float beta, float* c, int64_t ldc,
                             GemmPrecision precision = GemmPrecision::FP32) {
    GemmArgs g;
    g.trans_a = trans_a;
    g.trans_b = trans_b;
    g.m = m;
    g.n = n;
    g.k = k;
    g.alpha = alpha;
    g.a = a.f32;
    g.a_bf16 = a.bf16;
    g.lda = lda;
    g.b = b.f32;
    g.b_bf16 = b.bf16;
    g.ldb = ldb;
    g.beta = beta;
    g.c = c;
    g.ldc = ldc;
    g.precision = precision;
    return g;
}

// Elements from the first to the last one a stored operand of rows x cols (row stride ld)
// covers over `batch` items `stride` apart (stride 0: one matrix shared by every item).
inline int64_t gemm_operand_span(int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch) {
    if (rows <= 0 || cols <= 0 || batch <= 0) return 0;
    return (batch - 1) * stride + (rows - 1) * ld + cols;
}
// The spans of A and B of g (A is stored M x K, or K x M when transposed; likewise B).
inline int64_t gemm_span_a(const GemmArgs& g) {
    return g.trans_a ? gemm_operand_span(g.k, g.m, g.lda, g.stride_a, g.batch)
                     : gemm_operand_span(g.m, g.k, g.lda, g.stride_a, g.batch);
}
inline int64_t gemm_span_b(const GemmArgs& g) {
    return g.trans_b ? gemm_operand_span(g.n, g.k, g.ldb, g.stride_b, g.batch)
                     : gemm_operand_span(g.k, g.n, g.ldb, g.stride_b, g.batch);
}

// Multi-head attention with separate query and key/value lengths.
// q: [B, Nq, *] with row stride ldq; head h reads columns [h*head_dim, (h+1)*head_dim).
// k, v: [B, Nk, *] with row strides ldk, ldv. out: [B, Nq, heads*head_dim] with row stride ldo.
// Batch b of q starts at q + b*Nq*ldq (likewise k, v, out).
struct AttentionShape {
    int64_t batch = 0;
    int64_t heads = 0;
    int64_t q_len = 0;
    int64_t kv_len = 0;
    int64_t head_dim = 0;
    int64_t ldq = 0, ldk = 0, ldv = 0, ldo = 0;
    float scale = 1.0f;  // applied to q.k before the softmax
    // BF16: the six products (q k^T, P v; dO v^T, P^T dO, dS k, dS^T q) round their operands to
    // bf16 and sum in fp32; the softmax, its backward and the saved probabilities stay fp32.
    GemmPrecision precision = GemmPrecision::FP32;
};

// Attention of `heads` heads of head_dim columns, every tensor in rows of heads * head_dim (set the
// strides after for other layouts), scaled by 1 / sqrt(head_dim).
inline AttentionShape attention_shape(int64_t batch, int64_t heads, int64_t q_len, int64_t kv_len, int64_t head_dim,
                                      GemmPrecision precision = GemmPrecision::FP32) {
    AttentionShape a;
    a.batch = batch;
    a.heads = heads;
    a.q_len = q_len;
    a.kv_len = kv_len;
    a.head_dim = head_dim;
    a.ldq = a.ldk = a.ldv = a.ldo = heads * head_dim;
    a.scale = static_cast<float>(1.0 / __builtin_sqrt(static_cast<double>(head_dim)));
    a.precision = precision;
    return a;
}

enum class PatchOrder : int32_t {
    ChannelsFirst = 0,  // (c, py, px): matches a Conv2d weight [D, C, p, p] flattened
    PixelsFirst = 1     // (py, px, c): the per-patch pixel target layout
};

// A run of `count` consecutive parameters starting at `offset` in the flat parameter array,
// updated with its own weight decay (0 for biases, norms and LayerScale).
struct AdamWSegment {
    int64_t offset = 0;
    int64_t count = 0;
    double weight_decay = 0.0;
};

// Hyperparameters in double, as PyTorch computes its step scalars (1 - beta2, lr / bias
// correction, 1 - lr * wd) from Python floats before rounding them to the tensors' float32.
struct AdamWParams {
    double lr = 0.0;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    int64_t step = 1;              // 1-based step number for the bias corrections
    double max_grad_norm = 0.0;    // clip to this global L2 norm; <= 0: no clipping
};

class Backend {
public:
    virtual ~Backend() = default;

    virtual BackendKind kind() const = 0;
    virtual std::string description() const = 0;
    virtual int num_threads() const = 0;

    // ---- memory (byte counts; every allocation is zero-filled and 64-byte aligned)
    virtual void* alloc(size_t bytes) = 0;                 // device memory of this backend
    virtual void release(void* p) noexcept = 0;
    virtual void* alloc_pinned_host(size_t bytes) = 0;     // host memory for fast copies
    virtual void release_pinned_host(void* p) noexcept = 0;
    virtual void copy_to_device(void* dst, const void* host_src, size_t bytes) = 0;
    virtual void copy_to_host(void* host_dst, const void* src, size_t bytes) = 0;
    virtual void copy_on_device(void* dst, const void* src, size_t bytes) = 0;
    virtual void fill_bytes(void* dst, uint8_t value, size_t bytes) = 0;
    virtual void synchronize() = 0;

    // ---- dense algebra
    virtual void gemm(const GemmArgs& g) = 0;

    // ---- element-wise and row-wise
    // x[i] = value
    virtual void fill(float* x, float value, int64_t n) = 0;
    // y[i] += alpha * x[i]
    virtual void axpy(float* y, const float* x, float alpha, int64_t n) = 0;
    // dst[r, c] = src[r, c] for a rows x cols block (for concatenation along tokens)
    virtual void copy_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src,
                           int64_t rows, int64_t cols) = 0;
    // dst[r, c] += src[r, c] for a rows x cols block (the adjoint of copy_rows)
    virtual void add_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src,
                          int64_t rows, int64_t cols) = 0;

    // out[r, c] += bias[c]; row r starts at out + r*ld
    virtual void add_bias(float* out, int64_t ld, const float* bias, int64_t rows, int64_t cols) = 0;
    // dbias[c] += sum_r dout[r*ld + c]
    virtual void bias_backward(float* dbias, const float* dout, int64_t ld, int64_t rows,
                               int64_t cols) = 0;

    // inp, out [rows, C]: out = (x - mean) * rstd * weight + bias; mean, rstd [rows] kept
    // for the backward.
    virtual void layernorm_forward(Dest out, float* mean, float* rstd, const float* x, const float* weight,
                                   const float* bias, int64_t rows, int64_t C, float eps) = 0;
    virtual void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dout,
                                    const float* x, const float* weight, const float* mean,
                                    const float* rstd, int64_t rows, int64_t C) = 0;

    // residual_forward(mid, x, y, gamma, sample_scale) then the LayerNorm of mid into out, mean,
    // rstd, in one pass where the backend can. mid may not alias x or y.
    virtual void residual_layernorm_forward(float* mid, Dest out, float* mean, float* rstd,
                                            const float* x, const float* y, const float* gamma,
                                            const float* sample_scale, const float* weight, const float* bias,
                                            int64_t B, int64_t T, int64_t C, float eps) = 0;

    // Exact GELU: out = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)). An fp32 out may alias x.
    virtual void gelu_forward(Dest out, const float* x, int64_t n) = 0;
    // dx += dout * GELU'(x)
    virtual void gelu_backward(Dest dx, const float* dout, const float* x, int64_t n) = 0;

    // Residual with LayerScale and per-sample drop-path scale, x, y, out [B, T, C]:
    //   out[b,t,c] = x[b,t,c] + s[b] * gamma[c] * y[b,t,c]
    // gamma == nullptr means 1; sample_scale == nullptr means s[b] = 1. out may alias x.
    virtual void residual_forward(float* out, const float* x, const float* y, const float* gamma,
                                  const float* sample_scale, int64_t B, int64_t T, int64_t C) = 0;
    // dx += dout; dy += s[b] gamma[c] dout; dgamma[c] += sum_{b,t} s[b] dout y. Each may be skipped.
    virtual void residual_backward(float* dx, Dest dy, float* dgamma, const float* dout, const float* y,
                                   const float* gamma, const float* sample_scale, int64_t B, int64_t T,
                                   int64_t C) = 0;

    // ---- attention (see AttentionShape). probs [B, heads, Nq, Nk] is written by the forward
    // (the softmax of scale * q k^T per row) and read by the backward.
    // Strides count elements of the output's form (s.ldo: fp32 or bf16 elements).
    virtual void attention_forward(Dest out, float* probs, const float* q, const float* k, const float* v,
                                   const AttentionShape& s) = 0;
    // dq, dk, dv use the strides of q, k, v, in elements of their forms; each may be skipped. Only the
    // heads' columns of each row are written.
    virtual void attention_backward(Dest dq, Dest dk, Dest dv, const float* dout, const float* probs,
                                    const float* q, const float* k, const float* v, const AttentionShape& s) = 0;

    // ---- tokens. idx [B, n_sel] int32 in this backend's memory, each in [0, N).
    // out[b, j, :] = x[b, idx[b, j], :]  (+= when accumulate). Row length C.
    // x batch stride x_bstride (0: one source shared by every b); out batch stride out_bstride.
    virtual void gather_tokens(float* out, int64_t out_bstride, const float* x, int64_t x_bstride,
                               const int32_t* idx, int64_t B, int64_t n_sel, int64_t C,
                               bool accumulate) = 0;
    // dx[b, idx[b, j], :] += dout[b, j, :]. Indices within one row b must be distinct.
    virtual void scatter_add_tokens(float* dx, int64_t dx_bstride, const float* dout,
                                    int64_t dout_bstride, const int32_t* idx, int64_t B,
                                    int64_t n_sel, int64_t C) = 0;

    // ---- patches. img [B, C, H, W] -> out [B, (H/p)*(W/p), C*p*p], patches in row-major grid
    // order, the values of each patch in `order`.
    virtual void patchify(float* out, const float* img, int64_t B, int64_t C, int64_t H, int64_t W,
                          int64_t p, PatchOrder order) = 0;
    // The patches idx[b, j] of each image only, in that order: out [B, n_sel, C*p*p], row (b, j) =
    // row idx[b, j] of image b's patchify output, read straight from the images (the token gather
    // fused into the patch extraction). idx [B, n_sel] int32 in this backend's memory.
    virtual void patchify_gather(float* out, const float* img, const int32_t* idx, int64_t B, int64_t n_sel,
                                 int64_t C, int64_t H, int64_t W, int64_t p, PatchOrder order) = 0;
    // In place, per row of x [rows, P]: x = (x - mean) / sqrt(var + eps), var unbiased (P - 1).
    virtual void normalize_rows(float* x, int64_t rows, int64_t P, float eps) = 0;

    // ---- losses and reductions (scalars live in this backend's memory)
    // *loss = mean over n of (pred - target)^2
    virtual void mse_forward(float* loss, const float* pred, const float* target, int64_t n) = 0;
    // dpred += scale * 2 (pred - target) / n
    virtual void mse_backward(float* dpred, const float* pred, const float* target, int64_t n,
                              float scale) = 0;
    // *out = sqrt(sum x^2), accumulated in double: the global gradient norm.
    virtual void l2_norm(float* out, const float* x, int64_t n) = 0;

    // ---- mixed precision
    // dst[i] = bf16(src[i]) (round to nearest even; see float_to_bf16).
    virtual void round_to_bf16(uint16_t* dst, const float* src, int64_t n) = 0;

    // ---- optimizer
    // AdamW (decoupled weight decay, PyTorch's order of operations) over the parameter
    // segments (host array). When p.max_grad_norm > 0, gradients are first multiplied by
    // min(1, max_grad_norm / (*grad_norm + 1e-6)) as torch.nn.utils.clip_grad_norm_ does;
    // grad_norm points into this backend's memory. Parameters outside every segment are left.
    // params_bf16 (may be null): the bf16 copy of params, rewritten for every updated parameter
    // in the same pass.
    virtual void adamw(float* params, const float* grads, float* m, float* v,
                       const AdamWSegment* segments, int64_t num_segments, const AdamWParams& p,
                       const float* grad_norm, uint16_t* params_bf16) = 0;

    // ---- data parallelism: sums of this backend's memory between the ranks of `host`, queued on
    // this backend's stream (NCCL on CUDA). Collective over `host`. Null, with the reason in
    // `why_not`, where the backend has none (its memory then goes through the host for MPI).
    virtual std::unique_ptr<DeviceCommunicator> make_device_communicator(Communicator& host, std::string* why_not) {
        (void)host;
        *why_not = "this backend sums host memory";
        return nullptr;
    }

protected:
    // An op's bf16 form for a backend without a fused one: with an fp32 (or no) destination,
    // op(out.f32) directly; with a bf16 one, op writes into a zero-filled fp32 temporary of the same
    // layout (`rows` rows of `cols` values, `ld` apart), whose values are then rounded into out.bf16.
    template <class Op>
    void through_fp32(Dest out, int64_t rows, int64_t cols, int64_t ld, Op&& op) {
        if (out.bf16 == nullptr || rows <= 0 || cols <= 0) {
            op(out.f32);
            return;
        }
        const size_t bytes = static_cast<size_t>((rows - 1) * ld + cols) * sizeof(float);
        float* tmp = static_cast<float*>(alloc(bytes));
        try {
            op(tmp);
            if (ld == cols) {
                round_to_bf16(out.bf16, tmp, rows * cols);
            } else {
                for (int64_t r = 0; r < rows; ++r) round_to_bf16(out.bf16 + r * ld, tmp + r * ld, cols);
            }
        } catch (...) {
            release(tmp);
            throw;
        }
        release(tmp);
    }

public:
    // ---- recording (CUDA graphs): the ops issued between begin_recording() and
    // end_recording() are recorded, not run, and replay() runs them again with the same
    // pointers and arguments. Backends that cannot record return false from can_record().
    class Recording {
    public:
        virtual ~Recording() = default;
        virtual void replay() = 0;
    };
    virtual bool can_record() const { return false; }
    virtual void begin_recording() {}
    // nullptr when the recording failed (the ops were not run; the caller runs them directly).
    virtual std::unique_ptr<Recording> end_recording() { return nullptr; }
};

// Factories. make_cuda_backend throws CAE_ERR_UNSUPPORTED when CUDA is not compiled in.
std::unique_ptr<Backend> make_cpu_backend(int num_threads);
std::unique_ptr<Backend> make_cuda_backend(int device_index);

}  // namespace cae
