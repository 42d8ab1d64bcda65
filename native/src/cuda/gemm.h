// The GEMM implementations of the CUDA backend, all with the semantics of backend.h's GemmArgs
// (row-major, C = alpha op(A) op(B) + beta C per batch item; beta == 0 never reads C).
//  - CublasLt: cuBLASLt opened at run time, fp32 compute (TF32 only when asked for); BF16
//              GEMMs with bf16 A and B (precision.cu makes the copies).
//  - Simt:     our tiled fp32 kernel (FFMA); the default when cuBLASLt is absent.
//  - Mma:      our tensor-core kernel (mma.sync m16n8k8 TF32), three products per pair of tiles
//              ("3xTF32": a_hi b_hi + a_hi b_lo + a_lo b_hi) for close to fp32 accuracy, or one
//              when TF32 is allowed.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "cuda/cublaslt_loader.h"

namespace cae::cuda {

enum class GemmKind { CublasLt, Simt, Mma };

const char* gemm_kind_name(GemmKind kind);

// The GEMM that Options::gemm (CAE_GEMM, options.h) asks for; `forced` tells whether it named one.
// Throws CAE_ERR_UNSUPPORTED for an unknown value, or for "cublaslt" when it is not loaded.
GemmKind gemm_kind_from_environment(bool cublaslt_loaded, bool* forced = nullptr);

// ---- fallback kernels (gemm_fallback.cu); launch on `stream`, check the launch
void gemm_simt(const GemmArgs& g, cudaStream_t stream);
void gemm_mma(const GemmArgs& g, bool single_pass_tf32, cudaStream_t stream);
// C = beta C for every batch item (k == 0 or alpha == 0: no product to add); beta == 0 writes 0.
void gemm_scale_c(const GemmArgs& g, cudaStream_t stream);

// ---- cuBLASLt (gemm_cublaslt.cu)
// One per backend: a cuBLASLt handle, a 32 MiB workspace and the per-shape plans (descriptors
// and the heuristic's algorithm), created on first use of a shape and kept until destruction.
class CublasLtGemm {
public:
    // `workspace` (workspace_bytes, 256-byte aligned) is device memory the caller owns and
    // keeps alive longer than this object (32 MiB is what cuBLASLt recommends for Hopper).
    // Throws CAE_ERR_DEVICE when cuBLASLt fails to initialize.
    CublasLtGemm(std::shared_ptr<const CublasLtLibrary> lib, cudaStream_t stream, bool tf32, void* workspace,
                 size_t workspace_bytes);
    ~CublasLtGemm();
    CublasLtGemm(const CublasLtGemm&) = delete;
    CublasLtGemm& operator=(const CublasLtGemm&) = delete;

    // g with m, n, k >= 1 and alpha != 0 (the caller handles the degenerate cases); for BF16,
    // g.a_bf16 and g.b_bf16 are set (bf16 A and B, fp32 C); a bias only with batch 1, added by the
    // BIAS epilogue; a bias gradient only with batch 1, trans_a, alpha 1 and no bias, written by
    // the BGRADB epilogue (cuBLASLt's B is our A). Returns false
    // (having done nothing) for a shape cuBLASLt offers no algorithm for or refuses to run: the
    // caller then uses a fallback kernel. Such a shape is reported once on stderr.
    bool run(const GemmArgs& g);

    size_t plans() const { return plans_.size(); }

private:
    struct Key {
        bool ta, tb;
        int64_t m, n, k, lda, ldb, ldc, sa, sb, sc, batch;
        uint32_t align_a, align_b, align_c;
        bool bf16;
        bool bias;   // the BIAS epilogue
        bool bgrad;  // the BGRADB epilogue
        bool operator<(const Key& o) const;
    };
    struct Plan {
        void* desc = nullptr;
        void* layout_a = nullptr;  // cuBLASLt's "A" = our B (see gemm_cublaslt.cu)
        void* layout_b = nullptr;  // cuBLASLt's "B" = our A
        void* layout_c = nullptr;
        lt::MatmulAlgo algo{};
        size_t workspace = 0;
        bool usable = true;  // false: cuBLASLt had no algorithm, or failed to run one
    };
    Plan& plan_for(const Key& key);
    void destroy_plan(Plan& p) noexcept;
    static void report_unusable(const Key& key, const std::string& why);
    [[noreturn]] void fail_status(const char* call, lt::Status status) const;

    std::shared_ptr<const CublasLtLibrary> lib_;
    const lt::Api& api_;
    cudaStream_t stream_;
    bool tf32_;
    void* handle_ = nullptr;
    void* workspace_ = nullptr;
    size_t workspace_bytes_ = 0;
    std::map<Key, Plan> plans_;
};

}  // namespace cae::cuda
