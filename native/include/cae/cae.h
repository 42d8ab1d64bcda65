/*
 * cae.h - the public C ABI of libcae, the native engine of CAE-Java.
 *
 * Rules of this interface:
 *  - Plain C with fixed-width types. No struct is passed by value; small option and
 *    result structs are passed by pointer.
 *  - Opaque handles with create/destroy pairs. Every destroy accepts NULL.
 *  - Every fallible function returns a cae_status (CAE_OK = 0). On failure the message
 *    of the calling thread's last error is available from cae_last_error().
 *  - Every argument is checked at this boundary: a NULL or destroyed handle, a size out of
 *    range or a wrong enum value gives a status and a message, never an abort.
 *  - Objects are not synchronized: one thread at a time may use a context and the
 *    buffers and models made from it. Distinct contexts may be used concurrently.
 */
#ifndef CAE_CAE_H
#define CAE_CAE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CAE_BUILDING_LIBRARY)
#define CAE_API __attribute__((visibility("default")))
#else
#define CAE_API
#endif

/* Bumped on every incompatible change of this header. Java refuses a library whose
 * cae_abi_version() differs from the value its bindings were generated with. */
#define CAE_ABI_VERSION 3

/* ---------------------------------------------------------------- status and errors */

typedef int32_t cae_status;

enum cae_status_code {
    CAE_OK = 0,
    CAE_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, a value out of range, a wrong enum */
    CAE_ERR_INVALID_HANDLE = 2,   /* a handle that was destroyed or never created */
    CAE_ERR_OUT_OF_MEMORY = 3,    /* host or device allocation failed */
    CAE_ERR_UNSUPPORTED = 4,      /* a backend or feature not compiled in or not usable here */
    CAE_ERR_DEVICE = 5,           /* the CUDA driver or runtime reported an error */
    CAE_ERR_IO = 6,               /* reading or writing a file failed */
    CAE_ERR_NUMERICAL = 7,        /* NaN or Inf where a finite value is required */
    CAE_ERR_INTERNAL = 8,         /* a bug in libcae: please report it */
    CAE_ERR_COMM = 9              /* a collective operation between processes failed */
};

/* A static, never-NULL name such as "CAE_ERR_INVALID_ARGUMENT" ("CAE_UNKNOWN_STATUS"
 * for codes this library does not know). */
CAE_API const char* cae_status_name(cae_status status);

/* The message of the last failed call on the calling thread, or "" if none. The pointer
 * stays valid until the next failing call on this thread. */
CAE_API const char* cae_last_error(void);

/* ---------------------------------------------------------------- version and build */

/* Returns CAE_ABI_VERSION as compiled into the library. */
CAE_API int32_t cae_abi_version(void);

/* A static JSON object describing this build: library version, ABI version, BLAS
 * ("openblas" or "builtin"), OpenMP, whether CUDA code was compiled and for which
 * architectures. */
CAE_API const char* cae_build_info(void);

/* ---------------------------------------------------------------- backends and devices */

typedef int32_t cae_backend;

enum cae_backend_kind {
    CAE_BACKEND_CPU = 0,
    CAE_BACKEND_CUDA = 1,
    CAE_BACKEND_AUTO = 2 /* CUDA when a device and driver are present, else CPU */
};

typedef struct cae_backend_info {
    int32_t compiled;   /* 1 when the backend's code is in this library */
    int32_t usable;     /* 1 when a context of this backend can be created here */
    char reason[256];   /* why it is (not) usable, NUL-terminated */
} cae_backend_info;

CAE_API cae_status cae_backend_query(cae_backend backend, cae_backend_info* out);

typedef struct cae_device_info {
    char name[256];          /* NUL-terminated */
    int64_t total_memory;    /* bytes */
    int64_t free_memory;     /* bytes, at the time of the query */
    int32_t compute_major;
    int32_t compute_minor;
    int32_t multiprocessors;
    int32_t reserved;
} cae_device_info;

