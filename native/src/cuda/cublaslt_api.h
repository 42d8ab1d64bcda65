// Our own declarations of the few cuBLASLt entry points, types and enum values libcae uses.
// Build machines have no cuBLAS headers (see docs/gpu-notes.md), so the library is opened at
// run time (cublaslt_loader.h) and called through these function pointer types.
//
// Values were checked against the public cuBLAS documentation and headers:
//  - cublasLtMatrixLayoutAttribute_t, cublasLtMatmulDescAttributes_t,
//    cublasLtMatmulPreferenceAttributes_t: NVIDIA's nvmath-python "latest" bindings pages
//    (docs.nvidia.com/cuda/nvmath-python/latest/bindings/generated/
//    nvmath.bindings.cublasLt.{MatrixLayoutAttribute,MatmulDescAttribute,
//    MatmulPreferenceAttribute}.html), which cover cuBLAS 12.9/13 (they list the 13.x grouped
//    attributes), and cublasLt.h as published in public repositories (e.g. llama.cpp's
//    include/cuda/cublasLt.h). The values used here are unchanged since CUDA 11.
//  - cublasLtEpilogue_t (DEFAULT = 1, BIAS = 4, BGRADB = 512) and the EPILOGUE (7) /
//    BIAS_POINTER (8) attributes: nvmath.bindings.cublasLt.Epilogue and .MatmulDescAttribute.
//    The bias (or bias gradient) vector's type defaults to D's (fp32 here). The GELU epilogues
//    are not used: cuBLASLt's GELU is the tanh approximation (PyTorch's _addmm_activation
//    matches gelu(approximate="tanh") on CUDA), and CAE's MLP uses the exact erf GELU.
//  - cublasComputeType_t: cuBLAS docs section 2.2.11 and nvmath.bindings.cublas.ComputeType
//    (COMPUTE_32F = 68, COMPUTE_32F_FAST_TF32 = 77).
//  - cublasOperation_t (CUBLAS_OP_N = 0, CUBLAS_OP_T = 1), cublasStatus_t (SUCCESS = 0):
//    cuBLAS docs sections 2.2.2, 2.2.3.
//  - cudaDataType CUDA_R_32F = 0, CUDA_R_16BF = 14: library_types.h of the CUDA toolkit (present
//    here; gemm_cublaslt.cu checks them against it).
//  - cublasLtMatmulAlgo_t (uint64_t data[8]) and cublasLtMatmulHeuristicResult_t (algo,
//    size_t workspaceSize, cublasStatus_t state, float wavesCount, int reserved[4]): cublasLt.h.
//    The heuristic result is only ever written by the library into a larger zeroed buffer
//    (see CublasLtHeuristicSlot) so that a grown struct in a later version cannot overrun it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cae::cuda::lt {

using Status = int;                     // cublasStatus_t
constexpr Status kStatusSuccess = 0;    // CUBLAS_STATUS_SUCCESS
constexpr Status kStatusInvalidValue = 7;    // CUBLAS_STATUS_INVALID_VALUE
constexpr Status kStatusNotSupported = 15;   // CUBLAS_STATUS_NOT_SUPPORTED

using Handle = void*;                   // cublasLtHandle_t (pointer to an opaque context)
using MatmulDesc = void*;               // cublasLtMatmulDesc_t
using MatrixLayout = void*;             // cublasLtMatrixLayout_t
using MatmulPreference = void*;         // cublasLtMatmulPreference_t
using Stream = void*;                   // cudaStream_t (a pointer to CUstream_st)

// cublasComputeType_t
constexpr int kCompute32F = 68;          // CUBLAS_COMPUTE_32F
constexpr int kCompute32FFastTF32 = 77;  // CUBLAS_COMPUTE_32F_FAST_TF32

// cudaDataType
constexpr int kDataR32F = 0;    // CUDA_R_32F
constexpr int kDataR16BF = 14;  // CUDA_R_16BF

// cublasOperation_t
constexpr int32_t kOpN = 0;  // CUBLAS_OP_N
constexpr int32_t kOpT = 1;  // CUBLAS_OP_T

// cublasLtMatrixLayoutAttribute_t (value type in the comment)
constexpr int kLayoutBatchCount = 5;          // CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, int32_t
constexpr int kLayoutStridedBatchOffset = 6;  // CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, int64_t

// cublasLtMatmulDescAttributes_t
constexpr int kDescTransA = 3;       // CUBLASLT_MATMUL_DESC_TRANSA, int32_t (cublasOperation_t)
constexpr int kDescTransB = 4;       // CUBLASLT_MATMUL_DESC_TRANSB, int32_t
constexpr int kDescEpilogue = 7;     // CUBLASLT_MATMUL_DESC_EPILOGUE, uint32_t (cublasLtEpilogue_t)
constexpr int kDescBiasPointer = 8;  // CUBLASLT_MATMUL_DESC_BIAS_POINTER, const void*

