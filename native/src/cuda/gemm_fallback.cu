// The backend's own GEMM kernels, used when cuBLASLt is absent (or forced by CAE_GEMM):
//  - gemm_simt: 64x64 tiles of C per 256-thread block, 4x4 outputs per thread, K in steps of 16
//    through shared memory; plain fp32 FFMA.
//  - gemm_mma:  64x64 tiles per 128-thread block (2x2 warps of 32x32), K in steps of 16,
//    mma.sync.m16n8k8 TF32 tensor-core products; by default each product is done as 3xTF32
//    (a_hi b_hi + a_hi b_lo + a_lo b_hi, hi = x rounded to TF32, lo = x - hi rounded to TF32),
//    which keeps close to fp32 accuracy; with TF32 allowed, one product per pair.
// Both read op(A), op(B) through the transposes and row strides of GemmArgs, zero-pad the edges
// of every tile in shared memory, and write only the rows and columns inside C; beta == 0 never
// reads C. The batch runs on grid.z (in chunks of 65535), rows of tiles on grid.y (in chunks).
#include <algorithm>
#include <cstdint>

#include "cuda/cuda_check.h"
#include "cuda/gemm.h"

namespace cae::cuda {

namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16;
constexpr int64_t kMaxGridY = 65535, kMaxGridZ = 65535;

struct GemmParams {
    int m, n, k;
    float alpha, beta;
    const float* a;
    int64_t lda, sa;
    const float* b;
    int64_t ldb, sb;
    float* c;
    int64_t ldc, sc;
};

// Loads the kBK x kBM slice of op(A) (rows row0.., k k0..) into sa[kk][mm] and the kBK x kBN
// slice of op(B) into sb[kk][nn], zero outside the matrix. Each thread of `threads` loads
// (kBK*kBM)/threads elements of each; the index order follows the contiguous dimension in
// global memory so that a warp reads consecutive addresses.
template <bool TA, bool TB, int threads, int LDS>
__device__ __forceinline__ void load_tiles(float (*sa)[LDS], float (*sb)[LDS], const float* __restrict__ a,
                                           const float* __restrict__ b, const GemmParams& p, int row0, int col0,
                                           int k0, int tid) {
    static_assert((kBK * kBM) % threads == 0 && (kBK * kBN) % threads == 0, "tile loads divide evenly");
#pragma unroll
    for (int r = 0; r < (kBK * kBM) / threads; ++r) {
        const int e = tid + r * threads;
        int kk, mm;
        if (TA) {  // A stored [K, M]: contiguous along m
            mm = e % kBM;
            kk = e / kBM;
        } else {  // A stored [M, K]: contiguous along k
            kk = e % kBK;
            mm = e / kBK;
        }
        const int gm = row0 + mm, gk = k0 + kk;
        float v = 0.0f;
        if (gm < p.m && gk < p.k) v = TA ? a[static_cast<int64_t>(gk) * p.lda + gm] : a[static_cast<int64_t>(gm) * p.lda + gk];
        sa[kk][mm] = v;
    }
#pragma unroll
    for (int r = 0; r < (kBK * kBN) / threads; ++r) {
        const int e = tid + r * threads;
        int kk, nn;
        if (TB) {  // B stored [N, K]: contiguous along k
            kk = e % kBK;
            nn = e / kBK;
        } else {  // B stored [K, N]: contiguous along n
            nn = e % kBN;
            kk = e / kBN;
        }
        const int gn = col0 + nn, gk = k0 + kk;
        float v = 0.0f;
        if (gn < p.n && gk < p.k) v = TB ? b[static_cast<int64_t>(gn) * p.ldb + gk] : b[static_cast<int64_t>(gk) * p.ldb + gn];
        sb[kk][nn] = v;
    }
}

__device__ __forceinline__ void store_c(const GemmParams& p, float* __restrict__ c, int r, int col, float acc) {
    if (r < p.m && col < p.n) {
        float* dst = c + static_cast<int64_t>(r) * p.ldc + col;
        const float v = p.alpha * acc;
        *dst = p.beta == 0.0f ? v : v + p.beta * *dst;
    }
}

// ---------------------------------------------------------------- SIMT

constexpr int kSimtThreads = 256;
constexpr int kSimtLds = kBM + 4;  // row length in shared memory: 16-byte multiple, skews banks
static_assert(kBM == kBN, "the SIMT kernel shares one row length for both tiles");

template <bool TA, bool TB>
__global__ void __launch_bounds__(kSimtThreads) gemm_simt_kernel(GemmParams p, int row_base) {
    __shared__ __align__(16) float sa[kBK][kSimtLds];
    __shared__ __align__(16) float sb[kBK][kSimtLds];
    const int tid = threadIdx.x;
    const int tx = tid % 16, ty = tid / 16;  // thread (ty, tx) owns rows ty*4.., columns tx*4..
    const int row0 = row_base + blockIdx.y * kBM, col0 = blockIdx.x * kBN;
    const int64_t z = blockIdx.z;
    const float* a = p.a + z * p.sa;
    const float* b = p.b + z * p.sb;
    float* c = p.c + z * p.sc;

    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < p.k; k0 += kBK) {
        load_tiles<TA, TB, kSimtThreads, kSimtLds>(sa, sb, a, b, p, row0, col0, k0, tid);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kBK; ++kk) {
            const float4 av = *reinterpret_cast<const float4*>(&sa[kk][ty * 4]);
            const float4 bv = *reinterpret_cast<const float4*>(&sb[kk][tx * 4]);
            const float ar[4] = {av.x, av.y, av.z, av.w};
            const float br[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(ar[i], br[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) store_c(p, c, row0 + ty * 4 + i, col0 + tx * 4 + j, acc[i][j]);
}

// ---------------------------------------------------------------- tensor cores (mma.sync)

constexpr int kMmaThreads = 128;
constexpr int kMmaLds = kBM + 8;  // row stride = 8 (mod 32) banks: fragment loads conflict-free

__device__ __forceinline__ uint32_t to_tf32(float x) {
    uint32_t r;
#ifdef CAE_CUDA_EMULATOR
    r = ::cae_emu::cvt_rna_tf32(x);
#else
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
#endif
    return r & 0xffffe000u;  // the 19 bits a TF32 operand has
}

// hi = x rounded to TF32; lo = (x - hi) rounded to TF32.
__device__ __forceinline__ void split_tf32(float x, uint32_t& hi, uint32_t& lo) {
    hi = to_tf32(x);
    lo = to_tf32(x - __uint_as_float(hi));
}

// d += a (16x8, row) * b (8x8, col); fragments per the PTX ISA (m16n8k8, .tf32):
// a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4); b0 (t, g), b1 (t+4, g);
// d0, d1 (g, 2t, 2t+1), d2, d3 (g+8, 2t, 2t+1), with g = lane / 4, t = lane % 4.
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

template <bool TA, bool TB, bool THREE_PASS>
__global__ void __launch_bounds__(kMmaThreads) gemm_mma_kernel(GemmParams p, int row_base) {
    __shared__ __align__(16) float sa[kBK][kMmaLds];
    __shared__ __align__(16) float sb[kBK][kMmaLds];
    const int tid = threadIdx.x;
    const int warp = tid / 32, lane = tid % 32;
    const int g = lane / 4, t = lane % 4;
    const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;  // the warp's 32x32 corner in the tile
    const int row0 = row_base + blockIdx.y * kBM, col0 = blockIdx.x * kBN;
    const int64_t z = blockIdx.z;
    const float* a = p.a + z * p.sa;
    const float* b = p.b + z * p.sb;
    float* c = p.c + z * p.sc;

    float acc[2][4][4];
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.0f;

    for (int k0 = 0; k0 < p.k; k0 += kBK) {
        load_tiles<TA, TB, kMmaThreads, kMmaLds>(sa, sb, a, b, p, row0, col0, k0, tid);
        __syncthreads();
#pragma unroll
        for (int ks = 0; ks < kBK; ks += 8) {
            uint32_t ahi[2][4], alo[2][4], bhi[4][2], blo[4][2];
#pragma unroll
            for (int mi = 0; mi < 2; ++mi) {
                const int r = wm + mi * 16 + g;
                const float v[4] = {sa[ks + t][r], sa[ks + t][r + 8], sa[ks + t + 4][r], sa[ks + t + 4][r + 8]};
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    if (THREE_PASS) {
                        split_tf32(v[e], ahi[mi][e], alo[mi][e]);
                    } else {
                        ahi[mi][e] = to_tf32(v[e]);
                    }
                }
            }
#pragma unroll
            for (int ni = 0; ni < 4; ++ni) {
                const int col = wn + ni * 8 + g;
                const float v[2] = {sb[ks + t][col], sb[ks + t + 4][col]};
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    if (THREE_PASS) {
                        split_tf32(v[e], bhi[ni][e], blo[ni][e]);
                    } else {
                        bhi[ni][e] = to_tf32(v[e]);
                    }
                }
            }
#pragma unroll
            for (int mi = 0; mi < 2; ++mi)
#pragma unroll
                for (int ni = 0; ni < 4; ++ni) {
                    if (THREE_PASS) {  // small terms first
                        mma_tf32(acc[mi][ni], alo[mi], bhi[ni]);
                        mma_tf32(acc[mi][ni], ahi[mi], blo[ni]);
                    }
                    mma_tf32(acc[mi][ni], ahi[mi], bhi[ni]);
                }
        }
        __syncthreads();
    }
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
            const int r = row0 + wm + mi * 16 + g;
            const int col = col0 + wn + ni * 8 + 2 * t;
            store_c(p, c, r, col, acc[mi][ni][0]);
            store_c(p, c, r, col + 1, acc[mi][ni][1]);
            store_c(p, c, r + 8, col, acc[mi][ni][2]);
            store_c(p, c, r + 8, col + 1, acc[mi][ni][3]);
        }
}

