// The CUDA backend's device, stream, memory and copies, and the GEMM dispatch. The kernels of
// the other ops live in elementwise.cu, layernorm.cu, attention.cu, tokens.cu, loss.cu, adamw.cu.
#include "cuda/cuda_backend.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "comm/comm.h"
#include "common/error.h"
#include "common/memory_stats.h"
#include "cuda/cuda_check.h"

namespace cae::cuda {

const char* gemm_kind_name(GemmKind kind) {
    switch (kind) {
        case GemmKind::CublasLt: return "cublaslt";
        case GemmKind::Simt: return "fallback-simt";
        case GemmKind::Mma: return "fallback-mma";
    }
    return "unknown";
}

GemmKind gemm_kind_from_environment(bool cublaslt_loaded, bool* forced) {
    const std::string s = Options::from_environment().gemm;
    if (forced) *forced = s != "auto";
    if (s == "auto") return cublaslt_loaded ? GemmKind::CublasLt : GemmKind::Simt;
    if (s == "fallback" || s == "simt") return GemmKind::Simt;
    if (s == "mma") return GemmKind::Mma;
    if (s == "cublaslt") {
        if (!cublaslt_loaded) {
            fail(CAE_ERR_UNSUPPORTED, "CAE_GEMM=cublaslt but cuBLASLt could not be loaded: ",
                 process_cublaslt()->summary());
        }
        return GemmKind::CublasLt;
    }
    fail(CAE_ERR_UNSUPPORTED, "CAE_GEMM is \"", s, "\", expected auto, cublaslt, fallback (= simt) or mma");
}

CudaBackend::CudaBackend(int device) : device_(device) {
    CAE_CUDA_CHECK(cudaSetDevice(device));
    cudaDeviceProp prop;
    CAE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    if (prop.major < 8) {
        fail(CAE_ERR_UNSUPPORTED, "CUDA device ", device, " (", prop.name, ") has compute capability ", prop.major, ".",
             prop.minor, "; libcae's kernels need 8.0 or newer");
    }
    sm_count_ = prop.multiProcessorCount;
    CAE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    try {
        allocator_ = std::make_unique<DeviceAllocator>();
        CAE_CUDA_CHECK(cudaEventCreateWithFlags(&adamw_uploaded_, cudaEventDisableTiming));
        std::shared_ptr<const CublasLtLibrary> lib = process_cublaslt();
        gemm_kind_ = gemm_kind_from_environment(lib->loaded());
        const Options options = Options::from_environment();
        tf32_ = options.tf32;
        graphs_ = options.graphs;
        if (gemm_kind_ == GemmKind::CublasLt) {
            const size_t workspace_bytes = size_t{32} << 20;
            cublaslt_workspace_ = raw_alloc(workspace_bytes);
            cublaslt_ = std::make_unique<CublasLtGemm>(lib, stream_, tf32_, cublaslt_workspace_, workspace_bytes);
        }
        std::string gemm = gemm_kind_ == GemmKind::CublasLt ? lib->summary()
                           : gemm_kind_ == GemmKind::Mma    ? std::string("fallback mma.sync TF32 kernel")
                                                            : std::string("fallback fp32 SIMT kernel");
        if (gemm_kind_ == GemmKind::Mma && !tf32_) gemm += " (3xTF32)";
        if (tf32_) gemm += ", TF32 allowed";
        if (!graphs_) gemm += ", CUDA graphs off";
        description_ = cat("cuda: ", prop.name, " (device ", device, ", sm_", prop.major, prop.minor, ", ",
                           prop.multiProcessorCount, " SMs), GEMM ", gemm);
    } catch (...) {
        cublaslt_.reset();
        allocator_.reset();
        if (adamw_uploaded_) cudaEventDestroy(adamw_uploaded_);
        cudaStreamDestroy(stream_);
        throw;
    }
}

CudaBackend::~CudaBackend() {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);  // nothing queued may still use the memory freed below
    cublaslt_.reset();
    if (adamw_device_) allocator_->release(adamw_device_);
    if (adamw_staging_) cudaFreeHost(adamw_staging_);
    allocator_.reset();
    {
        std::lock_guard<std::mutex> lock(pinned_mutex_);
        for (auto& [p, bytes] : pinned_) {
            cudaFreeHost(p);
            count_release(MemoryPlace::Host, static_cast<int64_t>(bytes));
        }
        pinned_.clear();
    }
    if (adamw_uploaded_) cudaEventDestroy(adamw_uploaded_);
    cudaStreamDestroy(stream_);
    cudaGetLastError();
}

