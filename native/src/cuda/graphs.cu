// Recording of the backend's work as a CUDA graph (stream capture) and its replay.
//
// Scratch memory: ops allocate scratch and release it when they return. While recording, those
// blocks come from a pool of the recording (reused within it, in the recorded order) and stay
// with the Recording for its lifetime, since every replay writes them again; handing them back
// to the shared cache would let a later allocation share memory with the graph.
//
// Capture runs in relaxed mode so that a block the pool lacks may still be cudaMalloc'ed; an op
// that synchronizes (which capture forbids) fails the capture: end_recording() then returns
// nullptr, nothing was run, and the caller runs the ops directly.
#include <algorithm>
#include <cstdio>
#include <cstdlib>


#include "common/error.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"

namespace cae::cuda {

class CudaRecording final : public Backend::Recording {
public:
    CudaRecording(CudaBackend& be, cudaGraphExec_t exec, std::vector<void*> blocks)
        : be_(be), exec_(exec), blocks_(std::move(blocks)) {}
    ~CudaRecording() override {
        be_.use_device();
        cudaGraphExecDestroy(exec_);
        for (void* p : blocks_) be_.raw_release(p);  // stream-ordered after the last replay
        cudaGetLastError();
    }
    void replay() override {
        be_.use_device();
        CAE_CUDA_CHECK(cudaGraphLaunch(exec_, be_.stream()));
    }

private:
    CudaBackend& be_;
    cudaGraphExec_t exec_;
    std::vector<void*> blocks_;
};

void CudaBackend::begin_recording() {
    CAE_REQUIRE(!record_pool_, "begin_recording: a recording is already under way");
    use_device();
    record_pool_ = std::make_unique<RecordPool>();
    cudaError_t err = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed);
    if (err != cudaSuccess) {
        record_pool_.reset();
        cudaGetLastError();
        throw_cuda_error(err, "cudaStreamBeginCapture", __FILE__, __LINE__);
    }
}

std::unique_ptr<Backend::Recording> CudaBackend::end_recording() {
    CAE_REQUIRE(record_pool_ != nullptr, "end_recording without begin_recording");
    use_device();
    cudaGraph_t graph = nullptr;
    cudaError_t err = cudaStreamEndCapture(stream_, &graph);
    std::unique_ptr<RecordPool> pool = std::move(record_pool_);
    std::vector<void*> blocks;
    for (const auto& b : pool->all) blocks.push_back(b.first);
    cudaGraphExec_t exec = nullptr;
    if (err == cudaSuccess && graph != nullptr) err = cudaGraphInstantiate(&exec, graph, 0);
    if (graph != nullptr) cudaGraphDestroy(graph);
    if (err != cudaSuccess || exec == nullptr) {
        std::fprintf(stderr, "cae: recording a CUDA graph failed (%s); running the ops directly\n",
                     cudaGetErrorString(err));
        cudaGetLastError();
        for (void* p : blocks) raw_release(p);
        return nullptr;
    }
    return std::make_unique<CudaRecording>(*this, exec, std::move(blocks));
}

void* CudaBackend::record_alloc(size_t bytes) {
    RecordPool& pool = *record_pool_;
    const size_t want = DeviceAllocator::size_class(bytes);
    auto best = pool.free.end();
    for (auto it = pool.free.begin(); it != pool.free.end(); ++it) {
        if (it->second >= want && (best == pool.free.end() || it->second < best->second)) best = it;
    }
    if (best != pool.free.end()) {
        void* p = best->first;
        pool.free.erase(best);
        return p;
    }
    void* p = allocator_->allocate(bytes);  // no retry: freeing cached blocks would synchronize
    if (p == nullptr) {
        fail(CAE_ERR_OUT_OF_MEMORY, "cudaMalloc of ", bytes, " bytes on CUDA device ", device_,
             " failed while recording a CUDA graph");
    }
    pool.all.emplace_back(p, want);
    return p;
}

bool CudaBackend::record_release(void* p) {
    RecordPool& pool = *record_pool_;
    for (const auto& b : pool.all) {
        if (b.first == p) {
            pool.free.push_back(b);
            return true;
        }
    }
    return false;
}

}  // namespace cae::cuda
