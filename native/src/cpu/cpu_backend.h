// The CPU backend: fp32 kernels parallelized with OpenMP across rows or batch, GEMM through
// OpenBLAS (CBLAS) or the built-in blocked GEMM. The numerical reference for every other
// backend. Deterministic for a given thread count.
#pragma once

#include "backend/backend.h"

namespace cae::cpu {

// GEMM implementations, both always compiled so that each can be tested.
void gemm_blas(const GemmArgs& g, int threads);     // requires CAE_HAVE_OPENBLAS
void gemm_builtin(const GemmArgs& g, int threads);  // blocked, packed, OpenMP
bool have_blas();

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(int num_threads);

    BackendKind kind() const override { return BackendKind::CPU; }
    std::string description() const override;
    int num_threads() const override { return threads_; }

    void* alloc(size_t bytes) override;
    void release(void* p) noexcept override;
    void* alloc_pinned_host(size_t bytes) override;
    void release_pinned_host(void* p) noexcept override;
    void copy_to_device(void* dst, const void* host_src, size_t bytes) override;
    void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
    void copy_on_device(void* dst, const void* src, size_t bytes) override;
    void fill_bytes(void* dst, uint8_t value, size_t bytes) override;
    void synchronize() override {}

    void gemm(const GemmArgs& g) override;

    void fill(float* x, float value, int64_t n) override;
    void axpy(float* y, const float* x, float alpha, int64_t n) override;
    void copy_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                   int64_t cols) override;
    void add_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                  int64_t cols) override;
    void add_bias(float* out, int64_t ld, const float* bias, int64_t rows, int64_t cols) override;
    void bias_backward(float* dbias, const float* dout, int64_t ld, int64_t rows,
                       int64_t cols) override;
    void layernorm_forward(Dest out, float* mean, float* rstd, const float* x, const float* weight,
                           const float* bias, int64_t rows, int64_t C, float eps) override;
    void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dout,
                            const float* x, const float* weight, const float* mean,
                            const float* rstd, int64_t rows, int64_t C) override;
    void gelu_forward(Dest out, const float* x, int64_t n) override;
    void gelu_backward(Dest dx, const float* dout, const float* x, int64_t n) override;
    void residual_forward(float* out, const float* x, const float* y, const float* gamma,
                          const float* sample_scale, int64_t B, int64_t T, int64_t C) override;
    void residual_backward(float* dx, Dest dy, float* dgamma, const float* dout, const float* y,
                           const float* gamma, const float* sample_scale, int64_t B, int64_t T,
                           int64_t C) override;
    void attention_forward(Dest out, float* probs, const float* q, const float* k, const float* v,
                           const AttentionShape& s) override;
    void attention_backward(Dest dq, Dest dk, Dest dv, const float* dout, const float* probs, const float* q,
                            const float* k, const float* v, const AttentionShape& s) override;
    void gather_tokens(float* out, int64_t out_bstride, const float* x, int64_t x_bstride,
                       const int32_t* idx, int64_t B, int64_t n_sel, int64_t C,
                       bool accumulate) override;
    void scatter_add_tokens(float* dx, int64_t dx_bstride, const float* dout,
                            int64_t dout_bstride, const int32_t* idx, int64_t B, int64_t n_sel,
                            int64_t C) override;
    void patchify(float* out, const float* img, int64_t B, int64_t C, int64_t H, int64_t W,
                  int64_t p, PatchOrder order) override;
    void patchify_gather(float* out, const float* img, const int32_t* idx, int64_t B, int64_t n_sel, int64_t C,
                         int64_t H, int64_t W, int64_t p, PatchOrder order) override;
    void normalize_rows(float* x, int64_t rows, int64_t P, float eps) override;
    void mse_forward(float* loss, const float* pred, const float* target, int64_t n) override;
    void mse_backward(float* dpred, const float* pred, const float* target, int64_t n,
                      float scale) override;
    void l2_norm(float* out, const float* x, int64_t n) override;
    void adamw(float* params, const float* grads, float* m, float* v,
               const AdamWSegment* segments, int64_t num_segments, const AdamWParams& p,
               const float* grad_norm, uint16_t* params_bf16) override;
    void round_to_bf16(uint16_t* dst, const float* src, int64_t n) override;
    void residual_layernorm_forward(float* mid, Dest out, float* mean, float* rstd,
                                    const float* x, const float* y, const float* gamma, const float* sample_scale,
                                    const float* weight, const float* bias, int64_t B, int64_t T, int64_t C,
                                    float eps) override;

private:
    int threads_;
};

}  // namespace cae::cpu
