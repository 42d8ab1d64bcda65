// A context: one backend instance (CPU threads or one CUDA device with its stream), the run
// seed, and the objects made from it. Shared by the handles of everything made from it, so a
// buffer keeps its context alive after the context's handle is destroyed.
#pragma once

#include <cstdint>
#include <memory>

#include "cae/cae.h"
#include "backend/backend.h"

namespace cae {

class Context {
public:
    Context(std::unique_ptr<Backend> backend, int device_index, uint64_t seed);
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    Backend& backend() { return *backend_; }
    int device_index() const { return device_index_; }
    uint64_t seed() const { return seed_; }

private:
    std::unique_ptr<Backend> backend_;
    int device_index_;
    uint64_t seed_;
};

// Creates the backend the options ask for (AUTO resolved here).
std::shared_ptr<Context> create_context(const cae_context_options& options);

// Zero-filled, 64-byte aligned host memory; throws CAE_ERR_OUT_OF_MEMORY. Not counted.
void* aligned_zeroed_alloc(size_t bytes);

// The host allocator for CAE_MEMORY_HOST buffers: aligned_zeroed_alloc, counted as host bytes.
void* host_alloc(size_t bytes);
void host_release(void* p, size_t bytes) noexcept;

}  // namespace cae

// The objects behind the opaque C handles.
struct cae_context {
    std::shared_ptr<cae::Context> impl;
};

struct cae_buffer {
    std::shared_ptr<cae::Context> context;
    cae_memory_kind kind;
    void* data;
    int64_t bytes;
};
