// Device helpers shared by the kernels: warp reductions, the deterministic two-pass column
// sums (per-block partials in double, then a fixed-order sum per column), grid-stride loops.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/backend.h"
#include "cuda/cuda_check.h"

namespace cae::cuda {

constexpr int kWarp = 32;

// An op's output element (Dest, backend/backend.h): stored as fp32, or rounded to bf16.
__device__ __forceinline__ void store_out(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_out(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
// A gradient element: added to fp32, or its rounding written to bf16 (Dest's rule for gradients).
__device__ __forceinline__ void store_grad(float* p, float v) { *p += v; }
__device__ __forceinline__ void store_grad(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// Calls f with the destination in its element type: __nv_bfloat16* for a bf16 one, else float*
// (null for an empty one).
template <class F>
void with_dest(Dest d, F&& f) {
    if (d.bf16 != nullptr) {
        f(reinterpret_cast<__nv_bfloat16*>(d.bf16));
    } else {
        f(d.f32);
    }
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;  // every lane holds the same total (xor butterfly: the same order on every lane)
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ int64_t global_thread() {
    return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ int64_t grid_threads() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// Sums of blockDim.x (a multiple of 32, at most 1024) double values in a fixed order; the result
// is valid in thread 0. `shared` holds at least 32 doubles.
__device__ __forceinline__ double block_sum(double v, double* shared) {
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    v = warp_sum(v);
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    const int warps = blockDim.x / kWarp;
    double total = 0.0;
    if (warp == 0) {
        total = lane < warps ? shared[lane] : 0.0;
        total = warp_sum(total);
    }
    __syncthreads();  // `shared` may be reused by the caller after this
    return total;
}

// ---- deterministic column sums
// out_v[c] += sum over rows r of value_v(r, c), for V vectors at once. Pass 1: a block of 32x8
// threads owns 32 columns and a chunk of `chunk_rows` rows; thread (x, y) adds rows y, y+8, ...
// of its column in double, then the 8 partial sums are added in y order into
// partials[v][chunk][c]. Pass 2: one thread per column adds the chunks in chunk order and
// rounds once: out[c] = float(double(out[c]) + total), as the CPU backend does. The result
// depends only on the shapes, never on timing.
constexpr int kColumnBlockX = 32, kColumnBlockY = 8;

template <int V, class Op>
__global__ void __launch_bounds__(kColumnBlockX* kColumnBlockY)
    column_partials_kernel(double* __restrict__ partials, int64_t rows, int64_t cols, int64_t chunk_rows,
                           int64_t chunks, Op op) {
    __shared__ double sums[V][kColumnBlockY][kColumnBlockX + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int64_t c = static_cast<int64_t>(blockIdx.x) * kColumnBlockX + tx;
    const int64_t chunk = blockIdx.y;
    const int64_t r0 = chunk * chunk_rows;
    const int64_t r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
    double acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = 0.0;
    if (c < cols) {
        for (int64_t r = r0 + ty; r < r1; r += kColumnBlockY) {
            double val[V];
            op(r, c, val);
#pragma unroll
            for (int v = 0; v < V; ++v) acc[v] += val[v];
        }
    }
#pragma unroll
    for (int v = 0; v < V; ++v) sums[v][ty][tx] = acc[v];
    __syncthreads();
    if (ty == 0 && c < cols) {
#pragma unroll
        for (int v = 0; v < V; ++v) {
            double s = 0.0;
#pragma unroll
            for (int y = 0; y < kColumnBlockY; ++y) s += sums[v][y][tx];
            partials[(v * chunks + chunk) * cols + c] = s;
        }
    }
}

// A template defined in the header: every file that launches it instantiates its own copy (no
// relocatable device code is needed), files that do not launch it compile none.
template <int kUnused = 0>
__global__ void column_finish_kernel(float* __restrict__ out, const double* __restrict__ partials,
                                            int64_t chunks, int64_t cols) {
    for (int64_t c = global_thread(); c < cols; c += grid_threads()) {
        double s = 0.0;
        for (int64_t k = 0; k < chunks; ++k) s += partials[k * cols + c];
        out[c] = static_cast<float>(static_cast<double>(out[c]) + s);
    }
}

// The chunking of `rows` for column_partials_kernel: 256 rows per chunk, more when grid.y
// (at most 65535 chunks) requires.
struct ColumnChunks {
    int64_t chunk_rows, chunks;
};
inline ColumnChunks column_chunks(int64_t rows) {
    int64_t chunk_rows = 256;
    if (ceil_div<int64_t>(rows, chunk_rows) > 65535) chunk_rows = ceil_div<int64_t>(rows, 65535);
    return {chunk_rows, ceil_div<int64_t>(rows, chunk_rows)};
}

// Scratch doubles column_sums needs.
inline int64_t column_partials_size(int V, int64_t rows, int64_t cols) {
    return V * column_chunks(rows).chunks * cols;
}

// Runs both passes: outs[v] (may be null: skipped) += column sums of op's v-th value.
// `partials` holds V * chunks * cols doubles.
template <int V, class Op>
void column_sums(float* const (&outs)[V], double* partials, int64_t rows, int64_t cols, Op op, cudaStream_t stream) {
    const ColumnChunks ch = column_chunks(rows);
    dim3 grid(static_cast<unsigned>(ceil_div<int64_t>(cols, kColumnBlockX)), static_cast<unsigned>(ch.chunks));
    dim3 block(kColumnBlockX, kColumnBlockY);
    column_partials_kernel<V, Op><<<grid, block, 0, stream>>>(partials, rows, cols, ch.chunk_rows, ch.chunks, op);
    CAE_CUDA_CHECK_LAUNCH("column_partials_kernel");
    for (int v = 0; v < V; ++v) {
        if (outs[v] == nullptr) continue;
        column_finish_kernel<><<<grid_for(cols, 256), 256, 0, stream>>>(outs[v], partials + v * ch.chunks * cols,
                                                                     ch.chunks, cols);
        CAE_CUDA_CHECK_LAUNCH("column_finish_kernel");
    }
}

}  // namespace cae::cuda