/* Number of CUDA devices usable by this library: 0 without CUDA support compiled in,
 * without a driver, or without a device (that is not an error). */
CAE_API cae_status cae_device_count(int32_t* count);

CAE_API cae_status cae_device_query(int32_t index, cae_device_info* out);

/* ---------------------------------------------------------------- contexts */

typedef struct cae_context cae_context;

typedef struct cae_context_options {
    cae_backend backend;   /* CAE_BACKEND_CPU, _CUDA or _AUTO */
    int32_t device_index;  /* CUDA device ordinal; must be 0 on the CPU */
    int32_t num_threads;   /* CPU worker threads; 0 = one per available core */
    int32_t reserved;      /* must be 0 */
    uint64_t seed;         /* the run seed, reported by cae_context_query (calls that draw
                              random numbers take their seed explicitly) */
} cae_context_options;

/* Fills options with the defaults: AUTO backend, device 0, all cores, seed 0. */
CAE_API cae_status cae_context_options_init(cae_context_options* options);

CAE_API cae_status cae_context_create(const cae_context_options* options, cae_context** out);

/* Releases the handle. Buffers made from the context stay valid until they are destroyed:
 * the context's resources are freed with the last of them. NULL is accepted. */
CAE_API cae_status cae_context_destroy(cae_context* context);

typedef struct cae_context_info {
    cae_backend backend;   /* the backend chosen (never AUTO) */
    int32_t device_index;
    int32_t num_threads;
    int32_t reserved;
    uint64_t seed;
    char description[256]; /* e.g. "cpu: 2 threads, openblas" or the device name */
} cae_context_info;

CAE_API cae_status cae_context_query(const cae_context* context, cae_context_info* out);

/* Waits until all work queued on the context has finished. */
CAE_API cae_status cae_context_synchronize(cae_context* context);

/* The arithmetic of the linear layers' matrix products in a training step. */
typedef int32_t cae_precision;

enum cae_precision_kind {
    CAE_PRECISION_FP32 = 0,  /* fp32 throughout (the reference) */
    CAE_PRECISION_BF16 = 1   /* the linear layers' GEMM operands rounded to bfloat16, products summed in
                              * fp32 (tensor cores on CUDA; emulated on the CPU); weights, optimizer
                              * state, activations, attention, norms and losses stay fp32 */
};

/* The context's matrix-multiply rate at a precision: times `repeats` GEMMs of m x k by k x n on
 * the backend (after one untimed warm-up) and writes the best in GFLOP/s (2 m n k per GEMM), the
 * peak that model FLOP utilization is reported against. CAE_PRECISION_FP32 times an fp32 GEMM;
 * CAE_PRECISION_BF16 the GEMM of a training step's linear layers at bf16 with both operands
 * already rounded (the tensor cores' rate on CUDA; an emulation on the CPU). */
CAE_API cae_status cae_context_measure_gemm(cae_context* context, cae_precision precision, int32_t m, int32_t n,
                                            int32_t k, int32_t repeats, double* gflops);

/* ---------------------------------------------------------------- buffers */

typedef struct cae_buffer cae_buffer;

typedef int32_t cae_memory_kind;

enum cae_memory_kind_code {
    CAE_MEMORY_HOST = 0,        /* ordinary host memory */
    CAE_MEMORY_HOST_PINNED = 1, /* page-locked host memory (plain host memory on the CPU) */
    CAE_MEMORY_DEVICE = 2       /* memory of the context's backend: GPU memory on CUDA */
};

/* Allocates `bytes` (> 0) bytes, zero-filled, aligned to at least 64 bytes. */
CAE_API cae_status cae_buffer_create(cae_context* context, cae_memory_kind kind, int64_t bytes,
                                     cae_buffer** out);

CAE_API cae_status cae_buffer_destroy(cae_buffer* buffer);

CAE_API cae_status cae_buffer_size(const cae_buffer* buffer, int64_t* bytes);

CAE_API cae_status cae_buffer_kind(const cae_buffer* buffer, cae_memory_kind* kind);

