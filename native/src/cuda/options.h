// The CUDA backend's run-time switches: every one is read from the environment here
// (options.cpp) and nowhere else.
//
//   CAE_GEMM=auto|cublaslt|fallback|simt|mma  the GEMM: cuBLASLt, or our fallback kernels (fp32 SIMT,
//                        or mma.sync 3xTF32); auto (the default): cuBLASLt where it loads, else SIMT
//   CAE_TF32=1           TF32 tensor-core math in cuBLASLt, and the one-pass mma.sync GEMM
//   CAE_CUDA_GRAPHS=0    run every step's kernels directly instead of replaying the recorded step
//   CAE_CUDA_SYNC=1      synchronize after every kernel, so that a fault names the kernel that caused
//                        it (debugging: serializes host and device; turns CUDA graphs off)
//   CAE_CUBLASLT=PATH    the libcublasLt tried first
//   CAE_PYTHON_SITE=DIR  a Python site-packages searched first for NVIDIA's cuBLAS wheel
// Switches set to anything else than the values above keep their defaults, except CAE_GEMM, whose
// unknown values are refused when a backend is made.
#pragma once

#include <string>

namespace cae::cuda {

struct Options {
    std::string gemm = "auto";
    bool tf32 = false;
    bool graphs = true;
    bool sync = false;
    std::string cublaslt;     // empty: none given
    std::string python_site;  // empty: none given

    // The switches as the environment sets them at the time of the call (a backend reads them when
    // it is made; CAE_CUDA_SYNC is read once per process, see debug_sync()).
    static Options from_environment();
};

}  // namespace cae::cuda
