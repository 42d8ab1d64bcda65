// The CAE model on a backend: parameters, gradients and AdamW moments in one flat array each
// (views named by the ParamTable), and the training step, gradients, encoding and prediction.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cae/cae.h"
#include "comm/comm.h"
#include "abi/context.h"
#include "model/layers.h"
#include "model/model_config.h"
#include "model/params.h"
#include "model/workspace.h"

namespace cae {

struct StepOptions {
    AdamWParams adam;
    double weight_decay = 0.05;
    bool update = true;      // false: gradients only
    bool drop_path = true;   // stochastic depth at the config's rate
    uint64_t seed = 0;       // stochastic depth draws depend on (seed, adam.step)
    GemmPrecision precision = GemmPrecision::FP32;  // of the linear layers' GEMMs
    // The rows of this step are rows [batch_offset, batch_offset + B) of a global batch of
    // global_batch rows (0: the step's own batch): stochastic depth draws follow the global row;
    // the global size is only checked.
    int64_t batch_offset = 0;
    int64_t global_batch = 0;
};

struct StepOutput {
    float loss_main = 0, loss_align = 0, grad_norm = 0;
    bool skipped = false;
    bool replayed = false;   // forward and backward ran as one recorded graph: forward_ms holds both
    double forward_ms = 0, backward_ms = 0, optimizer_ms = 0;
    double reduce_ms = 0;    // averaging over the ranks of the communicator
};

class Model {
public:
    Model(std::shared_ptr<Context> context, const cae_model_config& config, uint64_t seed);
    ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    const cae_model_config& config() const { return config_; }
    const ModelDims& dims() const { return dims_; }
    const ParamTable& table() const { return table_; }
    Backend& backend() { return context_->backend(); }

    // Copies parameter `index`'s slot to or from host memory (numel floats).
    void read(int index, cae_slot slot, float* host) const;
    void write(int index, cae_slot slot, const float* host);

    // images: F32 [B, C, H, W] in backend memory; mask: U8 [B, N] host, validated by the caller.
    StepOutput step(const float* images, const uint8_t* mask, int64_t B, const StepOptions& o);

    // With a communicator of more than one rank, step() averages gradients and losses over its
    // ranks before clipping and AdamW. Null: this process alone. Collective over the
    // communicator's ranks: on a device backend each rank opens the device communicator (NCCL)
    // here, or every rank sums through host memory when some rank cannot.
    void set_comm(std::shared_ptr<Communicator> comm);
    // How the gradients are summed ("MPI on host memory", "NCCL 2.21.5 on device memory", ...).
    const std::string& reduction() const { return reduction_; }
    bool reduces_on_device() const { return device_comm_ != nullptr; }
    int ranks() const { return comm_ ? comm_->size() : 1; }

    // cls, mean: F32 [B, D] in backend memory (either may be null).
    void encode(const float* images, int64_t B, float* cls, float* mean);

    // pred: F32 [B, Nm, patch_dim] in backend memory.
    void predict(const float* images, const uint8_t* mask, int64_t B, float* pred);

private:
    struct StepBuffers;
    struct EncodeBuffers;

    float* slot_base(cae_slot slot) const;
    StepBuffers& step_buffers(int64_t B, int64_t Nm);
    void upload_indices(StepBuffers& sb, const uint8_t* mask);
    void upload_drop_scales(StepBuffers& sb, uint64_t seed, int64_t step, int64_t offset);
    // Sums the gradients and the losses (scalars: loss_main, loss_align on the host) over comm_'s
    // ranks, divides them by the rank count and recomputes the gradient norm into sb.scalars.
    void average_over_ranks(StepBuffers& sb, float* scalars);
    // The weights as the passes read them, at `precision` (BF16: from the bf16 copy).
    Weights weights(GemmPrecision precision, bool with_grads) const;
    // Makes params_bf16_ a current bf16 copy of the parameters.
    void refresh_bf16_params();
    void forward(StepBuffers& sb, const float* images, bool with_alignment, bool drop_path, GemmPrecision precision);
    void backward(StepBuffers& sb, GemmPrecision precision);
    // forward + backward of a step, recorded once per (shape, options) where the backend records
    // and replayed after that. Returns false when it ran the passes directly.
    bool forward_backward_recorded(StepBuffers& sb, const float* images, GemmPrecision precision);
    // The encoder (no gradients) over cls + the patches idx [B, n_sel], whose embeddings emb
    // [B, n_sel, D] are in that order, ending with its norm: out [B, 1 + n_sel, D], its GEMMs at
    // `precision`.
    void encode_tokens(const float* emb, const int32_t* idx, int64_t B, int64_t n_sel, const float* drops,
                       float* stream0, float* stream1, BlockActs& acts, BlockScratch& sc, float* out, float* mean,
                       float* rstd, GemmPrecision precision);
    // Rows [offset, offset + B) of the scales of a global batch.
    std::vector<float> drop_scales(uint64_t seed, uint64_t stream, int64_t step, int64_t depth, int64_t B,
                                   int64_t offset) const;

    std::shared_ptr<Context> context_;
    cae_model_config config_;
    ModelDims dims_;
    ParamTable table_;
    float* params_ = nullptr;
    float* grads_ = nullptr;
    float* exp_avg_ = nullptr;
    float* exp_avg_sq_ = nullptr;
    uint16_t* params_bf16_ = nullptr;   // allocated on the first BF16 step
    bool params_bf16_current_ = false;  // false after any change of params_ not mirrored in it
    std::unique_ptr<StepBuffers> step_;
    std::vector<AdamWSegment> segments_;   // AdamW runs for segments_decay_
    double segments_decay_ = -1.0;
    std::unique_ptr<EncodeBuffers> encode_;
    std::shared_ptr<Communicator> comm_;
    std::unique_ptr<DeviceCommunicator> device_comm_;  // sums on the device, where the backend has one
    std::vector<float> comm_staging_;   // host copy of the gradients where no device communicator sums them
    std::string reduction_ = "none: one process";
};

}  // namespace cae

struct cae_model {
    std::unique_ptr<cae::Model> impl;
};
