// What core needs to know about CUDA, implemented by src/cuda when nvcc built it and by
// no_cuda.cpp otherwise. Nothing here includes a CUDA header.
#pragma once

#include <string>

#include "cae/cae.h"

namespace cae {

struct CudaProbe {
    bool compiled = false;       // CUDA code is part of this library
    bool kernels = false;        // the CUDA backend's kernels are part of this library
    int device_count = 0;        // usable devices (0 without driver or device)
    std::string reason;          // why no device is usable, or the driver version
};

// Probes once per process (the answer is cached).
const CudaProbe& cuda_probe();

// Fills `out` for device `index` (checked by the caller against cuda_probe().device_count).
void cuda_device_info(int index, cae_device_info* out);

}  // namespace cae
