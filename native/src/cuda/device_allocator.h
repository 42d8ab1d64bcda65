// A caching allocator of device memory for one device. Blocks are rounded up to a size class
// (512 B steps up to 1 MiB, 2 MiB steps above) and kept on a free list of their class when
// released, so a training step that allocates the same shapes every time reaches a steady state
// without cudaMalloc/cudaFree (which synchronize the device). Cached blocks return to the
// driver in release_cached() and in the destructor.
//
// The allocator knows no stream: the backend that owns it issues all work on one stream, so a
// block released and handed out again is used in stream order. Before release_cached() the
// owner synchronizes its stream (cudaFree of a block still in use by queued work is undefined).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace cae::cuda {

class DeviceAllocator {
public:
    DeviceAllocator() = default;
    ~DeviceAllocator();  // cudaFree of every block, live or cached (the device must be current)
    DeviceAllocator(const DeviceAllocator&) = delete;
    DeviceAllocator& operator=(const DeviceAllocator&) = delete;

    static size_t size_class(size_t bytes);

    // A block of at least `bytes` bytes (256-byte aligned), not initialized. Returns nullptr when
    // cudaMalloc reports out of memory (the caller may release_cached() and retry); throws
    // cae::Error for any other failure.
    void* allocate(size_t bytes);
    // Back to the free list of its class. Unknown pointers are ignored (returns false).
    bool release(void* p) noexcept;
    // The bytes requested for a live block (0 if unknown).
    size_t requested_bytes(const void* p) const;
    // cudaFree of every cached block.
    void release_cached() noexcept;

    size_t live_bytes() const;    // by size class
    size_t cached_bytes() const;  // by size class

private:
    struct Block {
        size_t class_bytes;
        size_t requested;
    };
    mutable std::mutex mutex_;
    std::unordered_map<void*, Block> live_;
    std::unordered_map<size_t, std::vector<void*>> free_;
    size_t live_bytes_ = 0, cached_bytes_ = 0;
};

}  // namespace cae::cuda
