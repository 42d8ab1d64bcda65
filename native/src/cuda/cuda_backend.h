// The CUDA backend: fp32 kernels on one device and one stream per context. Every op is queued
// on the context's stream without host synchronization; copies to the host synchronize the
// stream before returning (the caller reads the memory right after), copies from the host
// return when the source may be reused.
//
// Memory: a caching allocator (device_allocator.h) keeps released blocks by size class for
// reuse and hands them back to the driver when the backend is destroyed. Reuse is safe without
// events because every use of a block is ordered on the one stream.
//
// GEMM: cuBLASLt opened at run time when it can be found (gemm_cublaslt.cu), else the
// backend's own kernels (gemm_fallback.cu). CAE_GEMM=cublaslt|fallback|simt|mma forces a choice
// and CAE_TF32=1 allows TF32 tensor-core math (off by default: pure fp32 for parity with the
// CPU backend).
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "cuda/device_allocator.h"
#include "cuda/gemm.h"

namespace cae::cuda {

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(int device);
    ~CudaBackend() override;
    CudaBackend(const CudaBackend&) = delete;
    CudaBackend& operator=(const CudaBackend&) = delete;

    BackendKind kind() const override { return BackendKind::CUDA; }
    std::string description() const override { return description_; }
    int num_threads() const override { return 1; }

    void* alloc(size_t bytes) override;
    void release(void* p) noexcept override;
    void* alloc_pinned_host(size_t bytes) override;
    void release_pinned_host(void* p) noexcept override;
    void copy_to_device(void* dst, const void* host_src, size_t bytes) override;
    void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
    void copy_on_device(void* dst, const void* src, size_t bytes) override;
    void fill_bytes(void* dst, uint8_t value, size_t bytes) override;
    void synchronize() override;

    void gemm(const GemmArgs& g) override;

    void fill(float* x, float value, int64_t n) override;
    void axpy(float* y, const float* x, float alpha, int64_t n) override;
    void copy_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                   int64_t cols) override;
    void add_rows(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                  int64_t cols) override;
    void add_bias(float* out, int64_t ld, const float* bias, int64_t rows, int64_t cols) override;
    void bias_backward(float* dbias, const float* dout, int64_t ld, int64_t rows, int64_t cols) override;
    void layernorm_forward(Dest out, float* mean, float* rstd, const float* x, const float* weight,
                           const float* bias, int64_t rows, int64_t C, float eps) override;
    void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dout, const float* x,
                            const float* weight, const float* mean, const float* rstd, int64_t rows,
                            int64_t C) override;
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
    void gather_tokens(float* out, int64_t out_bstride, const float* x, int64_t x_bstride, const int32_t* idx,
                       int64_t B, int64_t n_sel, int64_t C, bool accumulate) override;
    void scatter_add_tokens(float* dx, int64_t dx_bstride, const float* dout, int64_t dout_bstride,
                            const int32_t* idx, int64_t B, int64_t n_sel, int64_t C) override;
    void patchify(float* out, const float* img, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p,
                  PatchOrder order) override;
    void patchify_gather(float* out, const float* img, const int32_t* idx, int64_t B, int64_t n_sel, int64_t C,
                         int64_t H, int64_t W, int64_t p, PatchOrder order) override;
    void normalize_rows(float* x, int64_t rows, int64_t P, float eps) override;
    void mse_forward(float* loss, const float* pred, const float* target, int64_t n) override;
    void mse_backward(float* dpred, const float* pred, const float* target, int64_t n, float scale) override;
    void l2_norm(float* out, const float* x, int64_t n) override;
    void adamw(float* params, const float* grads, float* m, float* v, const AdamWSegment* segments,
               int64_t num_segments, const AdamWParams& p, const float* grad_norm, uint16_t* params_bf16) override;
    void round_to_bf16(uint16_t* dst, const float* src, int64_t n) override;
    void residual_layernorm_forward(float* mid, Dest out, float* mean, float* rstd,
                                    const float* x, const float* y, const float* gamma, const float* sample_scale,
                                    const float* weight, const float* bias, int64_t B, int64_t T, int64_t C,
                                    float eps) override;

    std::unique_ptr<DeviceCommunicator> make_device_communicator(Communicator& host, std::string* why_not) override;

    bool can_record() const override { return graphs_; }
    void begin_recording() override;
    std::unique_ptr<Recording> end_recording() override;

    // Which GEMM implementation this backend uses (for tests and reports).
    GemmKind gemm_kind() const { return gemm_kind_; }
    bool tf32() const { return tf32_; }
    cudaStream_t stream() const { return stream_; }
    int device() const { return device_; }