void CudaBackend::use_device() const {
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess || current != device_) CAE_CUDA_CHECK(cudaSetDevice(device_));
}

std::unique_ptr<DeviceCommunicator> CudaBackend::make_device_communicator(Communicator& host, std::string* why_not) {
    use_device();  // NCCL binds its communicator to the current device
    return make_nccl_communicator(host, stream_, why_not);
}

void* CudaBackend::raw_alloc(size_t bytes) {
    if (record_pool_) return record_alloc(bytes);
    void* p = allocator_->allocate(bytes);
    if (p == nullptr) {
        // Out of memory: hand the cached blocks back to the driver (after the work that may still
        // use them) and try once more.
        CAE_CUDA_CHECK(cudaStreamSynchronize(stream_));
        allocator_->release_cached();
        p = allocator_->allocate(bytes);
    }
    if (p == nullptr) {
        size_t free_bytes = 0, total_bytes = 0;
        cudaMemGetInfo(&free_bytes, &total_bytes);
        cudaGetLastError();
        fail(CAE_ERR_OUT_OF_MEMORY, "cudaMalloc of ", bytes, " bytes on CUDA device ", device_, " failed: ",
             free_bytes, " of ", total_bytes, " bytes free, ", allocator_->live_bytes(), " held by this context");
    }
    return p;
}

void CudaBackend::raw_release(void* p) noexcept {
    if (p == nullptr) return;
    if (record_pool_ && record_release(p)) return;
    allocator_->release(p);
}

void* CudaBackend::alloc(size_t bytes) {
    use_device();
    void* p = raw_alloc(bytes);
    cudaError_t err = cudaMemsetAsync(p, 0, bytes == 0 ? 1 : bytes, stream_);
    if (err != cudaSuccess) {
        cudaGetLastError();
        allocator_->release(p);
        throw_cuda_error(err, "cudaMemsetAsync (zero-filling a new allocation)", __FILE__, __LINE__);
    }
    count_allocation(MemoryPlace::Device, static_cast<int64_t>(bytes));
    return p;
}

void CudaBackend::release(void* p) noexcept {
    if (p == nullptr) return;
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess || current != device_) cudaSetDevice(device_);
    const size_t bytes = allocator_->requested_bytes(p);
    // While recording, a block the recording handed out goes back to the recording's pool (its
    // replays write it again), never to the shared cache.
    if ((record_pool_ && record_release(p)) || allocator_->release(p)) {
        count_release(MemoryPlace::Device, static_cast<int64_t>(bytes));
    }
}

void* CudaBackend::alloc_pinned_host(size_t bytes) {
    use_device();
    void* p = nullptr;
    cudaError_t err = cudaHostAlloc(&p, bytes == 0 ? 1 : bytes, cudaHostAllocPortable);
    if (err != cudaSuccess) {
        cudaGetLastError();
        fail(err == cudaErrorMemoryAllocation ? CAE_ERR_OUT_OF_MEMORY : CAE_ERR_DEVICE, "cudaHostAlloc of ", bytes,
             " bytes of pinned host memory failed: ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ")");
    }
    std::memset(p, 0, bytes);
    try {
        std::lock_guard<std::mutex> lock(pinned_mutex_);
        pinned_.emplace(p, bytes);
    } catch (...) {
        cudaFreeHost(p);
        throw;
    }
    count_allocation(MemoryPlace::Host, static_cast<int64_t>(bytes));
    return p;
}

