package org.caejava.api;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.caejava.bindings.CaeNative;
import org.caejava.bindings.cae_model_comm_info;
import org.caejava.bindings.cae_model_config;
import org.caejava.bindings.cae_param_info;
import org.caejava.bindings.cae_step_options;
import org.caejava.bindings.cae_step_result;
import org.caejava.bindings.cae_tensor;

/**
 * The native CAE model of libcae in a {@link Context}: parameters, gradients and AdamW state on
 * the context's backend, and the calls that train, differentiate, encode and predict.
 *
 * <p>The configuration is a {@link ModelConfig}, field for field {@code cae_model_config}. One
 * thread at a time may use a model; {@link #trainStep} allocates nothing per call.
 *
 * <p>A model owns its native handle ({@code cae_model}: parameters, gradients, optimizer state and
 * workspaces in the context's memory) and the small off-heap argument structs its calls reuse;
 * {@link #close()} frees them. It does not own its context, which must stay open while the model
 * is used, nor the tensors passed to it.
 */
public final class NativeModel implements AutoCloseable {

    private final Context context;
    private final Arena arena;
    private volatile Communicator communicator;
    private final MemorySegment handle;
    private final List<ParamInfo> params;
    private final Map<String, Integer> indexByName;
    private final ModelConfig config;
    // Argument structs reused by every call (a model is used by one thread at a time).
    private final MemorySegment imagesArg;
    private final MemorySegment maskArg;
    private final MemorySegment out0Arg;
    private final MemorySegment out1Arg;
    private final MemorySegment optionsArg;
    private final MemorySegment resultArg;

