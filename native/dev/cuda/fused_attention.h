// The fused attention kernels (attention_fused.h) behind the attention ops' signature, for the
// lab: head dims 16 to 128 (multiples of 16), 1 to 256 queries and 2 to 256 keys. The forward
// leaves each row's max and sum of exponentials in `stats` ([pairs, Nq, 2]) instead of the
// probabilities, and the backward recomputes the probabilities from there. Not part of libcae:
// it moves into the CUDA backend when a GPU run has validated it and timed it faster than the
// batched-GEMM attention (attention_lab).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/backend.h"

namespace cae::lab {

class FusedAttention {
public:
    // Grants the kernels the shared memory they need, up to the device's opt-in limit.
    FusedAttention(int device, cudaStream_t stream);
    ~FusedAttention();
    FusedAttention(const FusedAttention&) = delete;
    FusedAttention& operator=(const FusedAttention&) = delete;

    // Whether the kernels take this shape (head dim, lengths, and every pass within the shared
    // memory the device allows).
    bool applies(const AttentionShape& s) const;
    // As Backend::attention_forward, with `stats` instead of the probabilities (null: no backward).
    void forward(Dest out, float* stats, const float* q, const float* k, const float* v, const AttentionShape& s);
    // As Backend::attention_backward from the forward's stats; the three gradients are all fp32
    // (accumulated) or all bf16 (overwritten).
    void backward(Dest dq, Dest dk, Dest dv, const float* dout, const float* stats, const float* q, const float* k,
                  const float* v, const AttentionShape& s);

private:
    cudaStream_t stream_;
    int64_t smem_limit_ = 0;
    float* rowdot_ = nullptr;  // [pairs, Nq] D_i, grown as needed
    int64_t rowdot_floats_ = 0;
};

}  // namespace cae::lab