/* The host address of a HOST or HOST_PINNED buffer (DEVICE buffers have none). */
CAE_API cae_status cae_buffer_host_pointer(cae_buffer* buffer, void** out);

/* Copies `bytes` bytes from host memory into the buffer at `offset`. Returns when `src`
 * may be reused. */
CAE_API cae_status cae_buffer_write(cae_buffer* buffer, int64_t offset, const void* src,
                                    int64_t bytes);

/* Copies `bytes` bytes from the buffer at `offset` into host memory. Returns when the
 * data is in `dst`. */
CAE_API cae_status cae_buffer_read(const cae_buffer* buffer, int64_t offset, void* dst,
                                   int64_t bytes);

/* Copies between two buffers of the same context (any kinds). Overlapping ranges of one
 * buffer are refused. */
CAE_API cae_status cae_buffer_copy(cae_buffer* dst, int64_t dst_offset, const cae_buffer* src,
                                   int64_t src_offset, int64_t bytes);

/* Sets `bytes` bytes at `offset` to `value`. */
CAE_API cae_status cae_buffer_fill(cae_buffer* buffer, int64_t offset, int64_t bytes,
                                   uint8_t value);

/* ---------------------------------------------------------------- tensors */

typedef int32_t cae_dtype;

enum cae_dtype_code {
    CAE_DTYPE_F32 = 0,
    CAE_DTYPE_BF16 = 1,
    CAE_DTYPE_U8 = 2,
    CAE_DTYPE_I32 = 3
};

#define CAE_MAX_DIMS 8

/* A view of a dense, contiguous, row-major tensor passed into or out of a call: either host
 * memory (`host_data`, with `buffer` NULL) or a range of a buffer of the same context
 * (`buffer` and its byte `offset`, with `host_data` NULL). */
typedef struct cae_tensor {
    cae_dtype dtype;
    int32_t ndim;
    int64_t shape[CAE_MAX_DIMS];
    void* host_data;
    cae_buffer* buffer;
    int64_t offset;
} cae_tensor;

/* ---------------------------------------------------------------- the CAE model */

typedef struct cae_model cae_model;

typedef int32_t cae_target;

enum cae_target_kind {
    CAE_TARGET_PIXEL_NORM = 0 /* masked patches' pixels, normalized per patch (MAE's norm_pix) */
};

/* The model's configuration, with the official CAE argument names. */
typedef struct cae_model_config {
    int32_t img_size;                     /* square images of img_size x img_size */
    int32_t patch_size;                   /* divides img_size */
    int32_t in_chans;
    int32_t embed_dim;                    /* encoder width D, a multiple of 4 */
    int32_t depth;                        /* encoder blocks */
    int32_t num_heads;                    /* divides embed_dim */
    float mlp_ratio;                      /* MLP hidden width = (int)(D * mlp_ratio) */
    int32_t regressor_depth;
    int32_t decoder_depth;
    int32_t decoder_num_heads;            /* heads of the regressor and the decoder */
    int32_t decoder_embed_dim;            /* must equal embed_dim */
    float layer_scale_init_value;         /* encoder LayerScale; 0: no gammas */
    float decoder_layer_scale_init_value; /* regressor and decoder; 0: decoder has no gammas,
                                             the regressor's are frozen ones */
    float align_loss_weight;              /* weight of the alignment MSE (2 in CAE) */
    float drop_path_rate;                 /* stochastic depth, spaced 0..rate in each stack */
    float layer_norm_eps;                 /* 1e-6 */
    float norm_pix_eps;                   /* 1e-6: per-patch target normalization */
    cae_target target;
    int32_t reserved;                     /* must be 0 */
} cae_model_config;

/* Fills the CAE-base configuration (ViT-B/16 at 224, regressor 4, decoder 4, pixel target). */
CAE_API cae_status cae_model_config_init(cae_model_config* config);