    private NativeModel(Context context, MemorySegment raw) {
        this.context = context;
        this.arena = Arena.ofShared();
        this.handle = raw.reinterpret(arena, CaeNative::cae_model_destroy);
        try {
            this.imagesArg = cae_tensor.allocate(arena);
            this.maskArg = cae_tensor.allocate(arena);
            this.out0Arg = cae_tensor.allocate(arena);
            this.out1Arg = cae_tensor.allocate(arena);
            this.optionsArg = cae_step_options.allocate(arena);
            this.resultArg = cae_step_result.allocate(arena);
            this.params = readParams();
            Map<String, Integer> byName = new LinkedHashMap<>();
            for (ParamInfo p : params) {
                byName.put(p.name(), p.index());
            }
            this.indexByName = Collections.unmodifiableMap(byName);
            MemorySegment cfg = cae_model_config.allocate(arena);
            Native.check(CaeNative.cae_model_get_config(handle, cfg), "reading the model configuration");
            this.config = ModelConfig.read(cfg);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Creates a model of the given configuration with the official initialization drawn from
     * {@code seed}.
     *
     * @param context the open context the model computes in
     * @param config the configuration, every field of {@code cae_model_config}
     * @param seed the seed of the initial weights
     * @return a new open model, to be closed by the caller
     * @throws CaeException when libcae refuses the configuration (the message names the first bad
     *     field, as {@link ModelConfig#check()} does) or runs out of memory
     */
    public static NativeModel create(Context context, ModelConfig config, long seed) {
        Objects.requireNonNull(context, "context");
        Objects.requireNonNull(config, "config");
        try (Arena call = Arena.ofConfined()) {
            MemorySegment cfg = cae_model_config.allocate(call);
            config.write(cfg);
            MemorySegment out = call.allocate(ValueLayout.ADDRESS);
            Native.check(CaeNative.cae_model_create(context.handle(), cfg, seed, out),
                    "creating a CAE model " + config + " in " + context);
            return new NativeModel(context, out.get(ValueLayout.ADDRESS, 0));
        }
    }

    /**
     * The configuration as the library holds it ({@code cae_model_get_config}).
     *
     * @return the model's configuration
     */
    public ModelConfig config() {
        return config;
    }

    /**
     * The context the model computes in.
     *
     * @return the context given to {@link #create}
     */
    public Context context() {
        return context;
    }

    /**
     * Every parameter in the official order.
     *
     * @return an unmodifiable list, indexed by {@link ParamInfo#index()}
     */
    public List<ParamInfo> parameters() {
        return params;
    }

    /**
     * The parameter called {@code name}.
     *
     * @param name the official CAE name
     * @return the parameter
     * @throws IllegalArgumentException when the model has no parameter of that name
     */
    public ParamInfo parameter(String name) {
        Integer i = indexByName.get(name);
        if (i == null) {
            throw new IllegalArgumentException("the model has no parameter named \"" + name + "\"");
        }
        return params.get(i);
    }

    /**
     * Whether the model has a parameter called {@code name}.
     *
     * @param name the official CAE name
     * @return true when {@link #parameter(String)} would find it
     */
    public boolean hasParameter(String name) {
        return indexByName.containsKey(name);
    }

    /**
     * Copies a parameter slot into {@code dst} (numel floats of host memory).
     *
     * @param p the parameter
     * @param slot which of its arrays
     * @param dst host memory of at least {@code p.numel()} floats; the first numel are written
     * @throws IllegalArgumentException when {@code dst} is too small
     * @throws CaeException when the native copy fails
     * @throws IllegalStateException when the model or its context is closed
     */
    public void read(ParamInfo p, Slot slot, MemorySegment dst) {
        checkSize(p, dst);
        Native.check(CaeNative.cae_model_read(handle(), p.index(), slot.code(), dst, p.numel()),
                "reading " + slot + " of " + p.name());
    }

    /**
     * A parameter slot, copied into a new array.
     *
     * @param p the parameter
     * @param slot which of its arrays
     * @return {@code p.numel()} floats, row-major
     * @throws CaeException when the native copy fails
     * @throws IllegalStateException when the model or its context is closed
     */
    public float[] read(ParamInfo p, Slot slot) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment tmp = call.allocate(ValueLayout.JAVA_FLOAT, p.numel());
            read(p, slot, tmp);
            return tmp.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    /**
     * Copies {@code src} (numel floats of host memory) into a parameter slot.
     *
     * @param p the parameter
     * @param slot which of its arrays
     * @param src host memory of at least {@code p.numel()} floats; the first numel are read
     * @throws IllegalArgumentException when {@code src} is too small
     * @throws CaeException when the native copy fails
     * @throws IllegalStateException when the model or its context is closed
     */
    public void write(ParamInfo p, Slot slot, MemorySegment src) {
        checkSize(p, src);
        Native.check(CaeNative.cae_model_write(handle(), p.index(), slot.code(), src, p.numel()),
                "writing " + slot + " of " + p.name());
    }

    /**
     * Copies an array into a parameter slot.
     *
     * @param p the parameter
     * @param slot which of its arrays
     * @param src at least {@code p.numel()} floats, row-major; the first numel are used
     * @throws IllegalArgumentException when {@code src} is too short
     * @throws CaeException when the native copy fails
     * @throws IllegalStateException when the model or its context is closed
     */
    public void write(ParamInfo p, Slot slot, float[] src) {
        try (Arena call = Arena.ofConfined()) {
            write(p, slot, call.allocateFrom(ValueLayout.JAVA_FLOAT, src));
        }
    }

    /**
     * One training step: forward, backward, clip, AdamW. images F32 [B, C, H, W] (normalized),
     * mask U8 [B, N] (1 = masked, the same count per row); host or device tensors.
     *
     * @param images the batch, F32 [B, C, H, W], normalized
     * @param mask the masked patches, U8 [B, N]
     * @param o this step's options
     * @return the losses, the gradient norm and the timings of the step
     * @throws CaeException when a shape or dtype does not fit the model, or the backend fails
     * @throws IllegalStateException when the model, its context or a tensor's memory is closed
     */
    public StepResult trainStep(Tensor images, Tensor mask, StepOptions o) {
        return trainStep(images, mask, o, 0, 0);
    }

    /**
     * A data-parallel training step: this process's images are rows {@code [batchOffset,
     * batchOffset + B)} of a global batch of {@code globalBatch} rows split over the ranks of the
     * model's {@link Communicator} (stochastic depth draws follow the global row). With a
     * communicator of more than one rank, every rank must call this for every step.
     *
     * @param images this process's rows of the batch, F32 [B, C, H, W], normalized
     * @param mask the masked patches of those rows, U8 [B, N]
     * @param o this step's options
     * @param batchOffset the global row of this process's first image
     * @param globalBatch the rows of the global batch over all ranks; 0 for a batch of this
     *     process alone
     * @return the losses, the gradient norm and the timings of the step
     * @throws CaeException when a shape or dtype does not fit the model, the backend fails or a
     *     collective fails
     * @throws IllegalStateException when the model, its context or a tensor's memory is closed
     */
    public StepResult trainStep(Tensor images, Tensor mask, StepOptions o, long batchOffset, long globalBatch) {
        MemorySegment h = handle();
        images.describe(imagesArg);
        mask.describe(maskArg);
        MemorySegment opt = describe(o);
        cae_step_options.batch_offset(opt, batchOffset);
        cae_step_options.global_batch(opt, globalBatch);
        Native.check(CaeNative.cae_train_step(h, imagesArg, maskArg, opt, resultArg),
                () -> "training step " + o.step() + " on images " + images + " with mask " + mask
                        + (globalBatch > 0 ? " (rows " + batchOffset + ".. of a global batch of " + globalBatch + ")" : ""));
        return result();
    }

    /**
     * From the next step on, gradients and losses are averaged over the ranks of {@code comm}
     * (null: this process alone). The model keeps the native communicator alive while attached.
     * Collective: every rank attaches its communicator at the same point, since a model on a CUDA
     * context connects the ranks' devices here (see {@link #reduction()}).
     *
     * @param comm the communicator, or null
     * @throws CaeException when libcae refuses the communicator
     * @throws IllegalStateException when the model, its context or the communicator is closed
     */
    public void setCommunicator(Communicator comm) {
        MemorySegment h = handle();
        Native.check(CaeNative.cae_model_set_comm(h, comm == null ? MemorySegment.NULL : comm.handle()),
                "attaching communicator " + comm);
        communicator = comm;
    }

    /**
     * How a training step sums the gradients of the ranks.
     *
     * @param ranks the ranks of the attached communicator; 1 when none is attached
     * @param onDevice whether the sums run on device memory (NCCL)
     * @param description what sums them, for example {@code "MPI on host memory (Open MPI v4.1.4)"} or
     *        {@code "NCCL 2.21.5 on device memory"}, or the host path and why the device one is not used
     */
    public record Reduction(int ranks, boolean onDevice, String description) {}

    /**
     * How the gradients are summed over the ranks of the attached communicator, as chosen by
     * {@link #setCommunicator}: on a CUDA context with NCCL on every rank, on the device; otherwise
     * through host memory with MPI.
     *
     * @return the reduction in use
     * @throws IllegalStateException when the model or its context is closed
     */
    public Reduction reduction() {
        MemorySegment h = handle();
        try (Arena call = Arena.ofConfined()) {
            MemorySegment info = cae_model_comm_info.allocate(call);
            Native.check(CaeNative.cae_model_query_comm(h, info), "querying the gradient reduction");
            return new Reduction(cae_model_comm_info.ranks(info), cae_model_comm_info.on_device(info) != 0,
                    cae_model_comm_info.reduction(info).getString(0));
        }
    }

    /**
     * The communicator attached by {@link #setCommunicator}, or null.
     *
     * @return the attached communicator, or null when none is
     */
    public Communicator communicator() {
        return communicator;
    }

    /**
     * Losses and gradients (readable in {@link Slot#GRAD}) without an update or stochastic depth, in fp32.
     *
     * @param images the batch, F32 [B, C, H, W], normalized
     * @param mask the masked patches, U8 [B, N]
     * @return the losses, the gradient norm and the timings
     * @throws CaeException when a shape or dtype does not fit the model, or the backend fails
     * @throws IllegalStateException when the model, its context or a tensor's memory is closed
     */
    public StepResult computeGradients(Tensor images, Tensor mask) {
        MemorySegment h = handle();
        images.describe(imagesArg);
        mask.describe(maskArg);
        // No options: libcae's fp32 gradients without stochastic depth.
        Native.check(CaeNative.cae_compute_gradients(h, imagesArg, maskArg, MemorySegment.NULL, resultArg),
                () -> "computing gradients on images " + images + " with mask " + mask);
        return result();
    }

    /**
     * Losses and gradients without an update, at the precision and with the stochastic depth
     * (drop path, seed, step) of {@code o}; its optimizer settings are not used.
     *
     * @param images the batch, F32 [B, C, H, W], normalized
     * @param mask the masked patches, U8 [B, N]
     * @param o the precision and stochastic-depth settings
     * @return the losses, the gradient norm and the timings
     * @throws CaeException when a shape or dtype does not fit the model, or the backend fails
     * @throws IllegalStateException when the model, its context or a tensor's memory is closed
     */
    public StepResult computeGradients(Tensor images, Tensor mask, StepOptions o) {
        MemorySegment h = handle();
        images.describe(imagesArg);
        mask.describe(maskArg);
        MemorySegment opt = describe(o);
        Native.check(CaeNative.cae_compute_gradients(h, imagesArg, maskArg, opt, resultArg),
                () -> "computing " + o.precision() + " gradients on images " + images + " with mask " + mask);
        return result();
    }

    /**
     * Encoder features of whole images: {@code cls} and {@code mean} F32 [B, D] receive the cls
     * token and the mean patch token after the encoder's final LayerNorm; either may be null.
     *
     * @param images the batch, F32 [B, C, H, W], normalized
     * @param cls receives the cls tokens, F32 [B, D]; or null
     * @param mean receives the mean patch tokens, F32 [B, D]; or null
     * @throws CaeException when a shape or dtype does not fit the model, or the backend fails
     * @throws IllegalStateException when the model, its context or a tensor's memory is closed
     */
    public void encode(Tensor images, Tensor cls, Tensor mean) {
        MemorySegment h = handle();
        images.describe(imagesArg);
        if (cls != null) {
            cls.describe(out0Arg);
        }
        if (mean != null) {
            mean.describe(out1Arg);
        }
        Native.check(CaeNative.cae_encode(h, imagesArg, cls == null ? MemorySegment.NULL : out0Arg,
                mean == null ? MemorySegment.NULL : out1Arg), "encoding images " + images);
    }

    /**
     * The decoder's predictions for the masked patches: pred F32 [B, Nm, patch*patch*C].
     *
     * @param images the batch, F32 [B, C, H, W], normalized
     * @param mask the masked patches, U8 [B, N], Nm of them per row
     * @param pred receives the predicted pixels, F32 [B, Nm, patch*patch*C]
     * @throws CaeException when a shape or dtype does not fit the model, or the backend fails
     * @throws IllegalStateException when the model, its context or a tensor's memory is closed
     */
    public void predict(Tensor images, Tensor mask, Tensor pred) {
        MemorySegment h = handle();
        images.describe(imagesArg);
        mask.describe(maskArg);
        pred.describe(out0Arg);
        Native.check(CaeNative.cae_predict(h, imagesArg, maskArg, out0Arg), "predicting images " + images);
    }

    /**
     * Whether the model is still open.
     *
     * @return false once {@link #close()} was called
     */
    public boolean isOpen() {
        return arena.scope().isAlive();
    }

    /** Frees the native model and its argument structs. Calling it again does nothing. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    // ---------------------------------------------------------------- internals

    private MemorySegment handle() {
        if (!isOpen()) {
            throw new IllegalStateException("the model is closed");
        }
        context.handle();
        return handle;
    }

    // Every field of cae_step_options is written (no cae_step_options_init call: one downcall per step).
    private MemorySegment describe(StepOptions o) {
        MemorySegment opt = optionsArg;
        cae_step_options.lr(opt, o.lr());
        cae_step_options.weight_decay(opt, o.weightDecay());
        cae_step_options.beta1(opt, o.beta1());
        cae_step_options.beta2(opt, o.beta2());
        cae_step_options.eps(opt, o.eps());
        cae_step_options.max_grad_norm(opt, o.maxGradNorm());
        cae_step_options.step(opt, o.step());
        cae_step_options.seed(opt, o.seed());
        cae_step_options.drop_path(opt, o.dropPath() ? 1 : 0);
        cae_step_options.precision(opt, o.precision().code());
        cae_step_options.batch_offset(opt, 0);
        cae_step_options.global_batch(opt, 0);
        return opt;
    }

    private StepResult result() {
        MemorySegment r = resultArg;
        return new StepResult(cae_step_result.loss(r), cae_step_result.loss_main(r), cae_step_result.loss_align(r),
                cae_step_result.grad_norm(r), cae_step_result.skipped(r) != 0, cae_step_result.forward_ms(r),
                cae_step_result.backward_ms(r), cae_step_result.optimizer_ms(r), cae_step_result.total_ms(r),
                cae_step_result.replayed(r) != 0, cae_step_result.reduce_ms(r));
    }

    private static void checkSize(ParamInfo p, MemorySegment seg) {
        if (seg.byteSize() < p.numel() * Float.BYTES) {
            throw new IllegalArgumentException(p.name() + " has " + p.numel() + " floats; the memory holds "
                    + seg.byteSize() / Float.BYTES);
        }
    }

    private List<ParamInfo> readParams() {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment count = call.allocate(ValueLayout.JAVA_INT);
            Native.check(CaeNative.cae_model_param_count(handle, count), "counting parameters");
            int n = count.get(ValueLayout.JAVA_INT, 0);
            MemorySegment info = cae_param_info.allocate(call);
            List<ParamInfo> list = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                Native.check(CaeNative.cae_model_param_info(handle, i, info), "reading parameter " + i);
                long[] shape = new long[cae_param_info.ndim(info)];
                for (int d = 0; d < shape.length; d++) {
                    shape[d] = cae_param_info.shape(info, d);
                }
                list.add(new ParamInfo(i, cae_param_info.name(info).getString(0), shape, cae_param_info.numel(info),
                        cae_param_info.trainable(info) != 0, cae_param_info.decayed(info) != 0));
            }
            return List.copyOf(list);
        }
    }
}
