// C ABI: the CAE model. Every tensor argument is checked here (dtype, shape, memory, mask
// contents) before the model sees it.
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cae/cae.h"
#include "abi/context.h"
#include "common/error.h"
#include "abi/handles.h"
#include "model/model.h"

namespace {

using cae::cat;

const char* dtype_name(cae_dtype d) {
    switch (d) {
        case CAE_DTYPE_F32: return "F32";
        case CAE_DTYPE_BF16: return "BF16";
        case CAE_DTYPE_U8: return "U8";
        case CAE_DTYPE_I32: return "I32";
    }
    return "unknown dtype";
}

int64_t dtype_size(cae_dtype d) { return d == CAE_DTYPE_BF16 ? 2 : d == CAE_DTYPE_U8 ? 1 : 4; }

std::string shape_string(const cae_tensor& t) {
    std::string s = "[";
    for (int32_t i = 0; i < t.ndim && i < CAE_MAX_DIMS; ++i) s += cat(i ? ", " : "", t.shape[i]);
    return s + "]";
}

std::string expected_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += i ? ", " : "", s += shape[i] < 0 ? "B" : cat(shape[i]);
    return s + "]";
}

// Checks a tensor argument against a dtype and a shape (-1 = any, the batch) and its memory.
// Returns the batch size (the first dimension).
int64_t check_tensor(const cae_tensor* t, const char* arg, cae_dtype dtype, const std::vector<int64_t>& shape,
                     const cae::Context& ctx) {
    CAE_REQUIRE(t != nullptr, arg, " is NULL");
    CAE_REQUIRE(t->dtype == dtype, arg, " has dtype ", dtype_name(t->dtype), ", expected ", dtype_name(dtype));
    CAE_REQUIRE(t->ndim == static_cast<int32_t>(shape.size()), arg, " has ", t->ndim, " dimensions, expected ",
                shape.size(), " ", expected_string(shape));
    int64_t numel = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
        CAE_REQUIRE(t->shape[i] >= 1 && t->shape[i] <= (int64_t(1) << 31), arg, " has shape ", shape_string(*t),
                    ", dimension ", i, " out of range");
        CAE_REQUIRE(shape[i] < 0 || t->shape[i] == shape[i], arg, " has shape ", shape_string(*t), ", expected ",
                    expected_string(shape));
        numel *= t->shape[i];
    }
    CAE_REQUIRE(numel <= (int64_t(1) << 40), arg, " is too large: ", shape_string(*t));
    const int64_t bytes = numel * dtype_size(dtype);
    CAE_REQUIRE((t->host_data != nullptr) != (t->buffer != nullptr), arg,
                " must give exactly one of host_data and buffer");
    if (t->buffer != nullptr) {
        cae::check_handle(t->buffer, cae::HandleKind::Buffer, cat(arg, "->buffer").c_str());
        CAE_REQUIRE(t->buffer->context.get() == &ctx, arg, "->buffer belongs to another context than the model");
        CAE_REQUIRE(t->offset >= 0 && t->offset % dtype_size(dtype) == 0, arg, "->offset ", t->offset,
                    " must be a non-negative multiple of ", dtype_size(dtype));
        CAE_REQUIRE(t->offset <= t->buffer->bytes && bytes <= t->buffer->bytes - t->offset, arg, " (", bytes,
                    " bytes at offset ", t->offset, ") does not fit its buffer of ", t->buffer->bytes, " bytes");
    } else {
        CAE_REQUIRE(t->offset == 0, arg, "->offset must be 0 with host_data");
    }
    return t->shape[0];
}

}  // namespace

