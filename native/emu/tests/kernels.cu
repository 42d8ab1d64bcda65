// Kernels of the emulator's tests, correct and with planted bugs. Plain CUDA: nvcc compiles this
// file as it is; for the emulator, rewrite_cuda.py rewrites it and g++ compiles it with cuda_emu.h
// force-included, exactly as the backend's sources (tests/CMakeLists.txt).
#include <cstdint>

#include "kernels.h"

namespace emu_test {

namespace {

__global__ void block_sum_kernel(const float* x, float* out, int with_barriers) {
    __shared__ float partial[kReduceThreads];
    const int t = threadIdx.x;
    partial[t] = x[blockIdx.x * kReduceThreads + t];
    if (with_barriers) __syncthreads();
    for (int stride = kReduceThreads / 2; stride > 0; stride /= 2) {
        if (t < stride) partial[t] += partial[t + stride];
        if (with_barriers) __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = partial[0];
}

__device__ __forceinline__ void mma_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#ifdef CAE_CUDA_EMULATOR
    ::cae_emu::mma_m16n8k8_tf32(d, a, b);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// Fragments per the PTX ISA (mma.m16n8k8, .tf32), g = lane / 4, t = lane % 4:
// a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4); b0 (t, g), b1 (t+4, g);
// c/d0, d1 (g, 2t, 2t+1), d2, d3 (g+8, 2t, 2t+1).
__global__ void mma_tile_kernel(const float* a, const float* b, const float* c, float* d, int swap_a1_a2) {
    const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
    uint32_t af[4] = {__float_as_uint(a[g * 8 + t]), __float_as_uint(a[(g + 8) * 8 + t]),
                      __float_as_uint(a[g * 8 + t + 4]), __float_as_uint(a[(g + 8) * 8 + t + 4])};
    if (swap_a1_a2) {
        const uint32_t tmp = af[1];
        af[1] = af[2];
        af[2] = tmp;
    }
    const uint32_t bf[2] = {__float_as_uint(b[t * 8 + g]), __float_as_uint(b[(t + 4) * 8 + g])};
    float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
    mma_tf32(acc, af, bf);
    d[g * 8 + 2 * t] = acc[0];
    d[g * 8 + 2 * t + 1] = acc[1];
    d[(g + 8) * 8 + 2 * t] = acc[2];
    d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

__global__ void tile_reverse_kernel(const float* x, float* out, int load_end) {
    __shared__ float tile[kTile];
    for (int i = threadIdx.x; i < load_end; i += blockDim.x) tile[i] = x[i];
    __syncthreads();
    for (int i = threadIdx.x; i < kTile; i += blockDim.x) out[i] = tile[kTile - 1 - i];
}

__global__ void neighbour_sum_kernel(const float* x, float* out, int n, int read_end) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = x[i] + (i + 1 < read_end ? x[i + 1] : 0.0f);
}

__global__ void warp_sum_kernel(const float* x, float* out, int active_lanes) {
    const int lane = threadIdx.x;
    if (lane >= active_lanes) return;
    float v = x[lane];
    for (int m = 16; m > 0; m /= 2) v += __shfl_xor_sync(0xffffffffu, v, m);
    if (lane == 0) *out = v;
}

// Each half of the warp sums its own 16 values with a shuffle of its own mask: legal divergent code.
__global__ void half_warp_sums_kernel(const float* x, float* out) {
    const int lane = threadIdx.x;
    float v = x[lane];
    if (lane < 16) {
        for (int m = 8; m > 0; m /= 2) v += __shfl_xor_sync(0x0000ffffu, v, m);
    } else {
        for (int m = 8; m > 0; m /= 2) v += __shfl_xor_sync(0xffff0000u, v, m);
    }
    out[lane] = v;
}

// Compiled for at most 64 threads per block.
__global__ void __launch_bounds__(64) bounded_fill_kernel(float* x, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = 1.0f;
}

__global__ void fill_kernel(float* x, int n, float offset) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = static_cast<float>(i) + offset;
}

__global__ void add_kernel(float* x, int n, float v) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += v;
}

__global__ void dynamic_smem_kernel(float* out, int n_floats) {
    extern __shared__ float buffer[];
    for (int i = threadIdx.x; i < n_floats; i += blockDim.x) buffer[i] = static_cast<float>(i);
    __syncthreads();
    for (int i = threadIdx.x; i < n_floats; i += blockDim.x) out[i] = buffer[n_floats - 1 - i];
}

}  // namespace

void launch_block_sum(const float* x, float* out, int blocks, bool with_barriers) {
    block_sum_kernel<<<blocks, kReduceThreads>>>(x, out, with_barriers ? 1 : 0);
}

void launch_mma_tile(const float* a, const float* b, const float* c, float* d, bool swap_a1_a2) {
    mma_tile_kernel<<<1, 32>>>(a, b, c, d, swap_a1_a2 ? 1 : 0);
}

void launch_tile_reverse(const float* x, float* out, int load_end) {
    tile_reverse_kernel<<<1, 16>>>(x, out, load_end);
}

void launch_neighbour_sum(const float* x, float* out, int n, int read_end) {
    neighbour_sum_kernel<<<(n + 127) / 128, 128>>>(x, out, n, read_end);
}

void launch_warp_sum(const float* x, float* out, int active_lanes) {
    warp_sum_kernel<<<1, 32>>>(x, out, active_lanes);
}

void launch_half_warp_sums(const float* x, float* out) { half_warp_sums_kernel<<<1, 32>>>(x, out); }

void launch_bounded_fill(float* x, int n, int threads) { bounded_fill_kernel<<<(n + threads - 1) / threads, threads>>>(x, n); }

void launch_fill(float* x, int n, float offset, dim3 grid, dim3 block, cudaStream_t stream) {
    fill_kernel<<<grid, block, 0, stream>>>(x, n, offset);
}

void launch_add(float* x, int n, float v, cudaStream_t stream) {
    add_kernel<<<(n + 255) / 256, 256, 0, stream>>>(x, n, v);
}

void launch_dynamic_smem(float* out, int n_floats) {
    dynamic_smem_kernel<<<1, 128, static_cast<size_t>(n_floats) * sizeof(float)>>>(out, n_floats);
}

cudaError_t allow_dynamic_smem(int bytes) {
    return cudaFuncSetAttribute(dynamic_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

#ifdef CAE_CUDA_EMULATOR
uint32_t cvt_rna_tf32_model(float x) { return ::cae_emu::cvt_rna_tf32(x); }
#endif

}  // namespace emu_test
