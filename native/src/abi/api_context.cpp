// C ABI: contexts.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "cae/cae.h"
#include "abi/context.h"
#include "common/error.h"
#include "abi/handles.h"
#include "model/workspace.h"

extern "C" {

CAE_API cae_status cae_context_options_init(cae_context_options* options) {
    return cae::abi_guard("cae_context_options_init", [&] {
        CAE_REQUIRE(options != nullptr, "options is NULL");
        std::memset(options, 0, sizeof(*options));
        options->backend = CAE_BACKEND_AUTO;
    });
}

CAE_API cae_status cae_context_create(const cae_context_options* options, cae_context** out) {
    return cae::abi_guard("cae_context_create", [&] {
        CAE_REQUIRE(out != nullptr, "out is NULL");
        *out = nullptr;
        CAE_REQUIRE(options != nullptr, "options is NULL");
        auto handle = new cae_context{cae::create_context(*options)};
        cae::register_handle(handle, cae::HandleKind::Context);
        *out = handle;
    });
}

CAE_API cae_status cae_context_destroy(cae_context* context) {
    return cae::abi_guard("cae_context_destroy", [&] {
        if (!cae::check_handle_or_null(context, cae::HandleKind::Context, "context")) return;
        cae::unregister_handle(context);
        delete context;
    });
}

CAE_API cae_status cae_context_query(const cae_context* context, cae_context_info* out) {
    return cae::abi_guard("cae_context_query", [&] {
        cae::check_handle(context, cae::HandleKind::Context, "context");
        CAE_REQUIRE(out != nullptr, "out is NULL");
        std::memset(out, 0, sizeof(*out));
        cae::Context& c = *context->impl;
        out->backend = static_cast<cae_backend>(c.backend().kind());
        out->device_index = c.device_index();
        out->num_threads = c.backend().num_threads();
        out->seed = c.seed();
        std::string d = c.backend().description();
        std::strncpy(out->description, d.c_str(), sizeof(out->description) - 1);
    });
}

CAE_API cae_status cae_context_synchronize(cae_context* context) {
    return cae::abi_guard("cae_context_synchronize", [&] {
        cae::check_handle(context, cae::HandleKind::Context, "context");
        context->impl->backend().synchronize();
    });
}

namespace {

double measure_gemm(cae_context* context, cae_precision precision, int32_t m, int32_t n, int32_t k, int32_t repeats) {
    cae::check_handle(context, cae::HandleKind::Context, "context");
    CAE_REQUIRE(precision == CAE_PRECISION_FP32 || precision == CAE_PRECISION_BF16, "precision is ", precision,
                ", expected CAE_PRECISION_FP32 (0) or CAE_PRECISION_BF16 (1)");
    CAE_REQUIRE(m >= 1 && n >= 1 && k >= 1 && m <= 16384 && n <= 16384 && k <= 16384, "m, n, k are ", m, ", ", n,
                ", ", k, ": expected 1 to 16384");
    CAE_REQUIRE(repeats >= 1 && repeats <= 1000, "repeats is ", repeats, ": expected 1 to 1000");
    cae::Backend& be = context->impl->backend();
    cae::Workspace ws(be);
    cae::GemmArgs g = cae::gemm_product(false, false, m, n, k, 1.0f, ws.floats(int64_t(m) * k), k,
                                        ws.floats(int64_t(k) * n), n, 0.0f, ws.floats(int64_t(m) * n), n);
    be.fill(const_cast<float*>(g.a), 0.5f, int64_t(m) * k);
    be.fill(const_cast<float*>(g.b), 0.25f, int64_t(k) * n);
    if (precision == CAE_PRECISION_BF16) {
        // Operands rounded once, before the timing: the rate of the products alone.
        g.precision = cae::GemmPrecision::BF16;
        uint16_t* a16 = ws.bf16s(int64_t(m) * k);
        uint16_t* b16 = ws.bf16s(int64_t(k) * n);
        be.round_to_bf16(a16, g.a, int64_t(m) * k);
        be.round_to_bf16(b16, g.b, int64_t(k) * n);
        g.a_bf16 = a16;
        g.b_bf16 = b16;
    }
    be.gemm(g);  // warm-up: thread pools, libraries, caches
    be.synchronize();
    std::vector<double> ms;
    for (int32_t r = 0; r < repeats; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        be.gemm(g);
        be.synchronize();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    // The best of the repeats: a peak, which other work on the machine can only lower.
    const double best = *std::min_element(ms.begin(), ms.end());
    return 2.0 * m * n * k / (best * 1e6);
}

}  // namespace

CAE_API cae_status cae_context_measure_gemm(cae_context* context, cae_precision precision, int32_t m, int32_t n,
                                            int32_t k, int32_t repeats, double* gflops) {
    return cae::abi_guard("cae_context_measure_gemm", [&] {
        CAE_REQUIRE(gflops != nullptr, "gflops is NULL");
        *gflops = measure_gemm(context, precision, m, n, k, repeats);
    });
}

}  // extern "C"