private:
    // Makes this backend's device current on the calling thread (contexts on different devices
    // may be used from one thread).
    void use_device() const;
    // Scratch device memory for the duration of one op (not zeroed, not counted): returned to the
    // cache when the Scratch dies; later ops on the stream may reuse it, which the stream orders.
    class Scratch;
    void* raw_alloc(size_t bytes);
    void raw_release(void* p) noexcept;
    // Row-major GEMM on the chosen implementation (no device switch: callers did it).
    void run_gemm(const GemmArgs& g);
    // precision.cu: false when cuBLASLt could not run it and `fallback` is false (nothing done).
    bool run_gemm_bf16(const GemmArgs& g, bool fallback);
    bool run_gemm_epilogue(const GemmArgs& g);
    // attention.cu: the heads of src gathered head-major into dst (bf16 values for bf16 products)
    void gather_heads(const Scratch& dst, const float* src, int64_t ld, const AttentionShape& s, int64_t N);
    // patchify (idx null, n_sel = every patch) and patchify_gather
    void launch_patchify(float* out, const float* img, const int32_t* idx, int64_t B, int64_t n_sel, int64_t C,
                         int64_t H, int64_t W, int64_t p, PatchOrder order);
    // out[c] = sum_r a[r * ld + c] (overwritten): the bias gradient of a GEMM (GemmArgs::bias_grad)
    // where no epilogue computed it; bf16: the sum of the bf16 values (a16's, or a's rounded).
    void operand_column_sums(float* out, const float* a, const uint16_t* a16, int64_t ld, int64_t rows, int64_t cols,
                             bool bf16);
    void launch_round_bf16(uint16_t* dst, const float* src, int64_t n);

    int device_ = 0;
    cudaStream_t stream_ = nullptr;
    std::unique_ptr<DeviceAllocator> allocator_;
    GemmKind gemm_kind_ = GemmKind::Simt;
    bool tf32_ = false;
    std::unique_ptr<CublasLtGemm> cublaslt_;
    void* cublaslt_workspace_ = nullptr;  // 32 MiB from the allocator (not counted)
    std::string description_;
    int sm_count_ = 1;
    bool graphs_ = true;  // Options::graphs
    // While recording: every block the recorded ops allocated (with its size class), and those
    // released again (free for reuse within the recording).
    struct RecordPool {
        std::vector<std::pair<void*, size_t>> all, free;
    };
    std::unique_ptr<RecordPool> record_pool_;
    void* record_alloc(size_t bytes);
    bool record_release(void* p);
    friend class CudaRecording;

    std::mutex pinned_mutex_;
    std::unordered_map<void*, size_t> pinned_;  // pinned host blocks and their sizes

    // AdamW segments cached on the device (re-uploaded only when they change).
    std::vector<AdamWSegment> adamw_host_;
    void* adamw_device_ = nullptr;  // [offset int64, prefix int64, weight decay as double] x n
    size_t adamw_capacity_ = 0;
    void* adamw_staging_ = nullptr;  // pinned staging of the upload
    cudaEvent_t adamw_uploaded_ = nullptr;
};

// Device memory for the duration of one op: not zeroed, not counted, back to the cache at the
// end of the scope. Work queued on the stream may still use it after the op returns; a later
// op that receives the same block runs after that work, in stream order.
class CudaBackend::Scratch {
public:
    Scratch(CudaBackend& be, size_t bytes) : be_(be), p_(be.raw_alloc(bytes)) {}
    ~Scratch() { be_.raw_release(p_); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    template <class T>
    T* as() const {
        return static_cast<T*>(p_);
    }

private:
    CudaBackend& be_;
    void* p_;
};

}  // namespace cae::cuda