/* The parameters a model of a configuration holds, as its parameter table lists them. */
typedef struct cae_model_config_info {
    int32_t param_count;      /* parameter tensors: cae_model_param_count of such a model */
    int32_t reserved;         /* 0 */
    int64_t total_floats;     /* the sum of every parameter's numel */
    int64_t trainable_floats; /* the sum over the trainable ones; the rest are the fixed position
                                 embeddings and the frozen gammas, recomputed from the config */
} cae_model_config_info;

/* Checks a configuration as cae_model_create does, without creating a model or allocating its
 * parameters, and describes its parameters in `out`. CAE_ERR_INVALID_ARGUMENT names the first bad
 * field, with the message cae_model_create would give. */
CAE_API cae_status cae_model_config_check(const cae_model_config* config, cae_model_config_info* out);

/* Creates a model with the official initialization, drawn from `seed`. */
CAE_API cae_status cae_model_create(cae_context* context, const cae_model_config* config,
                                    uint64_t seed, cae_model** out);

CAE_API cae_status cae_model_destroy(cae_model* model);

CAE_API cae_status cae_model_get_config(const cae_model* model, cae_model_config* out);

typedef struct cae_param_info {
    char name[128];        /* official CAE name, e.g. "encoder.blocks.0.attn.qkv.weight" */
    cae_dtype dtype;       /* F32 */
    int32_t ndim;
    int64_t shape[4];
    int64_t numel;
    int32_t trainable;     /* 0 for the fixed position embeddings and frozen gammas */
    int32_t decayed;       /* 1 when AdamW applies weight decay to it */
} cae_param_info;

CAE_API cae_status cae_model_param_count(const cae_model* model, int32_t* count);

CAE_API cae_status cae_model_param_info(const cae_model* model, int32_t index, cae_param_info* out);

/* Index of the parameter called `name`, or CAE_ERR_INVALID_ARGUMENT naming it. */
CAE_API cae_status cae_model_param_find(const cae_model* model, const char* name, int32_t* index);

typedef int32_t cae_slot;

enum cae_slot_kind {
    CAE_SLOT_VALUE = 0,      /* the parameter */
    CAE_SLOT_GRAD = 1,       /* its gradient from the last step or cae_compute_gradients */
    CAE_SLOT_EXP_AVG = 2,    /* AdamW first moment */
    CAE_SLOT_EXP_AVG_SQ = 3  /* AdamW second moment */
};

/* Copies `count` (= the parameter's numel) floats of a parameter slot to or from host memory. */
CAE_API cae_status cae_model_read(const cae_model* model, int32_t index, cae_slot slot, float* dst,
                                  int64_t count);
CAE_API cae_status cae_model_write(cae_model* model, int32_t index, cae_slot slot, const float* src,
                                   int64_t count);

/* Options of one training step. */
/* Hyperparameters are doubles: the optimizer derives its step scalars (1 - beta2, the bias
 * corrections, 1 - lr * weight_decay) in double before rounding them to float, as PyTorch does. */
typedef struct cae_step_options {
    double lr;
    double weight_decay;   /* applied to decayed parameters only */
    double beta1;
    double beta2;
    double eps;
    double max_grad_norm;  /* global-norm clip; <= 0: no clipping */
    int64_t step;          /* 1-based optimizer step: AdamW bias correction, drop-path stream */
    uint64_t seed;         /* run seed: stochastic depth draws depend on (seed, step) only */
    int32_t drop_path;     /* 1: stochastic depth at the config's rate; 0: off */
    cae_precision precision; /* CAE_PRECISION_FP32 (0) or CAE_PRECISION_BF16 */
    /* Data-parallel steps: this process's rows are rows [batch_offset, batch_offset + B) of a
     * global batch of global_batch rows, so that stochastic depth draws for a row do not depend
     * on the number of processes. 0 and 0: the batch is the whole batch. */
    int64_t batch_offset;
    int64_t global_batch;
} cae_step_options;

/* lr 0, weight decay 0.05, betas (0.9, 0.999), eps 1e-8, clip 3.0, step 1, seed 0, drop path on,
 * fp32. */
