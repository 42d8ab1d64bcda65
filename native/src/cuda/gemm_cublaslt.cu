// Row-major GEMMs through cuBLASLt (column-major) by the transposition identity
//   C = op(A) op(B)  <=>  C^T = op(B)^T op(A)^T,
// since a row-major matrix with row stride ld is the column-major transpose with the same ld.
// So cuBLASLt's "A" is our B and its "B" is our A, m and n swap, and each transpose flag keeps
// its value (see the layout table in plan_for). One plan per shape: descriptors plus the
// heuristic's first algorithm for the pointer alignments seen, cached until destruction.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/error.h"
#include "cuda/cuda_check.h"
#include "cuda/gemm.h"

#include <library_types.h>

static_assert(cae::cuda::lt::kDataR32F == CUDA_R_32F, "CUDA_R_32F");
static_assert(cae::cuda::lt::kDataR16BF == CUDA_R_16BF, "CUDA_R_16BF");

namespace cae::cuda {

namespace {

// Largest power of two (<= 256) dividing the byte address, the row stride and, for a batch, the
// batch stride. The row stride counts even where it is not used (one row or column): the
// alignment is what the algorithm may assume, so it is never claimed higher than every number
// the layout carries.
uint32_t alignment_of(const void* p, int64_t ld, int64_t stride, bool batched, size_t element_bytes) {
    uint64_t a = reinterpret_cast<uint64_t>(p) | 256u | static_cast<uint64_t>(ld) * element_bytes;
    if (batched) a |= static_cast<uint64_t>(stride) * element_bytes;
    return static_cast<uint32_t>(a & (~a + 1));  // lowest set bit
}

// The row stride a column-major layout of rows x cols gets: cuBLASLt requires ld >= rows even
// for a single column, where it is never used.
int64_t layout_ld(int64_t rows, int64_t cols, int64_t ld) { return cols == 1 ? std::max(ld, rows) : ld; }

}  // namespace

bool CublasLtGemm::Key::operator<(const Key& o) const {
    auto tie = [](const Key& k) {
        return std::make_tuple(k.ta, k.tb, k.m, k.n, k.k, k.lda, k.ldb, k.ldc, k.sa, k.sb, k.sc, k.batch,
                               k.align_a, k.align_b, k.align_c, k.bf16, k.bias, k.bgrad);
    };
    return tie(*this) < tie(o);
}

CublasLtGemm::CublasLtGemm(std::shared_ptr<const CublasLtLibrary> lib, cudaStream_t stream, bool tf32,
                           void* workspace, size_t workspace_bytes)
    : lib_(std::move(lib)), api_(lib_->api), stream_(stream), tf32_(tf32), workspace_(workspace),
      workspace_bytes_(workspace_bytes) {
    lt::Status st = api_.create(&handle_);
    if (st != lt::kStatusSuccess) fail_status("cublasLtCreate", st);
}

CublasLtGemm::~CublasLtGemm() {
    for (auto& [key, plan] : plans_) destroy_plan(plan);
    if (handle_ != nullptr) api_.destroy(handle_);
}

void CublasLtGemm::fail_status(const char* call, lt::Status status) const {
    const char* text = api_.get_status_string ? api_.get_status_string(status) : nullptr;
    fail(CAE_ERR_DEVICE, call, " failed: cublasStatus ", status, text ? cat(" (", text, ")") : std::string());
}

void CublasLtGemm::destroy_plan(Plan& p) noexcept {
    if (p.layout_a) api_.matrix_layout_destroy(p.layout_a);
    if (p.layout_b) api_.matrix_layout_destroy(p.layout_b);
    if (p.layout_c) api_.matrix_layout_destroy(p.layout_c);
    if (p.desc) api_.matmul_desc_destroy(p.desc);
    p = Plan{};
}

CublasLtGemm::Plan& CublasLtGemm::plan_for(const Key& key) {
    auto found = plans_.find(key);
    if (found != plans_.end()) return found->second;

    Plan p;
    auto check = [&](const char* call, lt::Status st) {
        if (st != lt::kStatusSuccess) {
            destroy_plan(p);
            fail_status(call, st);
        }
    };
    check("cublasLtMatmulDescCreate",
          api_.matmul_desc_create(&p.desc, tf32_ && !key.bf16 ? lt::kCompute32FFastTF32 : lt::kCompute32F,
                                  lt::kDataR32F));
    const int32_t op_a = key.tb ? lt::kOpT : lt::kOpN;  // cuBLASLt's A is our B
    const int32_t op_b = key.ta ? lt::kOpT : lt::kOpN;  // cuBLASLt's B is our A
    check("cublasLtMatmulDescSetAttribute(TRANSA)",
          api_.matmul_desc_set_attribute(p.desc, lt::kDescTransA, &op_a, sizeof(op_a)));
    check("cublasLtMatmulDescSetAttribute(TRANSB)",
          api_.matmul_desc_set_attribute(p.desc, lt::kDescTransB, &op_b, sizeof(op_b)));
    // Our C[i, j] += bias[j] is D^T's rows in cuBLASLt's view: the BIAS epilogue's broadcast over
    // D's columns, with D's n rows (our columns) the bias length.
    // Our bias gradient (sums of op(A) over k, one per row of our C) is the sums of cuBLASLt's op(B)
    // over k, one per column of D: the BGRADB epilogue.
    const uint32_t epilogue = key.bias ? lt::kEpilogueBias : key.bgrad ? lt::kEpilogueBgradB : lt::kEpilogueDefault;
    check("cublasLtMatmulDescSetAttribute(EPILOGUE)",
          api_.matmul_desc_set_attribute(p.desc, lt::kDescEpilogue, &epilogue, sizeof(epilogue)));

    // Column-major views (rows x cols, ld), with ld raised to rows for a single column, where
    // cuBLASLt still requires ld >= rows although it is never used:
    //   our B, no trans: N x K (ld ldb)   trans: K x N
    //   our A, no trans: K x M (ld lda)   trans: M x K
    //   C: N x M (ld ldc)
    // BF16: A and B in bfloat16, C and D in fp32, fp32 compute (the tensor cores' bf16 path).
    auto layout = [&](const char* what, void** out, int64_t rows, int64_t cols, int64_t ld, int64_t stride,
                      int type) {
        ld = layout_ld(rows, cols, ld);
        check(what, api_.matrix_layout_create(out, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
        if (key.batch > 1) {
            const int32_t count = static_cast<int32_t>(key.batch);
            check("cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)",
                  api_.matrix_layout_set_attribute(*out, lt::kLayoutBatchCount, &count, sizeof(count)));
            check("cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)",
                  api_.matrix_layout_set_attribute(*out, lt::kLayoutStridedBatchOffset, &stride, sizeof(stride)));
        }
    };
    const int operand_type = key.bf16 ? lt::kDataR16BF : lt::kDataR32F;
    layout("cublasLtMatrixLayoutCreate(B)", &p.layout_a, key.tb ? key.k : key.n, key.tb ? key.n : key.k, key.ldb,
           key.sb, operand_type);
    layout("cublasLtMatrixLayoutCreate(A)", &p.layout_b, key.ta ? key.m : key.k, key.ta ? key.k : key.m, key.lda,
           key.sa, operand_type);
    layout("cublasLtMatrixLayoutCreate(C)", &p.layout_c, key.n, key.m, key.ldc, key.sc, lt::kDataR32F);

    void* pref = nullptr;
    check("cublasLtMatmulPreferenceCreate", api_.matmul_preference_create(&pref));
    auto set_pref = [&](int attr, const void* v, size_t n) {
        lt::Status st = api_.matmul_preference_set_attribute(pref, attr, v, n);
        if (st != lt::kStatusSuccess) {
            api_.matmul_preference_destroy(pref);
            check("cublasLtMatmulPreferenceSetAttribute", st);
        }
    };
    const uint64_t ws = workspace_bytes_;
    set_pref(lt::kPrefMaxWorkspaceBytes, &ws, sizeof(ws));
    // cuBLASLt's A, B are our B, A.
    set_pref(lt::kPrefMinAlignmentA, &key.align_b, sizeof(uint32_t));
    set_pref(lt::kPrefMinAlignmentB, &key.align_a, sizeof(uint32_t));
    set_pref(lt::kPrefMinAlignmentC, &key.align_c, sizeof(uint32_t));
    set_pref(lt::kPrefMinAlignmentD, &key.align_c, sizeof(uint32_t));

    lt::HeuristicSlot slot;
    std::memset(&slot, 0, sizeof(slot));
    int returned = 0;
    lt::Status st = api_.matmul_algo_get_heuristic(handle_, p.desc, p.layout_a, p.layout_b, p.layout_c, p.layout_c,
                                                   pref, 1, &slot.result, &returned);
    api_.matmul_preference_destroy(pref);
    // "No algorithm for this shape" comes as success with nothing returned, or as NOT_SUPPORTED, or
    // (for some single-row or single-column operands) INVALID_VALUE: each selects the fallback kernel.
    const bool no_algorithm = st == lt::kStatusNotSupported || st == lt::kStatusInvalidValue;
    if (!no_algorithm) check("cublasLtMatmulAlgoGetHeuristic", st);
    if (no_algorithm || returned < 1 || slot.result.state != lt::kStatusSuccess) {
        destroy_plan(p);
        p.usable = false;
        report_unusable(key, no_algorithm ? cat("cublasLtMatmulAlgoGetHeuristic returned cublasStatus ", st)
                                          : cat("cublasLtMatmulAlgoGetHeuristic found no algorithm (returned ",
                                                returned, ", state ", slot.result.state, ")"));
        return plans_.emplace(key, p).first->second;
    }
    p.algo = slot.result.algo;
    p.workspace = slot.result.workspace_size;
    return plans_.emplace(key, p).first->second;
}

bool CublasLtGemm::run(const GemmArgs& g) {
    // BF16 reads the operands' bf16 copies, which the caller provides.
    const bool bf16 = g.precision == GemmPrecision::BF16;
    CAE_REQUIRE(!bf16 || (g.a_bf16 != nullptr && g.b_bf16 != nullptr), "cuBLASLt BF16 GEMM without bf16 operands");
    CAE_REQUIRE(g.bias == nullptr || g.batch == 1, "cuBLASLt GEMM with a bias and batch ", g.batch);
    CAE_REQUIRE(g.bias_grad == nullptr || (g.batch == 1 && g.trans_a && g.alpha == 1.0f && g.bias == nullptr),
                "cuBLASLt GEMM with a bias gradient needs batch 1, trans_a, alpha 1 and no bias");
    const size_t esz = bf16 ? sizeof(uint16_t) : sizeof(float);
    const void* a0 = bf16 ? static_cast<const void*>(g.a_bf16) : static_cast<const void*>(g.a);
    const void* b0 = bf16 ? static_cast<const void*>(g.b_bf16) : static_cast<const void*>(g.b);
    // A zero batch stride of A or B (one matrix shared by every item) is done item by item.
    const bool per_item = g.batch > 1 && (g.stride_a == 0 || g.stride_b == 0);
    const int64_t calls = per_item ? g.batch : 1;
    const int64_t batch = per_item ? 1 : g.batch;
    const bool batched = batch > 1;
    // The row strides of the column-major layouts plan_for makes (see the table there).
    const int64_t ld_a = g.trans_a ? layout_ld(g.m, g.k, g.lda) : layout_ld(g.k, g.m, g.lda);
    const int64_t ld_b = g.trans_b ? layout_ld(g.k, g.n, g.ldb) : layout_ld(g.n, g.k, g.ldb);
    const int64_t ld_c = layout_ld(g.n, g.m, g.ldc);
    // Per-item calls start at a + i * stride_a: their alignment includes the strides too.
    const bool strided = g.batch > 1;
    Key key{g.trans_a, g.trans_b, g.m, g.n, g.k,
            g.lda, g.ldb, g.ldc,
            batched ? g.stride_a : 0, batched ? g.stride_b : 0, batched ? g.stride_c : 0, batch,
            alignment_of(a0, ld_a, g.stride_a, strided, esz),
            alignment_of(b0, ld_b, g.stride_b, strided, esz),
            alignment_of(g.c, ld_c, g.stride_c, strided, sizeof(float)),
            bf16, g.bias != nullptr, g.bias_grad != nullptr};
    Plan& p = plan_for(key);
    if (!p.usable) return false;
    if (g.bias != nullptr || g.bias_grad != nullptr) {
        const void* bias = g.bias != nullptr ? static_cast<const void*>(g.bias) : static_cast<const void*>(g.bias_grad);
        lt::Status st = api_.matmul_desc_set_attribute(p.desc, lt::kDescBiasPointer, &bias, sizeof(bias));
        if (st != lt::kStatusSuccess) fail_status("cublasLtMatmulDescSetAttribute(BIAS_POINTER)", st);
    }
    for (int64_t i = 0; i < calls; ++i) {
        const void* a = static_cast<const char*>(a0) + static_cast<size_t>(i * g.stride_a) * esz;
        const void* b = static_cast<const char*>(b0) + static_cast<size_t>(i * g.stride_b) * esz;
        float* c = g.c + i * g.stride_c;
        lt::Status st = api_.matmul(handle_, p.desc, &g.alpha, b, p.layout_a, a, p.layout_b, &g.beta, c, p.layout_c, c,
                                    p.layout_c, &p.algo, workspace_, workspace_bytes_, stream_);
        if (st != lt::kStatusSuccess) {
            if (i > 0) fail_status("cublasLtMatmul", st);  // some items are done: no clean fallback
            const char* text = api_.get_status_string ? api_.get_status_string(st) : nullptr;
            report_unusable(key, cat("cublasLtMatmul failed: cublasStatus ", st, text ? cat(" (", text, ")") : ""));
            destroy_plan(p);
            p.usable = false;
            return false;
        }
        if (debug_sync()) CAE_CUDA_CHECK(cudaDeviceSynchronize());
    }
    return true;
}

void CublasLtGemm::report_unusable(const Key& key, const std::string& why) {
    std::fprintf(stderr,
                 "cae: %s for %s%s m %lld n %lld k %lld trans %d%d ld %lld/%lld/%lld batch %lld alignments %u/%u/%u; "
                 "this shape uses a fallback kernel\n",
                 why.c_str(), key.bf16 ? "bf16" : "fp32", key.bias ? " + bias" : key.bgrad ? " + bias gradient" : "", static_cast<long long>(key.m), static_cast<long long>(key.n),
                 static_cast<long long>(key.k), key.ta ? 1 : 0, key.tb ? 1 : 0, static_cast<long long>(key.lda),
                 static_cast<long long>(key.ldb), static_cast<long long>(key.ldc), static_cast<long long>(key.batch),
                 key.align_a, key.align_b, key.align_c);
}

}  // namespace cae::cuda
