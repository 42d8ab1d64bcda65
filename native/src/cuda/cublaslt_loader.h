// Finding and opening libcublasLt at run time. The library is optional: when no candidate
// loads, the CUDA backend uses its own GEMM kernels (gemm_fallback.cu) and says so.
//
// Search order (the first candidate that loads and exports every entry point wins):
//  1. the path in the environment variable CAE_CUBLASLT;
//  2. "libcublasLt.so.13" through the dynamic loader (LD_LIBRARY_PATH, ld.so.cache, rpath);
//  3. /usr/local/cuda/lib64/libcublasLt.so.13;
//  4. nvidia/cu13/lib/ and nvidia/cublas/lib/ (the CUDA 13 wheels PyTorch depends on) under each
//     Python site directory: $CAE_PYTHON_SITE, $VIRTUAL_ENV and $CONDA_PREFIX's
//     lib/python3*/site-packages, /usr/lib/python3*/site-packages,
//     /usr/local/lib/python3*/dist-packages, /usr/local/lib/python3*/site-packages,
//     /usr/lib/python3/dist-packages, /opt/*/.venv/lib/python3*/site-packages (images that keep
//     PyTorch in a venv) and $HOME/.local/lib/python3*/site-packages.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "cuda/cublaslt_api.h"

namespace cae::cuda {

struct CublasLtSearch {
    std::string explicit_path;        // tried first when not empty (CAE_CUBLASLT)
    bool try_loader_path = true;      // dlopen("libcublasLt.so.13") by soname
    std::vector<std::string> paths;   // absolute candidates, in order
};

// The search the environment describes (see the order above); globs are expanded here.
CublasLtSearch cublaslt_search_from_environment();

struct CublasLtLibrary {
    void* handle = nullptr;   // dlopen handle; null when nothing loaded
    lt::Api api;
    std::string path;         // the candidate that loaded
    size_t version = 0;       // cublasLtGetVersion(): major*10000 + minor*100 + patch
    std::string tried;        // every candidate that failed and why ("; "-separated)

    bool loaded() const { return handle != nullptr; }
    // "cuBLASLt 13.0.2 from /path" or "no cuBLASLt (tried ...)".
    std::string summary() const;
};

// Tries the candidates of `search` in order. Never throws for a missing or broken library: the
// result then has loaded() == false and `tried` says why. The handle stays open for the life of
// the process (libraries that start threads or register atexit handlers must not be closed).
std::shared_ptr<const CublasLtLibrary> load_cublaslt(const CublasLtSearch& search);

// The process-wide library, loaded once from cublaslt_search_from_environment().
std::shared_ptr<const CublasLtLibrary> process_cublaslt();

}  // namespace cae::cuda
