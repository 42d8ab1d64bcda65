// Device buffers for activations and scratch, allocated once per batch shape and reused by
// every step of that shape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace cae {

class Workspace {
public:
    explicit Workspace(Backend& backend) : backend_(backend) {}
    ~Workspace() { clear(); }
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;

    // A new zero-filled buffer of n floats, alive until clear().
    float* floats(int64_t n) { return static_cast<float*>(bytes(static_cast<size_t>(n) * sizeof(float))); }
    int32_t* ints(int64_t n) { return static_cast<int32_t*>(bytes(static_cast<size_t>(n) * sizeof(int32_t))); }
    uint16_t* bf16s(int64_t n) { return static_cast<uint16_t*>(bytes(static_cast<size_t>(n) * sizeof(uint16_t))); }

    void* bytes(size_t n) {
        void* p = backend_.alloc(n == 0 ? 64 : n);
        blocks_.push_back(p);
        return p;
    }

    void clear() {
        for (void* p : blocks_) backend_.release(p);
        blocks_.clear();
    }

private:
    Backend& backend_;
    std::vector<void*> blocks_;
};

}  // namespace cae