namespace cae {
namespace {

// Backend buffers for tensors that are not already in backend memory, kept between calls.
class Staging {
public:
    explicit Staging(Backend& be) : be_(be) {}
    ~Staging() {
        for (auto& s : slots_) be_.release(s.ptr);
    }
    void* get(int slot, size_t bytes) {
        if (slots_.size() <= static_cast<size_t>(slot)) slots_.resize(static_cast<size_t>(slot) + 1);
        Slot& s = slots_[static_cast<size_t>(slot)];
        if (s.bytes < bytes) {
            be_.release(s.ptr);
            s.ptr = nullptr;
            s.bytes = 0;
            s.ptr = be_.alloc(bytes);
            s.bytes = bytes;
        }
        return s.ptr;
    }

private:
    struct Slot {
        void* ptr = nullptr;
        size_t bytes = 0;
    };
    Backend& be_;
    std::vector<Slot> slots_;
};

}  // namespace
}  // namespace cae

namespace {

cae::Model& model_of(const cae_model* m) { return *m->impl; }

// The model's handle carries its staging area next to the model.
struct ModelHandle : cae_model {
    std::shared_ptr<cae::Context> context;
    cae::Staging staging;
    ModelHandle(std::shared_ptr<cae::Context> c, std::unique_ptr<cae::Model> m)
        : cae_model{std::move(m)}, context(std::move(c)), staging(context->backend()) {}
};

ModelHandle& handle_of(cae_model* m) { return static_cast<ModelHandle&>(*m); }

enum StagingSlot { kImages = 0, kOutput0 = 1, kOutput1 = 2 };

// Bytes of a checked tensor.
size_t tensor_bytes(const cae_tensor& t) {
    int64_t n = dtype_size(t.dtype);
    for (int32_t i = 0; i < t.ndim; ++i) n *= t.shape[i];
    return static_cast<size_t>(n);
}

// A checked input tensor as a pointer into backend memory (copying it there when needed).
const void* input_on_backend(ModelHandle& h, const cae_tensor& t, int slot) {
    cae::Backend& be = h.context->backend();
    const bool cpu = be.kind() == cae::BackendKind::CPU;
    if (t.buffer != nullptr) {
        const char* data = static_cast<const char*>(t.buffer->data) + t.offset;
        if (cpu || t.buffer->kind == CAE_MEMORY_DEVICE) return data;
        void* dst = h.staging.get(slot, tensor_bytes(t));
        be.copy_to_device(dst, data, tensor_bytes(t));
        return dst;
    }
    if (cpu) return t.host_data;
    void* dst = h.staging.get(slot, tensor_bytes(t));
    be.copy_to_device(dst, t.host_data, tensor_bytes(t));
    return dst;
}

// A checked output tensor: where the model writes (backend memory), and the copy-out after.
struct Output {
    float* dst = nullptr;
    const cae_tensor* t = nullptr;
};

Output output_on_backend(ModelHandle& h, const cae_tensor* t, int slot) {
    Output o;
    o.t = t;
    if (t == nullptr) return o;
    cae::Backend& be = h.context->backend();
    if (t->buffer != nullptr && (be.kind() == cae::BackendKind::CPU || t->buffer->kind == CAE_MEMORY_DEVICE)) {
        o.dst = reinterpret_cast<float*>(static_cast<char*>(t->buffer->data) + t->offset);
    } else if (t->host_data != nullptr && be.kind() == cae::BackendKind::CPU) {
        o.dst = static_cast<float*>(t->host_data);
    } else {
        o.dst = static_cast<float*>(h.staging.get(slot, tensor_bytes(*t)));
    }
    return o;
}

void finish_output(ModelHandle& h, const Output& o) {
    if (o.t == nullptr) return;
    const cae_tensor& t = *o.t;
    void* final_dst = t.buffer != nullptr ? static_cast<char*>(t.buffer->data) + t.offset : t.host_data;
    if (final_dst != o.dst) h.context->backend().copy_to_host(final_dst, o.dst, tensor_bytes(t));
}

// The mask as host bytes, checked: 0/1 values, the same masked count in every row, at least
// one masked and one visible patch. Returns the masked count.
int64_t check_mask(ModelHandle& h, const cae_tensor& t, int64_t B, int64_t N, std::vector<uint8_t>& host) {
    host.resize(static_cast<size_t>(B * N));
    if (t.host_data != nullptr) {
        std::memcpy(host.data(), t.host_data, host.size());
    } else if (t.buffer->kind == CAE_MEMORY_DEVICE) {
        h.context->backend().copy_to_host(host.data(), static_cast<const char*>(t.buffer->data) + t.offset,
                                          host.size());
    } else {
        std::memcpy(host.data(), static_cast<const char*>(t.buffer->data) + t.offset, host.size());
    }
    int64_t first = -1;
    for (int64_t b = 0; b < B; ++b) {
        int64_t count = 0;
        for (int64_t n = 0; n < N; ++n) {
            uint8_t v = host[static_cast<size_t>(b * N + n)];
            CAE_REQUIRE(v <= 1, "mask[", b, ", ", n, "] is ", int(v), ", expected 0 (visible) or 1 (masked)");
            count += v;
        }
        if (first < 0) first = count;
        CAE_REQUIRE(count == first, "mask row ", b, " masks ", count, " patches but row 0 masks ", first,
                    ": every row must mask the same number");
    }
    CAE_REQUIRE(first >= 1 && first < N, "the mask masks ", first, " of ", N,
                " patches per image: at least one must be masked and one visible");
    return first;
}

struct BatchArgs {
    const float* images;
    std::vector<uint8_t> mask;
    int64_t B;
};

BatchArgs check_batch(ModelHandle& h, const cae_tensor* images, const cae_tensor* mask) {
    const cae::ModelDims& d = h.impl->dims();
    BatchArgs a;
    a.B = check_tensor(images, "images", CAE_DTYPE_F32, {-1, d.chans, d.img, d.img}, *h.context);
    check_tensor(mask, "mask", CAE_DTYPE_U8, {a.B, d.N}, *h.context);
    check_mask(h, *mask, a.B, d.N, a.mask);
    a.images = static_cast<const float*>(input_on_backend(h, *images, kImages));
    return a;
}

void fill_result(cae_step_result* r, const cae::StepOutput& o, float align_weight, double total_ms) {
    std::memset(r, 0, sizeof(*r));
    r->loss_main = o.loss_main;
    r->loss_align = o.loss_align;
    r->loss = o.loss_main + align_weight * o.loss_align;
    r->grad_norm = o.grad_norm;
    r->skipped = o.skipped ? 1 : 0;
    r->replayed = o.replayed ? 1 : 0;
    r->forward_ms = o.forward_ms;
    r->backward_ms = o.backward_ms;
    r->optimizer_ms = o.optimizer_ms;
    r->reduce_ms = o.reduce_ms;
    r->total_ms = total_ms;
}

void check_model(const cae_model* m) { cae::check_handle(m, cae::HandleKind::Model, "model"); }

int check_index(const cae_model* m, int32_t index) {
    const int count = static_cast<int>(model_of(m).table().entries().size());
    CAE_REQUIRE(index >= 0 && index < count, "parameter index ", index, " is out of range: the model has ", count,
                " parameters");
    return index;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

extern "C" {

CAE_API cae_status cae_model_config_init(cae_model_config* config) {
    return cae::abi_guard("cae_model_config_init", [&] {
        CAE_REQUIRE(config != nullptr, "config is NULL");
        cae::default_config(config);
    });
}

CAE_API cae_status cae_model_config_check(const cae_model_config* config, cae_model_config_info* out) {
    return cae::abi_guard("cae_model_config_check", [&] {
        CAE_REQUIRE(out != nullptr, "out is NULL");
        std::memset(out, 0, sizeof(*out));
        CAE_REQUIRE(config != nullptr, "config is NULL");
        // The table a model of this config would build: names and shapes only, no parameter memory.
        const cae::ParamTable table(cae::validate_config(*config));
        int64_t total = 0, trainable = 0;
        for (const cae::ParamEntry& e : table.entries()) {
            total += e.numel;
            if (e.trainable) trainable += e.numel;
        }
        out->param_count = static_cast<int32_t>(table.entries().size());
        out->total_floats = total;
        out->trainable_floats = trainable;
    });
}

CAE_API cae_status cae_model_create(cae_context* context, const cae_model_config* config, uint64_t seed,
                                    cae_model** out) {
    return cae::abi_guard("cae_model_create", [&] {
        CAE_REQUIRE(out != nullptr, "out is NULL");
        *out = nullptr;
        cae::check_handle(context, cae::HandleKind::Context, "context");
        CAE_REQUIRE(config != nullptr, "config is NULL");
        auto model = std::make_unique<cae::Model>(context->impl, *config, seed);
        auto handle = new ModelHandle(context->impl, std::move(model));
        cae::register_handle(static_cast<cae_model*>(handle), cae::HandleKind::Model);
        *out = handle;
    });
}

CAE_API cae_status cae_model_destroy(cae_model* model) {
    return cae::abi_guard("cae_model_destroy", [&] {
        if (!cae::check_handle_or_null(model, cae::HandleKind::Model, "model")) return;
        cae::unregister_handle(model);
        delete &handle_of(model);
    });
}

CAE_API cae_status cae_model_get_config(const cae_model* model, cae_model_config* out) {
    return cae::abi_guard("cae_model_get_config", [&] {
        check_model(model);
        CAE_REQUIRE(out != nullptr, "out is NULL");
        *out = model_of(model).config();
    });
}

CAE_API cae_status cae_model_param_count(const cae_model* model, int32_t* count) {
    return cae::abi_guard("cae_model_param_count", [&] {
        check_model(model);
        CAE_REQUIRE(count != nullptr, "count is NULL");
        *count = static_cast<int32_t>(model_of(model).table().entries().size());
    });
}

CAE_API cae_status cae_model_param_info(const cae_model* model, int32_t index, cae_param_info* out) {
    return cae::abi_guard("cae_model_param_info", [&] {
        check_model(model);
        CAE_REQUIRE(out != nullptr, "out is NULL");
        const cae::ParamEntry& e = model_of(model).table()[check_index(model, index)];
        std::memset(out, 0, sizeof(*out));
        std::strncpy(out->name, e.name.c_str(), sizeof(out->name) - 1);
        out->dtype = CAE_DTYPE_F32;
        out->ndim = static_cast<int32_t>(e.shape.size());
        for (size_t i = 0; i < e.shape.size() && i < 4; ++i) out->shape[i] = e.shape[i];
        out->numel = e.numel;
        out->trainable = e.trainable ? 1 : 0;
        out->decayed = e.decayed ? 1 : 0;
    });
}

CAE_API cae_status cae_model_param_find(const cae_model* model, const char* name, int32_t* index) {
    return cae::abi_guard("cae_model_param_find", [&] {
        check_model(model);
        CAE_REQUIRE(name != nullptr, "name is NULL");
        CAE_REQUIRE(index != nullptr, "index is NULL");
        int i = model_of(model).table().find(name);
        CAE_REQUIRE(i >= 0, "the model has no parameter named \"", name, "\"");
        *index = i;
    });
}

CAE_API cae_status cae_model_read(const cae_model* model, int32_t index, cae_slot slot, float* dst, int64_t count) {
    return cae::abi_guard("cae_model_read", [&] {
        check_model(model);
        const cae::ParamEntry& e = model_of(model).table()[check_index(model, index)];
        CAE_REQUIRE(slot >= CAE_SLOT_VALUE && slot <= CAE_SLOT_EXP_AVG_SQ, "slot is ", slot, ", expected 0 to 3");
        CAE_REQUIRE(count == e.numel, "count is ", count, " but ", e.name, " has ", e.numel, " elements");
        CAE_REQUIRE(dst != nullptr, "dst is NULL");
        model_of(model).read(index, slot, dst);
    });
}

CAE_API cae_status cae_model_write(cae_model* model, int32_t index, cae_slot slot, const float* src, int64_t count) {
    return cae::abi_guard("cae_model_write", [&] {
        check_model(model);
        const cae::ParamEntry& e = model_of(model).table()[check_index(model, index)];
        CAE_REQUIRE(slot >= CAE_SLOT_VALUE && slot <= CAE_SLOT_EXP_AVG_SQ, "slot is ", slot, ", expected 0 to 3");
        CAE_REQUIRE(count == e.numel, "count is ", count, " but ", e.name, " has ", e.numel, " elements");
        CAE_REQUIRE(src != nullptr, "src is NULL");
        model_of(model).write(index, slot, src);
    });
}

CAE_API cae_status cae_step_options_init(cae_step_options* options) {
    return cae::abi_guard("cae_step_options_init", [&] {
        CAE_REQUIRE(options != nullptr, "options is NULL");
        std::memset(options, 0, sizeof(*options));
        options->weight_decay = 0.05;
        options->beta1 = 0.9;
        options->beta2 = 0.999;
        options->eps = 1e-8;
        options->max_grad_norm = 3.0;
        options->step = 1;
        options->drop_path = 1;
    });
}

namespace {

// The step options as the model takes them, validated.
cae::StepOptions step_options(const cae_step_options& o) {
    CAE_REQUIRE(std::isfinite(o.lr) && o.lr >= 0, "options->lr is ", o.lr, ", expected a finite value >= 0");
    CAE_REQUIRE(std::isfinite(o.weight_decay) && o.weight_decay >= 0, "options->weight_decay is ", o.weight_decay,
                ", expected >= 0");
    CAE_REQUIRE(o.beta1 >= 0 && o.beta1 < 1, "options->beta1 is ", o.beta1, ", expected [0, 1)");
    CAE_REQUIRE(o.beta2 >= 0 && o.beta2 < 1, "options->beta2 is ", o.beta2, ", expected [0, 1)");
    CAE_REQUIRE(o.eps > 0 && std::isfinite(o.eps), "options->eps is ", o.eps, ", expected > 0");
    CAE_REQUIRE(std::isfinite(o.max_grad_norm), "options->max_grad_norm is ", o.max_grad_norm);
    CAE_REQUIRE(o.step >= 1, "options->step is ", o.step, ", expected >= 1 (1-based)");
    CAE_REQUIRE(o.drop_path == 0 || o.drop_path == 1, "options->drop_path is ", o.drop_path, ", expected 0 or 1");
    CAE_REQUIRE(o.precision == CAE_PRECISION_FP32 || o.precision == CAE_PRECISION_BF16, "options->precision is ",
                o.precision, ", expected CAE_PRECISION_FP32 (0) or CAE_PRECISION_BF16 (1)");
    cae::StepOptions so;
    so.adam.lr = o.lr;
    so.adam.beta1 = o.beta1;
    so.adam.beta2 = o.beta2;
    so.adam.eps = o.eps;
    so.adam.step = o.step;
    so.adam.max_grad_norm = o.max_grad_norm;
    so.weight_decay = o.weight_decay;
    so.update = true;
    so.drop_path = o.drop_path != 0;
    so.seed = o.seed;
    so.precision = o.precision == CAE_PRECISION_BF16 ? cae::GemmPrecision::BF16 : cae::GemmPrecision::FP32;
    CAE_REQUIRE(o.global_batch >= 0 && o.batch_offset >= 0, "options->batch_offset is ", o.batch_offset,
                " and options->global_batch ", o.global_batch, ", expected values >= 0");
    CAE_REQUIRE(o.global_batch > 0 || o.batch_offset == 0, "options->batch_offset is ", o.batch_offset,
                " without a global_batch");
    so.batch_offset = o.batch_offset;
    so.global_batch = o.global_batch;
    return so;
}

// This process's B rows must lie inside the global batch they are a share of.
void check_rows(const cae::StepOptions& so, int64_t B) {
    CAE_REQUIRE(so.global_batch == 0 || so.batch_offset + B <= so.global_batch, "the batch of ", B,
                " images at options->batch_offset ", so.batch_offset, " passes the end of options->global_batch ",
                so.global_batch);
}

}  // namespace

CAE_API cae_status cae_train_step(cae_model* model, const cae_tensor* images, const cae_tensor* mask,
                                  const cae_step_options* options, cae_step_result* result) {
    return cae::abi_guard("cae_train_step", [&] {
        auto t0 = std::chrono::steady_clock::now();
        check_model(model);
        CAE_REQUIRE(options != nullptr, "options is NULL");
        CAE_REQUIRE(result != nullptr, "result is NULL");
        const cae::StepOptions so = step_options(*options);
        ModelHandle& h = handle_of(model);
        BatchArgs batch = check_batch(h, images, mask);
        check_rows(so, batch.B);
        cae::StepOutput out = h.impl->step(batch.images, batch.mask.data(), batch.B, so);
        fill_result(result, out, h.impl->dims().align_weight, ms_since(t0));
    });
}

CAE_API cae_status cae_compute_gradients(cae_model* model, const cae_tensor* images, const cae_tensor* mask,
                                         const cae_step_options* options, cae_step_result* result) {
    return cae::abi_guard("cae_compute_gradients", [&] {
        auto t0 = std::chrono::steady_clock::now();
        check_model(model);
        CAE_REQUIRE(result != nullptr, "result is NULL");
        cae::StepOptions so;
        if (options != nullptr) {
            so = step_options(*options);
        } else {
            so.drop_path = false;  // NULL: fp32 (the StepOptions default) without stochastic depth
        }
        so.update = false;
        ModelHandle& h = handle_of(model);
        BatchArgs batch = check_batch(h, images, mask);
        check_rows(so, batch.B);
        cae::StepOutput out = h.impl->step(batch.images, batch.mask.data(), batch.B, so);
        fill_result(result, out, h.impl->dims().align_weight, ms_since(t0));
    });
}

CAE_API cae_status cae_encode(cae_model* model, const cae_tensor* images, cae_tensor* cls_out, cae_tensor* mean_out) {
    return cae::abi_guard("cae_encode", [&] {
        check_model(model);
        ModelHandle& h = handle_of(model);
        const cae::ModelDims& d = h.impl->dims();
        int64_t B = check_tensor(images, "images", CAE_DTYPE_F32, {-1, d.chans, d.img, d.img}, *h.context);
        CAE_REQUIRE(cls_out != nullptr || mean_out != nullptr, "cls_out and mean_out are both NULL");
        if (cls_out) check_tensor(cls_out, "cls_out", CAE_DTYPE_F32, {B, d.D}, *h.context);
        if (mean_out) check_tensor(mean_out, "mean_out", CAE_DTYPE_F32, {B, d.D}, *h.context);
        const float* img = static_cast<const float*>(input_on_backend(h, *images, kImages));
        Output cls = output_on_backend(h, cls_out, kOutput0);
        Output mean = output_on_backend(h, mean_out, kOutput1);
        h.impl->encode(img, B, cls.dst, mean.dst);
        finish_output(h, cls);
        finish_output(h, mean);
    });
}

CAE_API cae_status cae_predict(cae_model* model, const cae_tensor* images, const cae_tensor* mask,
                               cae_tensor* pred_out) {
    return cae::abi_guard("cae_predict", [&] {
        check_model(model);
        ModelHandle& h = handle_of(model);
        const cae::ModelDims& d = h.impl->dims();
        BatchArgs batch = check_batch(h, images, mask);
        int64_t Nm = 0;
        for (int64_t n = 0; n < d.N; ++n) Nm += batch.mask[static_cast<size_t>(n)];
        check_tensor(pred_out, "pred_out", CAE_DTYPE_F32, {batch.B, Nm, d.patch_dim}, *h.context);
        Output pred = output_on_backend(h, pred_out, kOutput0);
        h.impl->predict(batch.images, batch.mask.data(), batch.B, pred.dst);
        finish_output(h, pred);
    });
}

}  // extern "C"
