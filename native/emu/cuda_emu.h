// The CUDA execution model on the host, force-included (-include) into every source of
// src/cuda when the emulated backend is built (native/emu/CMakeLists.txt). The sources are
// compiled unchanged by g++ against the real CUDA headers, after rewrite_cuda.py has turned the
// CUDA-only syntax into calls of this header:
//   k<<<grid, block, smem, stream>>>(args)   -> cae_emu::launch(k, "k", grid, block, smem, stream, args)
//   __shared__ T name[..];                   -> per-block storage, poisoned with NaN bytes
//   extern __shared__ T name[];              -> the block's dynamic buffer, exactly the launch's size
//   the body of every __global__ function    -> starts with CAE_EMU_KERNEL_ENTRY (launch counting)
// Inline PTX has an #ifdef CAE_CUDA_EMULATOR branch in the source that calls the models below.
// What survives unrewritten does not compile: `__shared__` and `asm` are defined to error tokens.
//
// Each CUDA thread runs as a fiber; a block runs its fibers on one OS thread, switching only at
// __syncthreads and warp collectives (shuffles, mma), which are meeting points of their warp.
#pragma once

#define CAE_CUDA_EMULATOR 1

// The execution-space qualifiers mean nothing on the host (crt/host_defines.h keeps these).
#define __host__
#define __device__
#define __global__
#define __launch_bounds__(...)
#define __forceinline__ inline

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#undef __shared__
#define __shared__ cae_emu_error_shared_memory_was_not_rewritten
#define asm cae_emu_error_inline_ptx_needs_a_CAE_CUDA_EMULATOR_branch

namespace cae_emu {

// ---- the executing CUDA thread (one fiber)
struct ThreadState {
    uint3 thread_idx;
    uint3 block_idx;
    dim3 block_dim;
    dim3 grid_dim;
};
extern thread_local ThreadState* tls_thread;

// ---- the operations a kernel calls (exec.cpp)
void syncthreads();
// A fault inside a kernel: the block stops, the launch's stream records a sticky error.
[[noreturn]] void kernel_fault(const char* what);
void kernel_entry(const char* name, long max_threads = 0);
void* shared_static(const void* key, size_t bytes, size_t align);
void* shared_dynamic();

// A warp-wide meeting point: every live lane posts `in` (at most 64 bytes); once all lanes in
// `mask` have posted, `resolve` computes every lane's `out` (at most 64 bytes) from all posts.
using Resolve = void (*)(const unsigned char (*in)[64], unsigned char (*out)[64], unsigned lanes);
void warp_collective(unsigned mask, Resolve resolve, const void* in, size_t in_bytes, void* out, size_t out_bytes);

// ---- shuffles (__shfl_xor_sync): 8 bytes of value and the source lane per lane
struct ShuffleIn {
    unsigned char value[8];
    int src;
};
void resolve_shuffle(const unsigned char (*in)[64], unsigned char (*out)[64], unsigned lanes);

template <class T>
inline T shfl_xor(unsigned mask, T v, int lane_mask, int width) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move at most 8 bytes");
    const int lane = static_cast<int>((tls_thread->thread_idx.x + tls_thread->thread_idx.y * tls_thread->block_dim.x +
                                       tls_thread->thread_idx.z * tls_thread->block_dim.x * tls_thread->block_dim.y) %
                                      32u);
    ShuffleIn in{};
    std::memcpy(in.value, &v, sizeof(T));
    int src = lane ^ lane_mask;
    if (width < 1 || width > 32 || (width & (width - 1)) != 0) kernel_fault("__shfl_xor_sync: width must be a power of two up to 32");
    if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;  // outside the lane's segment: own value
    in.src = src;
    unsigned char out[8];
    warp_collective(mask, resolve_shuffle, &in, sizeof(in), out, sizeof(out));
    T r;
    std::memcpy(&r, out, sizeof(T));
    return r;
}

// ---- models of the inline PTX of gemm_fallback.cu (checked in test_emulator.cpp)
// cvt.rna.tf32.f32: round to nearest, ties away from zero, to 10 mantissa bits; the result is
// an f32 bit pattern with the low 13 bits zero. NaN stays NaN (canonical 0x7fffffff), inf stays inf.
uint32_t cvt_rna_tf32(float x);
// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32, d = a * b + d, fragments per the PTX ISA
// ("Matrix Fragments for mma.m16n8k8", .tf32): a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4);
// b0 (t, g), b1 (t+4, g); c/d0, d1 (g, 2t, 2t+1), d2, d3 (g+8, 2t, 2t+1); g = lane / 4, t = lane % 4.
// Operands use their upper 19 bits (the low 13 are ignored, as tf32 reads them).
void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);