CAE_API cae_status cae_step_options_init(cae_step_options* options);

typedef struct cae_step_result {
    float loss;            /* loss_main + align_loss_weight * loss_align */
    float loss_main;       /* pixel-target MSE */
    float loss_align;      /* alignment MSE */
    float grad_norm;       /* global L2 norm of the gradients before clipping */
    int32_t skipped;       /* 1 when the loss or gradients were not finite: nothing updated */
    int32_t replayed;      /* 1 when forward and backward ran as one recorded CUDA graph: forward_ms
                            * then holds both and backward_ms is 0 */
    double forward_ms;
    double backward_ms;
    double optimizer_ms;
    double total_ms;
    double reduce_ms;      /* averaging gradients and losses over the ranks (cae_model_set_comm); 0 alone */
} cae_step_result;

/* One training step on a batch: forward (encoder on visible patches, alignment pass on the
 * masked ones, regressor, decoder, losses), backward, global-norm clip and AdamW.
 * images: F32 [B, in_chans, img_size, img_size], normalized. mask: U8 [B, N] with 1 = masked,
 * the same count in every row, at least one masked and one visible patch per row. When the
 * loss or the gradient norm is not finite the update is skipped (result->skipped = 1). */
CAE_API cae_status cae_train_step(cae_model* model, const cae_tensor* images, const cae_tensor* mask,
                                  const cae_step_options* options, cae_step_result* result);

/* Losses and gradients (CAE_SLOT_GRAD) of a batch without an update, at the precision and with the
 * stochastic depth (drop_path, seed, step, batch_offset, global_batch) of `options`; its optimizer
 * settings are not used. NULL options: fp32 without stochastic depth. grad_norm is filled; the
 * timings too. */
CAE_API cae_status cae_compute_gradients(cae_model* model, const cae_tensor* images, const cae_tensor* mask,
                                         const cae_step_options* options, cae_step_result* result);

/* Encoder features of whole images (no mask, no stochastic depth): cls_out F32 [B, D] gets the
 * cls token after the encoder's final LayerNorm, mean_out F32 [B, D] the mean of the patch
 * tokens after it. Either output may be NULL. */
CAE_API cae_status cae_encode(cae_model* model, const cae_tensor* images, cae_tensor* cls_out,
                              cae_tensor* mean_out);

/* The decoder's predictions for the masked patches: pred_out F32 [B, Nm, patch*patch*in_chans]
 * in (py, px, c) order, in the per-patch normalized space of the target, masked patches in
 * ascending index order. No stochastic depth. */
CAE_API cae_status cae_predict(cae_model* model, const cae_tensor* images, const cae_tensor* mask,
                               cae_tensor* pred_out);

/* ---------------------------------------------------------------- communicators */

/* The processes of a data-parallel job. Every rank holds the whole model; a model given a
 * communicator of more than one rank (cae_model_set_comm) sums the gradients of every rank in
 * each cae_train_step and divides them by the rank count before clipping and AdamW, so the
 * ranks stay equal when they start equal. MPI is opened at run time (dlopen of libmpi.so.40, or
 * of CAE_MPI_LIBRARY): libcae loads and runs where none is installed. Open MPI only for now.
 * The collectives below work on host memory and must be called by every rank, in the same
 * order, from one thread at a time. */
typedef struct cae_comm cae_comm;

typedef int32_t cae_comm_kind;

enum cae_comm_kind_code {
    CAE_COMM_AUTO = 0,   /* MPI when a launcher (mpirun, srun) started this process in a job of more
                          * than one process (OMPI_COMM_WORLD_SIZE, PMI_SIZE, SLURM_STEP_NUM_TASKS),
                          * else SINGLE */
    CAE_COMM_SINGLE = 1, /* this process alone: size 1, every collective a no-op */
    CAE_COMM_MPI = 2     /* a duplicate of MPI_COMM_WORLD; MPI is initialized here (MPI_THREAD_SERIALIZED)
                          * when it is not yet, and then finalized at process exit (atexit) */
};

