// CUDA device discovery and the backend factory. cudart is linked statically, so this needs
// only the driver at run time; without one, the probe reports zero devices and the reason.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstring>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "backend/cuda_probe.h"
#include "common/error.h"
#include "cuda/cublaslt_loader.h"
#include "cuda/cuda_backend.h"
#include "cuda/gemm.h"

namespace cae {

namespace {

// "GEMM: cuBLASLt 13.0.2 from /path", "GEMM: fallback fp32 SIMT kernel (no cuBLASLt: ...)", or
// the problem with CAE_GEMM.
std::string gemm_report() {
    std::shared_ptr<const cuda::CublasLtLibrary> lib = cuda::process_cublaslt();
    try {
        bool forced = false;
        const cuda::GemmKind kind = cuda::gemm_kind_from_environment(lib->loaded(), &forced);
        const char* how = forced ? " (CAE_GEMM)" : "";
        switch (kind) {
            case cuda::GemmKind::CublasLt: return cat("GEMM: ", lib->summary(), how);
            case cuda::GemmKind::Mma:
                return cat("GEMM: fallback mma.sync kernel", how, lib->loaded() ? "" : cat("; ", lib->summary()));
            case cuda::GemmKind::Simt:
                return cat(lib->loaded() ? "GEMM: fallback fp32 SIMT kernel" : "no cuBLASLt: fallback GEMM", how,
                           lib->loaded() ? std::string() : cat(" (", lib->tried, ")"));
        }
    } catch (const Error& e) {
        return cat("GEMM: ", e.what());
    }
    return "GEMM: unknown";
}

CudaProbe run_probe() {
    CudaProbe p;
    p.compiled = true;
    p.kernels = true;  // every op of the CUDA backend is built into this library
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        p.device_count = 0;
        void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
        if (driver == nullptr) {
            p.reason = "no NVIDIA driver (libcuda.so.1 cannot be loaded)";
        } else {
            dlclose(driver);
            p.reason = cat("no usable CUDA device: ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ")");
        }
        cudaGetLastError();  // clear the error state
        return p;
    }
    int driver = 0;
    cudaDriverGetVersion(&driver);
    p.device_count = count;
    // cuBLASLt is looked for only where there is a device to use it on.
    p.reason = cat(count, " CUDA device(s), driver API ", driver / 1000, ".", (driver % 1000) / 10,
                   count > 0 ? cat("; ", gemm_report()) : std::string());
    return p;
}

}  // namespace

const CudaProbe& cuda_probe() {
    static const CudaProbe probe = run_probe();
    return probe;
}

void cuda_device_info(int index, cae_device_info* out) {
    cudaDeviceProp prop;
    cudaError_t err = cudaGetDeviceProperties(&prop, index);
    if (err != cudaSuccess) {
        cudaGetLastError();
        fail(CAE_ERR_DEVICE, "cudaGetDeviceProperties(", index, "): ", cudaGetErrorString(err));
    }
    std::strncpy(out->name, prop.name, sizeof(out->name) - 1);
    out->total_memory = static_cast<int64_t>(prop.totalGlobalMem);
    out->compute_major = prop.major;
    out->compute_minor = prop.minor;
    out->multiprocessors = prop.multiProcessorCount;
    size_t free_bytes = 0, total_bytes = 0;
    int previous = 0;
    cudaGetDevice(&previous);
    if (cudaSetDevice(index) == cudaSuccess && cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
        out->free_memory = static_cast<int64_t>(free_bytes);
    }
    cudaSetDevice(previous);
    cudaGetLastError();
}

std::unique_ptr<Backend> make_cuda_backend(int device_index) {
    const CudaProbe& probe = cuda_probe();
    if (device_index < 0 || device_index >= probe.device_count) {
        fail(CAE_ERR_UNSUPPORTED, "CUDA device ", device_index, " does not exist (", probe.device_count,
             " usable devices: ", probe.reason, ")");
    }
    return std::make_unique<cuda::CudaBackend>(device_index);
}

}  // namespace cae
