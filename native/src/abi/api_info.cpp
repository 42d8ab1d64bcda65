// C ABI: version, build description, backend and device queries.
#include <cstring>
#include <string>

#include "cae/cae.h"
#include "backend/cuda_probe.h"
#include "common/error.h"

namespace {

void copy_text(char* dst, size_t capacity, const std::string& text) {
    size_t n = text.size() < capacity - 1 ? text.size() : capacity - 1;
    std::memcpy(dst, text.data(), n);
    dst[n] = '\0';
}

std::string build_info_json() {
    std::string cuda_archs =
#ifdef CAE_CUDA_ARCHS
        CAE_CUDA_ARCHS;
#else
        "";
#endif
    return cae::cat("{\"version\":\"", CAE_VERSION, "\",\"abi\":", CAE_ABI_VERSION,
                    ",\"blas\":\"", CAE_BLAS_NAME, "\",\"openmp\":true",
                    ",\"cuda_compiled\":", cae::cuda_probe().compiled ? "true" : "false",
                    ",\"cuda_archs\":\"", cuda_archs, "\",\"compiler\":\"gcc ", __VERSION__, "\"}");
}

}  // namespace

extern "C" {

CAE_API int32_t cae_abi_version(void) { return CAE_ABI_VERSION; }

CAE_API const char* cae_build_info(void) {
    static const std::string info = build_info_json();
    return info.c_str();
}

CAE_API cae_status cae_backend_query(cae_backend backend, cae_backend_info* out) {
    return cae::abi_guard("cae_backend_query", [&] {
        CAE_REQUIRE(out != nullptr, "out is NULL");
        std::memset(out, 0, sizeof(*out));
        switch (backend) {
            case CAE_BACKEND_CPU:
                out->compiled = 1;
                out->usable = 1;
                copy_text(out->reason, sizeof(out->reason),
                          cae::cat("always available (GEMM: ", CAE_BLAS_NAME, ")"));
                break;
            case CAE_BACKEND_CUDA: {
                const cae::CudaProbe& p = cae::cuda_probe();
                out->compiled = p.compiled ? 1 : 0;
                out->usable = (p.compiled && p.kernels && p.device_count > 0) ? 1 : 0;
                copy_text(out->reason, sizeof(out->reason), p.reason);
                break;
            }
            case CAE_BACKEND_AUTO: {
                const cae::CudaProbe& p = cae::cuda_probe();
                bool cuda = p.compiled && p.kernels && p.device_count > 0;
                out->compiled = 1;
                out->usable = 1;
                copy_text(out->reason, sizeof(out->reason),
                          cuda ? std::string("selects CUDA: ") + p.reason
                               : std::string("selects the CPU: ") + p.reason);
                break;
            }
            default:
                cae::fail(CAE_ERR_INVALID_ARGUMENT, "backend is ", backend,
                          ", expected CAE_BACKEND_CPU (0), _CUDA (1) or _AUTO (2)");
        }
    });
}

CAE_API cae_status cae_device_count(int32_t* count) {
    return cae::abi_guard("cae_device_count", [&] {
        CAE_REQUIRE(count != nullptr, "count is NULL");
        *count = cae::cuda_probe().device_count;
    });
}

CAE_API cae_status cae_device_query(int32_t index, cae_device_info* out) {
    return cae::abi_guard("cae_device_query", [&] {
        CAE_REQUIRE(out != nullptr, "out is NULL");
        const cae::CudaProbe& p = cae::cuda_probe();
        CAE_REQUIRE(index >= 0 && index < p.device_count, "device index ", index,
                    " is out of range: ", p.device_count, " devices (", p.reason, ")");
        std::memset(out, 0, sizeof(*out));
        cae::cuda_device_info(index, out);
    });
}

}  // extern "C"