// ---------------------------------------------------------------- C = beta C

__global__ void scale_c_kernel(float* c, int64_t ldc, int64_t sc, int64_t m, int64_t n, int64_t batch, float beta) {
    const int64_t total = batch * m * n;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t z = i / (m * n), rem = i % (m * n), r = rem / n, col = rem % n;
        float* dst = c + z * sc + r * ldc + col;
        *dst = beta == 0.0f ? 0.0f : beta * *dst;
    }
}

GemmParams params_of(const GemmArgs& g) {
    GemmParams p;
    p.m = static_cast<int>(g.m);
    p.n = static_cast<int>(g.n);
    p.k = static_cast<int>(g.k);
    p.alpha = g.alpha;
    p.beta = g.beta;
    p.a = g.a;
    p.lda = g.lda;
    p.sa = g.stride_a;
    p.b = g.b;
    p.ldb = g.ldb;
    p.sb = g.stride_b;
    p.c = g.c;
    p.ldc = g.ldc;
    p.sc = g.stride_c;
    return p;
}

void check_int_sizes(const GemmArgs& g) {
    const int64_t lim = int64_t{1} << 30;
    if (g.m >= lim || g.n >= lim || g.k >= lim) {
        fail(CAE_ERR_UNSUPPORTED, "fallback GEMM: sizes m ", g.m, " n ", g.n, " k ", g.k, " exceed 2^30");
    }
}

