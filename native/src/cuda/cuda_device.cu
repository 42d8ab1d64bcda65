// CUDA device discovery. cudart is linked statically, so this needs only the driver at run
// time; without one, the probe reports zero devices and the reason.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstring>
#include <memory>
#include <string>

#include "core/backend.h"
#include "core/cuda_probe.h"
#include "core/error.h"

namespace cae {

namespace {

CudaProbe run_probe() {
    CudaProbe p;
    p.compiled = true;
    p.kernels = false;  // the CUDA kernels are not part of this build yet
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
        cudaGetLastError();  // clear the sticky error state
        return p;
    }
    int driver = 0;
    cudaDriverGetVersion(&driver);
    p.device_count = count;
    p.reason = cat(count, " CUDA device(s), driver API ", driver / 1000, ".", (driver % 1000) / 10,
                   p.kernels ? "" : "; the CUDA kernels are not built in this version, so contexts use the CPU");
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
}

std::unique_ptr<Backend> make_cuda_backend(int device_index) {
    fail(CAE_ERR_UNSUPPORTED, "the CUDA kernels are not built in this version; use the CPU backend");
}

}  // namespace cae
