#include "cuda/options.h"

#include <cstdlib>
#include <cstring>

namespace cae::cuda {

namespace {

const char* env(const char* name) {
    const char* v = std::getenv(name);
    return (v != nullptr && v[0] != '\0') ? v : nullptr;
}

bool is_on(const char* v) { return std::strcmp(v, "1") == 0 || std::strcmp(v, "on") == 0 || std::strcmp(v, "true") == 0; }
bool is_off(const char* v) {
    return std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "false") == 0;
}

}  // namespace

Options Options::from_environment() {
    Options o;
    if (const char* v = env("CAE_GEMM")) o.gemm = v;
    if (const char* v = env("CAE_TF32")) o.tf32 = is_on(v);
    if (const char* v = env("CAE_CUDA_SYNC")) o.sync = v[0] == '1';
    o.graphs = !o.sync;  // per-launch checks need eager launches
    if (const char* v = env("CAE_CUDA_GRAPHS")) o.graphs = !is_off(v);
    if (const char* v = env("CAE_CUBLASLT")) o.cublaslt = v;
    if (const char* v = env("CAE_PYTHON_SITE")) o.python_site = v;
    return o;
}

}  // namespace cae::cuda