// ---- launches
struct LaunchConfig {
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
};
// Checks the configuration (as the device does, setting the launch error), then queues the body
// on the stream. body() runs the kernel in the calling fiber's CUDA thread.
struct KernelBody {
    virtual ~KernelBody() = default;
    virtual void run() = 0;
};
void enqueue_launch(const void* key, const char* site, const LaunchConfig& cfg, KernelBody* body);

template <class... P>
struct BoundKernel final : KernelBody {
    void (*fn)(P...);
    std::tuple<std::decay_t<P>...> args;
    template <class... A>
    BoundKernel(void (*f)(P...), A&&... a) : fn(f), args(std::forward<A>(a)...) {}
    void run() override {
        std::apply([this](const auto&... a) { fn(a...); }, args);
    }
};

template <class F, class... A>
struct DeducedKernel final : KernelBody {
    F fn;
    std::tuple<std::decay_t<A>...> args;
    template <class... B>
    DeducedKernel(F f, B&&... b) : fn(f), args(std::forward<B>(b)...) {}
    void run() override {
        std::apply([this](const auto&... a) { fn(a...); }, args);
    }
};

inline LaunchConfig config(dim3 grid, dim3 block, size_t smem = 0, cudaStream_t stream = nullptr) {
    return {grid, block, smem, stream};
}

inline const void* kernel_key(std::nullptr_t) { return nullptr; }
template <class... P>
inline const void* kernel_key(void (*k)(P...)) {
    return reinterpret_cast<const void*>(k);
}

// A kernel named by a function (or a pointer to one): the arguments convert to its parameters now,
// as a launch copies them.
template <class... P, class... A>
void launch(void (*k)(P...), const char* site, const LaunchConfig& cfg, A&&... a) {
    static_assert(sizeof...(P) == sizeof...(A), "a kernel launch with the wrong number of arguments");
    enqueue_launch(reinterpret_cast<const void*>(k), site, cfg, new BoundKernel<P...>(k, std::forward<A>(a)...));
}

// A kernel template whose arguments are deduced from the call: a generic lambda calls it.
template <class F, class... A>
void launch_deduced(F call, const void* key, const char* site, const LaunchConfig& cfg, A&&... a) {
    enqueue_launch(key, site, cfg, new DeducedKernel<F, A...>(call, std::forward<A>(a)...));
}

template <class T>
inline T& shared_array(const void* key, size_t align) {
    return *static_cast<T*>(shared_static(key, sizeof(T), align));
}

}  // namespace cae_emu

// cuda_runtime.h declares its C++ overloads (a kernel instead of const void*) only for nvcc.
template <class... P>
inline cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
    return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}

// ---- the built-in variables and functions kernels use
#define threadIdx (::cae_emu::tls_thread->thread_idx)
#define blockIdx (::cae_emu::tls_thread->block_idx)
#define blockDim (::cae_emu::tls_thread->block_dim)
#define gridDim (::cae_emu::tls_thread->grid_dim)

#define CAE_EMU_KERNEL_ENTRY(name) ::cae_emu::kernel_entry(name);
// A kernel compiled for at most max_threads per block (__launch_bounds__) cannot run with more: the
// device refuses such a launch (too many resources requested); here it is a fault.
#define CAE_EMU_KERNEL_ENTRY_BOUNDED(name, max_threads) ::cae_emu::kernel_entry(name, static_cast<long>(max_threads));

inline void __syncthreads() { ::cae_emu::syncthreads(); }

template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    return ::cae_emu::shfl_xor(mask, v, lane_mask, width);
}

inline unsigned int __float_as_uint(float x) {
    unsigned int u;
    std::memcpy(&u, &x, sizeof(u));
    return u;
}
inline float __uint_as_float(unsigned int u) {
    float x;
    std::memcpy(&x, &u, sizeof(x));
    return x;
}
// The _rn intrinsics: one IEEE operation rounded to nearest even, never contracted (the build
// uses -ffp-contract=off, so a * b + c is never fused unless written as fmaf).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