// Launches `kernel` over every (batch chunk, row chunk) of the problem.
template <class Kernel>
void launch_tiles(Kernel kernel, int threads, const GemmArgs& g, cudaStream_t stream, const char* name) {
    GemmParams p = params_of(g);
    const int64_t tiles_n = ceil_div<int64_t>(g.n, kBN);
    const int64_t tiles_m = ceil_div<int64_t>(g.m, kBM);
    for (int64_t z0 = 0; z0 < g.batch; z0 += kMaxGridZ) {
        const int64_t zs = std::min(kMaxGridZ, g.batch - z0);
        GemmParams pz = p;
        pz.a = g.a + z0 * g.stride_a;
        pz.b = g.b + z0 * g.stride_b;
        pz.c = g.c + z0 * g.stride_c;
        for (int64_t y0 = 0; y0 < tiles_m; y0 += kMaxGridY) {
            const int64_t ys = std::min(kMaxGridY, tiles_m - y0);
            dim3 grid(static_cast<unsigned>(tiles_n), static_cast<unsigned>(ys), static_cast<unsigned>(zs));
            kernel<<<grid, threads, 0, stream>>>(pz, static_cast<int>(y0 * kBM));
            CAE_CUDA_CHECK_LAUNCH("a fallback GEMM kernel");
        }
    }
    (void)name;
}

}  // namespace

void gemm_simt(const GemmArgs& g, cudaStream_t stream) {
    check_int_sizes(g);
    if (g.trans_a) {
        if (g.trans_b) launch_tiles(gemm_simt_kernel<true, true>, kSimtThreads, g, stream, "gemm_simt_kernel");
        else launch_tiles(gemm_simt_kernel<true, false>, kSimtThreads, g, stream, "gemm_simt_kernel");
    } else {
        if (g.trans_b) launch_tiles(gemm_simt_kernel<false, true>, kSimtThreads, g, stream, "gemm_simt_kernel");
        else launch_tiles(gemm_simt_kernel<false, false>, kSimtThreads, g, stream, "gemm_simt_kernel");
    }
}

void gemm_mma(const GemmArgs& g, bool single_pass_tf32, cudaStream_t stream) {
    check_int_sizes(g);
    const int t = kMmaThreads;
    if (single_pass_tf32) {
        if (g.trans_a) {
            if (g.trans_b) launch_tiles(gemm_mma_kernel<true, true, false>, t, g, stream, "gemm_mma_kernel");
            else launch_tiles(gemm_mma_kernel<true, false, false>, t, g, stream, "gemm_mma_kernel");
        } else {
            if (g.trans_b) launch_tiles(gemm_mma_kernel<false, true, false>, t, g, stream, "gemm_mma_kernel");
            else launch_tiles(gemm_mma_kernel<false, false, false>, t, g, stream, "gemm_mma_kernel");
        }
    } else {
        if (g.trans_a) {
            if (g.trans_b) launch_tiles(gemm_mma_kernel<true, true, true>, t, g, stream, "gemm_mma_kernel");
            else launch_tiles(gemm_mma_kernel<true, false, true>, t, g, stream, "gemm_mma_kernel");
        } else {
            if (g.trans_b) launch_tiles(gemm_mma_kernel<false, true, true>, t, g, stream, "gemm_mma_kernel");
            else launch_tiles(gemm_mma_kernel<false, false, true>, t, g, stream, "gemm_mma_kernel");
        }
    }
}

void gemm_scale_c(const GemmArgs& g, cudaStream_t stream) {
    const int64_t total = g.batch * g.m * g.n;
    if (total <= 0) return;
    scale_c_kernel<<<grid_for(total, 256), 256, 0, stream>>>(g.c, g.ldc, g.stride_c, g.m, g.n, g.batch, g.beta);
    CAE_CUDA_CHECK_LAUNCH("scale_c_kernel");
}

}  // namespace cae::cuda
