// Stands in for src/cuda when the library is built without nvcc.
#include <memory>

#include "core/backend.h"
#include "core/cuda_probe.h"
#include "core/error.h"

namespace cae {

const CudaProbe& cuda_probe() {
    static const CudaProbe probe{false, false, 0,
                                 "this library was built without CUDA (nvcc was not found at build time)"};
    return probe;
}

void cuda_device_info(int index, cae_device_info* out) {
    fail(CAE_ERR_UNSUPPORTED, "this library was built without CUDA");
}

std::unique_ptr<Backend> make_cuda_backend(int device_index) {
    fail(CAE_ERR_UNSUPPORTED, "this library was built without CUDA (nvcc was not found at build time)");
}

}  // namespace cae
