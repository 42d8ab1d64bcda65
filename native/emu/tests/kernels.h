// Launchers of the test kernels (kernels.cu): host functions, so that the test programs stay
// plain C++ against the CUDA runtime API. Each one queues a launch and returns; the caller checks
// cudaGetLastError and synchronizes where the test needs it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace emu_test {

constexpr int kReduceThreads = 256;  // one block sums this many values
constexpr int kTile = 64;            // elements of the shared tile of launch_tile_reverse

// out[b] = sum of x[b * kReduceThreads ...], one block per sum, a tree reduction in shared memory.
// with_barriers = false is the planted bug: the __syncthreads between the levels are left out.
void launch_block_sum(const float* x, float* out, int blocks, bool with_barriers);

// One warp: d (16x8, row-major) = a (16x8, row-major) * b (8x8, row-major) + c through one
// mma.m16n8k8 tf32, each lane loading its fragments per the PTX ISA layout. swap_a1_a2 is the
// planted bug of a fragment loaded from the wrong place.
void launch_mma_tile(const float* a, const float* b, const float* c, float* d, bool swap_a1_a2);

// out[i] = tile[kTile - 1 - i] for a tile of x loaded into shared memory by 16 threads;
// load_end = kTile - 1 is the planted off-by-one that leaves the tile's last element unwritten.
void launch_tile_reverse(const float* x, float* out, int load_end);

// out[i] = x[i] + x[i + 1] for i + 1 < read_end (else x[i]), i < n; read_end = n + 1 is the planted
// off-by-one that reads x[n], past the allocation.
void launch_neighbour_sum(const float* x, float* out, int n, int read_end);

// One warp sums x[0..31] with full-mask __shfl_xor_sync; lanes >= active_lanes return first
// (active_lanes < 32 is the planted bug).
void launch_warp_sum(const float* x, float* out, int active_lanes);

// One warp: lanes 0-15 and 16-31 each sum their 16 values of x with shuffles of their own mask
// (0x0000ffff, 0xffff0000); out[lane] = its half's sum.
void launch_half_warp_sums(const float* x, float* out);

// x[i] = 1 for i < n by a kernel with __launch_bounds__(64), in blocks of `threads`.
void launch_bounded_fill(float* x, int n, int threads);

// x[i] = i + offset for i < n, with the given configuration (for the launch checks).
void launch_fill(float* x, int n, float offset, dim3 grid, dim3 block, cudaStream_t stream);

// x[i] += v for i < n (one block of 256 threads per 256 elements).
void launch_add(float* x, int n, float v, cudaStream_t stream);

// One block writes n_floats of dynamic shared memory (bytes = 4 * n_floats) and copies them back
// reversed: out[i] = n_floats - 1 - i.
void launch_dynamic_smem(float* out, int n_floats);
// cudaFuncSetAttribute(MaxDynamicSharedMemorySize) of the kernel behind launch_dynamic_smem.
cudaError_t allow_dynamic_smem(int bytes);

// The emulator's model of cvt.rna.tf32.f32 (the instruction exists only in device code; millions
// of values are checked faster by calling the model directly than through a kernel).
uint32_t cvt_rna_tf32_model(float x);

}  // namespace emu_test
