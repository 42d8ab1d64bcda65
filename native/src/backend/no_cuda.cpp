// Stands in for src/cuda when the library is built without nvcc.
#include <memory>
#include <string>

#include "backend/backend.h"
#include "backend/cuda_probe.h"
#include "common/error.h"

namespace cae {

const CudaProbe& cuda_probe() {
    static const CudaProbe probe{false, false, 0,
                                 std::string("this library was built without CUDA (") + CAE_NO_CUDA_REASON + ")"};
    return probe;
}

void cuda_device_info(int index, cae_device_info* out) {
    fail(CAE_ERR_UNSUPPORTED, "this library was built without CUDA");
}

std::unique_ptr<Backend> make_cuda_backend(int device_index) {
    fail(CAE_ERR_UNSUPPORTED, "this library was built without CUDA (", CAE_NO_CUDA_REASON, ")");
}

}  // namespace cae