void CudaBackend::release_pinned_host(void* p) noexcept {
    if (p == nullptr) return;
    size_t bytes = 0;
    {
        std::lock_guard<std::mutex> lock(pinned_mutex_);
        auto it = pinned_.find(p);
        if (it == pinned_.end()) return;
        bytes = it->second;
        pinned_.erase(it);
    }
    // cudaFreeHost waits for copies that still read the block.
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess || current != device_) cudaSetDevice(device_);
    cudaFreeHost(p);
    cudaGetLastError();
    count_release(MemoryPlace::Host, static_cast<int64_t>(bytes));
}

// Synchronous: the caller may overwrite `src` as soon as this returns (pageable or pinned).
void CudaBackend::copy_to_device(void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    use_device();
    CAE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    CAE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// Synchronous: the caller reads `dst` right after.
void CudaBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    use_device();
    CAE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    CAE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy_on_device(void* dst, const void* src, size_t bytes) {
    if (bytes == 0 || dst == src) return;
    use_device();
    CAE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::fill_bytes(void* dst, uint8_t value, size_t bytes) {
    if (bytes == 0) return;
    use_device();
    CAE_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, stream_));
}

void CudaBackend::synchronize() {
    use_device();
    CAE_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::gemm(const GemmArgs& g) {
    use_device();
    run_gemm(g);
}

// One cuBLASLt call with its epilogue, where cuBLASLt is the GEMM and has an algorithm for it.
bool CudaBackend::run_gemm_epilogue(const GemmArgs& g) {
    if (gemm_kind_ != GemmKind::CublasLt) return false;
    if (g.precision == GemmPrecision::BF16) return run_gemm_bf16(g, /*fallback=*/false);
    return cublaslt_->run(g);
}

void CudaBackend::run_gemm(const GemmArgs& g) {
    if (g.bias_grad != nullptr) {
        CAE_REQUIRE(g.trans_a && g.batch == 1, "a GEMM's bias gradient needs trans_a and batch 1, got trans_a ",
                    g.trans_a, " batch ", g.batch);
        // cuBLASLt sums A in its BGRADB epilogue (alpha 1, no bias); otherwise the product, then the sums.
        if (g.m > 0 && g.n > 0 && g.k > 0 && g.alpha == 1.0f && g.bias == nullptr && run_gemm_epilogue(g)) return;
        GemmArgs r = g;
        r.bias_grad = nullptr;
        run_gemm(r);
        operand_column_sums(g.bias_grad, g.a, g.a_bf16, g.lda, g.k, g.m, g.precision == GemmPrecision::BF16);
        return;
    }
    if (g.m <= 0 || g.n <= 0 || g.batch <= 0) return;
    if (g.bias != nullptr) {
        // cuBLASLt adds the bias in its epilogue (one item, a product to compute); otherwise the
        // product and then the bias kernel.
        if (g.batch == 1 && g.k > 0 && g.alpha != 0.0f && run_gemm_epilogue(g)) return;
        GemmArgs r = g;
        r.bias = nullptr;
        run_gemm(r);
        for (int64_t b = 0; b < g.batch; ++b) add_bias(g.c + b * g.stride_c, g.ldc, g.bias, g.m, g.n);
        return;
    }
    if (g.k <= 0 || g.alpha == 0.0f) {  // no product: C = beta C (A and B are not read)
        gemm_scale_c(g, stream_);
        return;
    }
    if (g.precision == GemmPrecision::BF16) {
        run_gemm_bf16(g, /*fallback=*/true);
        return;
    }
    switch (gemm_kind_) {
        case GemmKind::CublasLt:
            if (!cublaslt_->run(g)) gemm_simt(g, stream_);  // a shape cuBLASLt has no algorithm for
            break;
        case GemmKind::Mma: gemm_mma(g, tf32_, stream_); break;
        case GemmKind::Simt: gemm_simt(g, stream_); break;
    }
}

}  // namespace cae::cuda
