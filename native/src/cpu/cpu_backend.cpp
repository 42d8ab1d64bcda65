#include "cpu/cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/context.h"
#include "core/error.h"
#include "core/memory_stats.h"

namespace cae {

std::unique_ptr<Backend> make_cpu_backend(int num_threads) {
    return std::make_unique<cpu::CpuBackend>(num_threads);
}

}  // namespace cae

namespace cae::cpu {

namespace {

// Backend ("device") memory of the CPU backend is host memory with a size header, so that
// release() can account for it without a size argument.
constexpr size_t kHeader = 64;

void* alloc_with_header(size_t bytes, MemoryPlace place) {
    char* base = static_cast<char*>(aligned_zeroed_alloc(bytes + kHeader));
    count_allocation(place, static_cast<int64_t>(bytes));
    std::memcpy(base, &bytes, sizeof(bytes));
    return base + kHeader;
}

void release_with_header(void* p, MemoryPlace place) noexcept {
    if (p == nullptr) return;
    char* base = static_cast<char*>(p) - kHeader;
    size_t bytes;
    std::memcpy(&bytes, base, sizeof(bytes));
    count_release(place, static_cast<int64_t>(bytes));
    std::free(base);
}

}  // namespace

CpuBackend::CpuBackend(int num_threads) : threads_(num_threads > 0 ? num_threads : 1) {}

std::string CpuBackend::description() const {
    return cat("cpu: ", threads_, threads_ == 1 ? " thread" : " threads", ", GEMM ",
               have_blas() ? "openblas" : "built-in");
}

void* CpuBackend::alloc(size_t bytes) { return alloc_with_header(bytes, MemoryPlace::Device); }
void CpuBackend::release(void* p) noexcept { release_with_header(p, MemoryPlace::Device); }
void* CpuBackend::alloc_pinned_host(size_t bytes) { return alloc_with_header(bytes, MemoryPlace::Host); }
void CpuBackend::release_pinned_host(void* p) noexcept { release_with_header(p, MemoryPlace::Host); }

void CpuBackend::copy_to_device(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void CpuBackend::copy_to_host(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
void CpuBackend::copy_on_device(void* dst, const void* src, size_t bytes) { std::memmove(dst, src, bytes); }
void CpuBackend::fill_bytes(void* dst, uint8_t value, size_t bytes) { std::memset(dst, value, bytes); }

namespace {

// The operand of a BF16 GEMM as fp32 values rounded to bf16: the span [x, x + span) rounded (or
// widened from the given bf16 copy) into `buf`; returns where x's first element went.
const float* bf16_operand(const float* x, const uint16_t* x_bf16, int64_t span, std::vector<float>& buf) {
    buf.resize(static_cast<size_t>(span));
    float* out = buf.data();
    if (x_bf16 != nullptr) {
        for (int64_t i = 0; i < span; ++i) out[i] = bf16_to_float(x_bf16[i]);
    } else {
        for (int64_t i = 0; i < span; ++i) out[i] = bf16_to_float(float_to_bf16(x[i]));
    }
    return out;
}

}  // namespace

void CpuBackend::gemm(const GemmArgs& g) {
    if (g.bias_grad != nullptr) {  // the product, then the sums of A's columns (A is stored k x m)
        CAE_REQUIRE(g.trans_a && g.batch == 1, "a GEMM's bias gradient needs trans_a and batch 1, got trans_a ",
                    g.trans_a, " batch ", g.batch);
        GemmArgs r = g;
        r.bias_grad = nullptr;
        gemm(r);
        fill(g.bias_grad, 0.0f, g.m);
        if (g.m <= 0 || g.k <= 0) return;
        std::vector<float> a_buf;
        const float* a = g.precision == GemmPrecision::BF16 ? bf16_operand(g.a, g.a_bf16, gemm_span_a(g), a_buf) : g.a;
        bias_backward(g.bias_grad, a, g.lda, g.k, g.m);
        return;
    }
    if (g.bias != nullptr) {  // the product, then the bias per batch item
        GemmArgs r = g;
        r.bias = nullptr;
        gemm(r);
        for (int64_t b = 0; b < g.batch && g.m > 0 && g.n > 0; ++b) add_bias(g.c + b * g.stride_c, g.ldc, g.bias, g.m, g.n);
        return;
    }
    if (g.precision == GemmPrecision::BF16 && g.m > 0 && g.n > 0 && g.k > 0 && g.batch > 0) {
        // The same GEMM on operands rounded to bf16: products of bf16 values are exact in fp32,
        // so this is what a tensor core computes, up to the order of the fp32 sums.
        std::vector<float> a_buf, b_buf;
        GemmArgs r = g;
        r.precision = GemmPrecision::FP32;
        r.a = bf16_operand(g.a, g.a_bf16, gemm_span_a(g), a_buf);
        r.b = bf16_operand(g.b, g.b_bf16, gemm_span_b(g), b_buf);
        r.a_bf16 = r.b_bf16 = nullptr;
        gemm(r);
        return;
    }
    if (have_blas()) {
        gemm_blas(g, threads_);
    } else {
        gemm_builtin(g, threads_);
    }
}

void CpuBackend::round_to_bf16(uint16_t* dst, const float* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = float_to_bf16(src[i]);
}

// The fp32 op into a temporary, then the rounding: by definition the same numbers.
void CpuBackend::layernorm_forward_bf16(uint16_t* out, float* mean, float* rstd, const float* x, const float* weight,
                                        const float* bias, int64_t rows, int64_t C, float eps) {
    std::vector<float> tmp(static_cast<size_t>(rows * C));
    layernorm_forward(tmp.data(), mean, rstd, x, weight, bias, rows, C, eps);
    round_to_bf16(out, tmp.data(), rows * C);
}

void CpuBackend::residual_layernorm_forward(float* mid, float* out, uint16_t* out_bf16, float* mean, float* rstd,
                                            const float* x, const float* y, const float* gamma,
                                            const float* sample_scale, const float* weight, const float* bias,
                                            int64_t B, int64_t T, int64_t C, float eps) {
    residual_forward(mid, x, y, gamma, sample_scale, B, T, C);
    if (out != nullptr) {
        layernorm_forward(out, mean, rstd, mid, weight, bias, B * T, C, eps);
    } else {
        layernorm_forward_bf16(out_bf16, mean, rstd, mid, weight, bias, B * T, C, eps);
    }
}

void CpuBackend::gelu_backward_bf16(uint16_t* dx, const float* dout, const float* x, int64_t n) {
    if (n <= 0) return;
    std::vector<float> tmp(static_cast<size_t>(n), 0.0f);
    gelu_backward(tmp.data(), dout, x, n);
    round_to_bf16(dx, tmp.data(), n);
}

void CpuBackend::residual_backward_bf16(uint16_t* dy, float* dgamma, const float* dout, const float* y,
                                        const float* gamma, const float* sample_scale, int64_t B, int64_t T, int64_t C) {
    const int64_t n = B * T * C;
    if (n <= 0) return;
    std::vector<float> tmp(static_cast<size_t>(n), 0.0f);
    residual_backward(nullptr, tmp.data(), dgamma, dout, y, gamma, sample_scale, B, T, C);
    round_to_bf16(dy, tmp.data(), n);
}

void CpuBackend::attention_backward_bf16(uint16_t* dq, uint16_t* dk, uint16_t* dv, const float* dout,
                                         const float* probs, const float* q, const float* k, const float* v,
                                         const AttentionShape& s) {
    const int64_t cols = s.heads * s.head_dim;
    if (s.batch <= 0 || cols <= 0 || s.q_len <= 0 || s.kv_len <= 0) return;
    // fp32 gradients into zeros with the same strides, then their heads' columns rounded
    auto temp = [&](uint16_t* g, int64_t len, int64_t ld) {
        return std::vector<float>(g != nullptr ? static_cast<size_t>(s.batch * len * ld) : 0, 0.0f);
    };
    std::vector<float> tq = temp(dq, s.q_len, s.ldq), tk = temp(dk, s.kv_len, s.ldk), tv = temp(dv, s.kv_len, s.ldv);
    attention_backward(dq ? tq.data() : nullptr, dk ? tk.data() : nullptr, dv ? tv.data() : nullptr, dout, probs, q, k,
                       v, s);
    auto round_rows = [&](uint16_t* g, const std::vector<float>& t, int64_t len, int64_t ld) {
        if (g == nullptr) return;
        for (int64_t r = 0; r < s.batch * len; ++r) round_to_bf16(g + r * ld, t.data() + r * ld, cols);
    };
    round_rows(dq, tq, s.q_len, s.ldq);
    round_rows(dk, tk, s.kv_len, s.ldk);
    round_rows(dv, tv, s.kv_len, s.ldv);
}

void CpuBackend::attention_forward_bf16(uint16_t* out, float* probs, const float* q, const float* k, const float* v,
                                        const AttentionShape& s) {
    const int64_t rows = s.batch * s.q_len, cols = s.heads * s.head_dim;
    if (rows <= 0 || cols <= 0) return;
    std::vector<float> tmp(static_cast<size_t>(rows * cols));
    AttentionShape t = s;
    t.ldo = cols;
    attention_forward(tmp.data(), probs, q, k, v, t);
    for (int64_t r = 0; r < rows; ++r) round_to_bf16(out + r * s.ldo, tmp.data() + r * cols, cols);
}

void CpuBackend::gelu_forward_bf16(uint16_t* out, const float* x, int64_t n) {
    std::vector<float> tmp(static_cast<size_t>(n));
    gelu_forward(tmp.data(), x, n);
    round_to_bf16(out, tmp.data(), n);
}

}  // namespace cae::cpu
