#include "abi/context.h"

#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "backend/cuda_probe.h"
#include "common/error.h"
#include "common/memory_stats.h"

namespace cae {

Context::Context(std::unique_ptr<Backend> backend, int device_index, uint64_t seed)
    : backend_(std::move(backend)), device_index_(device_index), seed_(seed) {
    count_context(+1);
}

Context::~Context() { count_context(-1); }

std::shared_ptr<Context> create_context(const cae_context_options& o) {
    CAE_REQUIRE(o.backend == CAE_BACKEND_CPU || o.backend == CAE_BACKEND_CUDA ||
                    o.backend == CAE_BACKEND_AUTO,
                "options->backend is ", o.backend, ", expected CAE_BACKEND_CPU (0), _CUDA (1) or _AUTO (2)");
    CAE_REQUIRE(o.num_threads >= 0 && o.num_threads <= 4096, "options->num_threads is ",
                o.num_threads, ", expected 0 (all cores) to 4096");
    CAE_REQUIRE(o.device_index >= 0, "options->device_index is ", o.device_index,
                ", expected >= 0");
    CAE_REQUIRE(o.reserved == 0, "options->reserved is ", o.reserved,
                ", expected 0 (initialize options with cae_context_options_init)");

    cae_backend backend = o.backend;
    if (backend == CAE_BACKEND_AUTO) {
        const CudaProbe& probe = cuda_probe();
        backend = (probe.kernels && probe.device_count > o.device_index) ? CAE_BACKEND_CUDA
                                                                        : CAE_BACKEND_CPU;
    }
    if (backend == CAE_BACKEND_CPU) {
        CAE_REQUIRE(o.device_index == 0, "options->device_index is ", o.device_index,
                    " but the CPU backend has only device 0");
        int threads = o.num_threads > 0 ? o.num_threads : omp_get_num_procs();
        return std::make_shared<Context>(make_cpu_backend(threads), 0, o.seed);
    }
    const CudaProbe& probe = cuda_probe();
    if (!probe.compiled || !probe.kernels) {
        fail(CAE_ERR_UNSUPPORTED, "the CUDA backend is not available: ", probe.reason);
    }
    if (o.device_index >= probe.device_count) {
        fail(CAE_ERR_UNSUPPORTED, "CUDA device ", o.device_index, " does not exist (",
             probe.device_count, " usable devices: ", probe.reason, ")");
    }
    return std::make_shared<Context>(make_cuda_backend(o.device_index), o.device_index, o.seed);
}

void* aligned_zeroed_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) fail(CAE_ERR_OUT_OF_MEMORY, "could not allocate ", bytes, " bytes of host memory");
    std::memset(p, 0, rounded);
    return p;
}

void* host_alloc(size_t bytes) {
    void* p = aligned_zeroed_alloc(bytes);
    count_allocation(MemoryPlace::Host, static_cast<int64_t>(bytes));
    return p;
}

void host_release(void* p, size_t bytes) noexcept {
    if (p == nullptr) return;
    std::free(p);
    count_release(MemoryPlace::Host, static_cast<int64_t>(bytes));
}

}  // namespace cae
