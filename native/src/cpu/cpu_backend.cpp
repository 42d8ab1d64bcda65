#include "cpu/cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "abi/context.h"
#include "common/error.h"
#include "common/memory_stats.h"

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


void CpuBackend::residual_layernorm_forward(float* mid, Dest out, float* mean, float* rstd, const float* x,
                                            const float* y, const float* gamma, const float* sample_scale,
                                            const float* weight, const float* bias, int64_t B, int64_t T, int64_t C,
                                            float eps) {
    residual_forward(mid, x, y, gamma, sample_scale, B, T, C);
    layernorm_forward(out, mean, rstd, mid, weight, bias, B * T, C, eps);
}

}  // namespace cae::cpu
