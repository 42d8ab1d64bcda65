#include "cuda/device_allocator.h"

#include <cuda_runtime.h>

#include "cuda/cuda_check.h"

namespace cae::cuda {

namespace {
constexpr size_t kSmallStep = 512;
constexpr size_t kSmallLimit = size_t{1} << 20;
constexpr size_t kLargeStep = size_t{2} << 20;
}  // namespace

size_t DeviceAllocator::size_class(size_t bytes) {
    if (bytes == 0) bytes = 1;
    if (bytes <= kSmallLimit) return (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
    return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
}

DeviceAllocator::~DeviceAllocator() {
    release_cached();
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [p, b] : live_) cudaFree(p);  // blocks the owner never released
    live_.clear();
    live_bytes_ = 0;
}

void* DeviceAllocator::allocate(size_t bytes) {
    const size_t cls = size_class(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(cls);
    void* p = nullptr;
    if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= cls;
    } else {
        cudaError_t err = cudaMalloc(&p, cls);
        if (err == cudaErrorMemoryAllocation) {
            cudaGetLastError();  // not sticky: clear it
            return nullptr;
        }
        if (err != cudaSuccess) {
            cudaGetLastError();
            throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
        }
    }
    live_.emplace(p, Block{cls, bytes});
    live_bytes_ += cls;
    return p;
}

bool DeviceAllocator::release(void* p) noexcept {
    if (p == nullptr) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(p);
    if (it == live_.end()) return false;
    const size_t cls = it->second.class_bytes;
    live_.erase(it);
    live_bytes_ -= cls;
    try {
        free_[cls].push_back(p);
        cached_bytes_ += cls;
    } catch (...) {
        cudaFree(p);  // no room in the free list: give it back
    }
    return true;
}

size_t DeviceAllocator::requested_bytes(const void* p) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_.find(const_cast<void*>(p));
    return it == live_.end() ? 0 : it->second.requested;
}

void DeviceAllocator::release_cached() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [cls, blocks] : free_) {
        for (void* p : blocks) cudaFree(p);
    }
    free_.clear();
    cached_bytes_ = 0;
}

size_t DeviceAllocator::live_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_bytes_;
}

size_t DeviceAllocator::cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_bytes_;
}

}  // namespace cae::cuda