typedef struct cae_comm_info {
    cae_comm_kind kind;  /* SINGLE or MPI */
    int32_t rank;
    int32_t size;
    int32_t local_rank;  /* among the ranks of this machine */
    int32_t local_size;
    char library[128];   /* "single", or the MPI library's version ("Open MPI v4.1.4") */
} cae_comm_info;

/* CAE_ERR_UNSUPPORTED when MPI is asked for and no usable MPI library can be opened;
 * CAE_ERR_COMM when MPI fails to start. */
CAE_API cae_status cae_comm_create(cae_comm_kind kind, cae_comm** out);

/* A duplicate of the caller's MPI communicator: `mpi_comm` points to an MPI_Comm of the MPI
 * library libcae opens (MPI must be initialized by the caller, who also finalizes it). */
CAE_API cae_status cae_comm_create_from_mpi(const void* mpi_comm, cae_comm** out);

/* A model using the communicator keeps it alive until the model is destroyed or detached. */
CAE_API cae_status cae_comm_destroy(cae_comm* comm);

CAE_API cae_status cae_comm_query(const cae_comm* comm, cae_comm_info* out);

/* In place: data[i] becomes the sum over ranks of data[i]. */
CAE_API cae_status cae_comm_allreduce_sum(cae_comm* comm, float* data, int64_t count);
CAE_API cae_status cae_comm_allreduce_sum_f64(cae_comm* comm, double* data, int64_t count);

/* `bytes` bytes at `data` on rank `root` copied to `data` on every rank. */
CAE_API cae_status cae_comm_broadcast(cae_comm* comm, void* data, int64_t bytes, int32_t root);

CAE_API cae_status cae_comm_barrier(cae_comm* comm);

/* Ends every process of the job with exit code `code` (MPI_Abort). Returns CAE_OK only for a
 * communicator of one rank, where it does nothing. */
CAE_API cae_status cae_comm_abort(cae_comm* comm, int32_t code);

/* Attaches a communicator to a model (NULL detaches): from then on cae_train_step averages the
 * gradients and losses over its ranks (the results' losses and grad_norm are those of the global
 * batch). cae_compute_gradients stays local to the calling process. Collective: every rank
 * attaches its communicator of more than one rank at the same point. A model on a CUDA context
 * then sums its gradients on the device with NCCL (opened at run time: CAE_NCCL_LIBRARY, else
 * libnccl.so.2; its unique id broadcast over the communicator); when some rank cannot open NCCL
 * 2.10 or later, every rank sums through host memory with MPI instead (cae_model_query_comm
 * says which and why). CAE_ERR_COMM when NCCL opens but cannot connect the ranks. */
CAE_API cae_status cae_model_set_comm(cae_model* model, cae_comm* comm);

typedef struct cae_model_comm_info {
    int32_t ranks;           /* ranks of the attached communicator; 1 when none is attached */
    int32_t on_device;       /* 1 when the gradients are summed in device memory (NCCL) */
    char reduction[512];     /* how: "none: one process", "MPI on host memory (Open MPI v4.1.4)",
                              * "NCCL 2.21.5 on device memory", or the host path with the reason */
} cae_model_comm_info;

CAE_API cae_status cae_model_query_comm(const cae_model* model, cae_model_comm_info* out);

/* ---------------------------------------------------------------- resource accounting */

typedef struct cae_memory_stats {
    int64_t live_contexts;  /* contexts whose resources are not yet freed */
    int64_t live_buffers;
    int64_t live_models;
    int64_t host_bytes;     /* bytes held in host and host-pinned buffers and workspaces */
    int64_t device_bytes;   /* bytes held in device memory */
} cae_memory_stats;

/* Process-wide counts of what libcae holds right now. */
CAE_API cae_status cae_memory_query(cae_memory_stats* out);

#ifdef __cplusplus
}
#endif

#endif /* CAE_CAE_H */