// cublasLtEpilogue_t
constexpr uint32_t kEpilogueDefault = 1;  // CUBLASLT_EPILOGUE_DEFAULT
constexpr uint32_t kEpilogueBias = 4;     // CUBLASLT_EPILOGUE_BIAS: D += bias broadcast over D's columns
constexpr uint32_t kEpilogueBgradB = 512; // CUBLASLT_EPILOGUE_BGRADB: bias = sums of op(B) over k, one per column of D

// cublasLtMatmulPreferenceAttributes_t
constexpr int kPrefMaxWorkspaceBytes = 1;  // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t
constexpr int kPrefMinAlignmentA = 5;      // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, uint32_t
constexpr int kPrefMinAlignmentB = 6;      // ..._B_BYTES
constexpr int kPrefMinAlignmentC = 7;      // ..._C_BYTES
constexpr int kPrefMinAlignmentD = 8;      // ..._D_BYTES

struct MatmulAlgo {  // cublasLtMatmulAlgo_t
    uint64_t data[8];
};

struct HeuristicResult {  // cublasLtMatmulHeuristicResult_t
    MatmulAlgo algo;
    size_t workspace_size;
    Status state;
    float waves_count;
    int reserved[4];
};
static_assert(sizeof(MatmulAlgo) == 64, "cublasLtMatmulAlgo_t is 64 bytes");
static_assert(offsetof(HeuristicResult, workspace_size) == 64, "cublasLtMatmulHeuristicResult_t layout");
static_assert(sizeof(HeuristicResult) == 96, "cublasLtMatmulHeuristicResult_t is 96 bytes");

// The buffer handed to cublasLtMatmulAlgoGetHeuristic for one result: a zeroed HeuristicResult
// followed by slack.
union HeuristicSlot {
    HeuristicResult result;
    unsigned char bytes[512];
};

// Function pointer types, in the order of the entry point table in CublasLt.
using PfnCreate = Status (*)(Handle*);
using PfnDestroy = Status (*)(Handle);
using PfnGetVersion = size_t (*)();
using PfnMatmulDescCreate = Status (*)(MatmulDesc*, int compute_type, int scale_type);
using PfnMatmulDescDestroy = Status (*)(MatmulDesc);
using PfnMatmulDescSetAttribute = Status (*)(MatmulDesc, int attr, const void* buf, size_t size);
using PfnMatrixLayoutCreate = Status (*)(MatrixLayout*, int type, uint64_t rows, uint64_t cols, int64_t ld);
using PfnMatrixLayoutDestroy = Status (*)(MatrixLayout);
using PfnMatrixLayoutSetAttribute = Status (*)(MatrixLayout, int attr, const void* buf, size_t size);
using PfnMatmulPreferenceCreate = Status (*)(MatmulPreference*);
using PfnMatmulPreferenceDestroy = Status (*)(MatmulPreference);
using PfnMatmulPreferenceSetAttribute = Status (*)(MatmulPreference, int attr, const void* buf, size_t size);
using PfnMatmulAlgoGetHeuristic = Status (*)(Handle, MatmulDesc, MatrixLayout a, MatrixLayout b, MatrixLayout c,
                                             MatrixLayout d, MatmulPreference, int requested,
                                             HeuristicResult* results, int* returned);
using PfnMatmul = Status (*)(Handle, MatmulDesc, const void* alpha, const void* a, MatrixLayout a_desc,
                             const void* b, MatrixLayout b_desc, const void* beta, const void* c,
                             MatrixLayout c_desc, void* d, MatrixLayout d_desc, const MatmulAlgo* algo,
                             void* workspace, size_t workspace_bytes, Stream stream);
using PfnGetStatusString = const char* (*)(Status);  // optional (cublasLtGetStatusString)

// The resolved entry points of one loaded libcublasLt.
struct Api {
    PfnCreate create = nullptr;
    PfnDestroy destroy = nullptr;
    PfnGetVersion get_version = nullptr;
    PfnMatmulDescCreate matmul_desc_create = nullptr;
    PfnMatmulDescDestroy matmul_desc_destroy = nullptr;
    PfnMatmulDescSetAttribute matmul_desc_set_attribute = nullptr;
    PfnMatrixLayoutCreate matrix_layout_create = nullptr;
    PfnMatrixLayoutDestroy matrix_layout_destroy = nullptr;
    PfnMatrixLayoutSetAttribute matrix_layout_set_attribute = nullptr;
    PfnMatmulPreferenceCreate matmul_preference_create = nullptr;
    PfnMatmulPreferenceDestroy matmul_preference_destroy = nullptr;
    PfnMatmulPreferenceSetAttribute matmul_preference_set_attribute = nullptr;
    PfnMatmulAlgoGetHeuristic matmul_algo_get_heuristic = nullptr;
    PfnMatmul matmul = nullptr;
    PfnGetStatusString get_status_string = nullptr;  // may stay null
};

}  // namespace cae::cuda::lt
