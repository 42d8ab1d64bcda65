// How the CPU kernels split work across their OpenMP team: the team size for a given amount of
// work, per-thread scratch, and column reductions whose result does not depend on the thread
// count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>

#include "common/error.h"

namespace cae::cpu {

// The threads worth waking for `work` units when each should get at least `grain` units
// (a parallel region costs microseconds).
inline int team_size(int threads, int64_t work, int64_t grain) {
    const int64_t useful = work / std::max<int64_t>(grain, 1);
    return static_cast<int>(std::clamp<int64_t>(useful, 1, std::max(threads, 1)));
}

// Grow-only, 64-byte aligned scratch memory of the calling thread, one block per element type:
// a second call with the same T reuses (and may move) the block. Take it before a parallel
// region (allocation may throw) and hand slices to the team.
template <class T>
T* thread_scratch(int64_t count) {
    struct Buffer {
        void* data = nullptr;
        size_t capacity = 0;
        ~Buffer() { std::free(data); }
    };
    thread_local Buffer buffer;
    const size_t bytes = (static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(T) + 63) / 64 * 64;
    if (bytes > buffer.capacity) {
        std::free(buffer.data);
        buffer.capacity = 0;
        buffer.data = std::aligned_alloc(64, bytes);
        if (buffer.data == nullptr) fail(CAE_ERR_OUT_OF_MEMORY, "cpu kernels: cannot allocate ", bytes, " bytes of scratch");
        buffer.capacity = bytes;
    }
    return static_cast<T*>(buffer.data);
}

// Column sums over many rows, identical for every thread count: the rows are cut into fixed
// chunks of kRows, each chunk sums its rows in double into its own slots, and the chunk sums are
// added in chunk order. `vectors` reductions of `width` columns share the thread's double
// scratch block, so one ColumnPartials at a time.
class ColumnPartials {
public:
    static constexpr int64_t kRows = 32;

    ColumnPartials(int64_t rows, int64_t width, int vectors)
        : chunks_((rows + kRows - 1) / kRows), width_(width), vectors_(vectors),
          data_(thread_scratch<double>(chunks_ * width * vectors)) {}

    int64_t chunks() const { return chunks_; }
    // The slots of one chunk and one reduction, zeroed by the chunk before use.
    double* slots(int64_t chunk, int vector) const { return data_ + (chunk * vectors_ + vector) * width_; }

    // out[c] += sum over chunks, in chunk order.
    void add_to(float* out, int vector, int threads) const {
        if (out == nullptr) return;
#pragma omp parallel for num_threads(team_size(threads, chunks_ * width_, 1 << 15)) schedule(static)
        for (int64_t c = 0; c < width_; ++c) {
            double s = 0.0;
            for (int64_t k = 0; k < chunks_; ++k) s += slots(k, vector)[c];
            out[c] = static_cast<float>(static_cast<double>(out[c]) + s);
        }
    }

private:
    int64_t chunks_, width_;
    int vectors_;
    double* data_;
};

// Collects the first exception thrown inside a parallel region, to rethrow after it (an
// exception may not leave an OpenMP region).
class RegionErrors {
public:
    template <class F>
    void run(F&& f) noexcept {
        try {
            f();
        } catch (...) {
#pragma omp critical(cae_region_errors)
            if (!error_) error_ = std::current_exception();
        }
    }
    void rethrow() const {
        if (error_) std::rethrow_exception(error_);
    }

private:
    std::exception_ptr error_;
};

}  // namespace cae::cpu
