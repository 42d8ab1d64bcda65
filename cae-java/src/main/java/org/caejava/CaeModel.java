package org.caejava;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.caejava.api.CaeException;
import org.caejava.api.Context;
import org.caejava.api.DType;
import org.caejava.api.ModelConfig;
import org.caejava.api.NativeModel;
import org.caejava.api.ParamInfo;
import org.caejava.api.Precision;
import org.caejava.api.Slot;
import org.caejava.api.StepOptions;
import org.caejava.api.StepResult;
import org.caejava.api.Tensor;
import org.caejava.io.SafetensorsException;
import org.caejava.io.SafetensorsFile;
import org.caejava.io.SafetensorsWriter;

/**
 * A CAE model (encoder, regressor, decoder) on a context's backend, with its AdamW state.
 *
 * <p>Checkpoints are safetensors files: parameters under their official CAE names (F32), AdamW
 * moments under {@code optimizer.exp_avg.NAME} and {@code optimizer.exp_avg_sq.NAME}, and in
 * {@code __metadata__}: {@code format} = {@value #FORMAT}, {@code step}, {@code epoch},
 * {@code optimizer_steps}, {@code seed} and {@code config} (the model configuration as JSON with the
 * official argument names). A file holding just the official parameters loads too (pass the
 * configuration when its metadata has none).
 *
 * <p>A model owns its {@link NativeModel} (parameters, gradients and AdamW state in the context's
 * memory), and the context too when the trainer created it on the CPU in place of a CUDA device
 * that failed its self-check; {@link #close()} frees them. Otherwise the context stays the
 * caller's and must outlive the model. One thread at a time may use a model.
 */
public final class CaeModel implements AutoCloseable {

    /** The {@code format} metadata of a checkpoint written by {@link #save(Path)}. */
    public static final String FORMAT = "cae-java/1";
    static final String EXP_AVG = "optimizer.exp_avg.";
    static final String EXP_AVG_SQ = "optimizer.exp_avg_sq.";

    private final CaeConfig config;
    private final NativeModel model;
    private final Context ownContext;
    private TrainingState state;

    private CaeModel(CaeConfig config, NativeModel model, TrainingState state) {
        this(config, model, state, null);
    }

    private CaeModel(CaeConfig config, NativeModel model, TrainingState state, Context ownContext) {
        this.config = config;
        this.model = model;
        this.state = state;
        this.ownContext = ownContext;
    }

    /**
     * A freshly initialized model (the official initialization drawn from {@code seed}).
     *
     * @param context the open context the model computes in; it stays the caller's
     * @param config the model configuration
     * @param seed the seed of the initial weights, also stored as the run seed of its state
     * @return a new model, to be closed by the caller
     * @throws IllegalArgumentException when the configuration is invalid
     * @throws org.caejava.api.CaeException when libcae cannot create the model
     */
    public static CaeModel create(Context context, CaeConfig config, long seed) {
        config.validate();
        return new CaeModel(config, NativeModel.create(context, config.modelConfig(), seed),
                new TrainingState(0, 0, 0, seed));
    }

    /**
     * A freshly initialized model in a context that the model owns and closes with itself (the CPU
     * context a trainer moves to when the CUDA device fails its self-check).
     */
    static CaeModel createInOwnContext(Context context, CaeConfig config, long seed) {
        config.validate();
        try {
            return new CaeModel(config, NativeModel.create(context, config.modelConfig(), seed),
                    new TrainingState(0, 0, 0, seed), context);
        } catch (RuntimeException e) {
            context.close();
            throw e;
        }
    }

    /**
     * Loads a checkpoint whose metadata holds the configuration.
     *
     * @param context the open context the model computes in; it stays the caller's
     * @param file a safetensors checkpoint
     * @return the loaded model with the file's training state, to be closed by the caller
     * @throws IOException when the file cannot be read, is not a valid safetensors file, has no
     *     configuration, or does not hold the model's parameters
     * @throws org.caejava.api.CaeException when libcae cannot create the model
     */
    public static CaeModel load(Context context, Path file) throws IOException {
        return load(context, file, null);
    }

    /**
     * Loads a checkpoint; {@code fallback} is the configuration to use when the file's metadata has
     * none (a file with just the official parameters). Every trainable parameter must be present
     * with its shape; the fixed position embeddings and the optimizer state may be absent; any
     * other tensor is refused. A configuration whose model the file cannot hold is refused before the
     * model is created (see {@code checkFits}).
     *
     * @param context the open context the model computes in; it stays the caller's
     * @param file a safetensors checkpoint
     * @param fallback the configuration for a file without one; or null
     * @return the loaded model with the file's training state, to be closed by the caller
     * @throws IOException when the file cannot be read, is not a valid safetensors file, has no
     *     configuration and none is given, or does not hold the model's parameters
     * @throws org.caejava.api.CaeException when libcae cannot create the model
     */
    public static CaeModel load(Context context, Path file, CaeConfig fallback) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            Map<String, String> meta = f.metadata();
            CaeConfig config;
            if (meta.containsKey("config")) {
                try {
                    config = CaeConfig.fromJson(meta.get("config"), "checkpoint metadata of " + file);
                } catch (IllegalArgumentException e) {
                    throw new SafetensorsException(e.getMessage());
                }
            } else if (fallback != null) {
                config = fallback.validate();
            } else {
                throw new SafetensorsException(file, "has no model configuration in its metadata; pass one");
            }
            checkFits(f, config);
            TrainingState state = new TrainingState(metaLong(f, "step"), metaLong(f, "epoch"),
                    metaLong(f, "optimizer_steps"), metaLong(f, "seed"));
            NativeModel created;
            try {
                created = NativeModel.create(context, config.modelConfig(), 0);
            } catch (CaeException e) {
                throw new CaeException(e.status(), e.nativeMessage(), file + ": creating the model to load it into");
            }
            CaeModel m = new CaeModel(config, created, state);
            try {
                m.readTensors(f);
            } catch (IOException | RuntimeException e) {
                m.close();
                throw e;
            }
            return m;
        }
    }

    /**
     * Refuses, before the model is created, a configuration whose model the file cannot fill: every
     * trainable parameter must be in the file, so their floats (libcae's parameter table, through
     * {@link org.caejava.api.ModelConfig#check()}) must fit in the file's tensors. The parameters
     * that need not be stored (the fixed position embeddings, 2 (1 + N) D floats, and frozen gammas)
     * may not exceed the file's tensors or 64 MiB either. This bounds what loading allocates by the
     * file's size: a 30 KB file claiming ViT-L would otherwise allocate gigabytes before refusal.
     */
    private static void checkFits(SafetensorsFile f, CaeConfig c) throws SafetensorsException {
        long stored = 0;
        for (SafetensorsFile.Entry e : f.entries()) {
            stored += e.end() - e.begin();
        }
        ModelConfig.Info info = c.modelConfig().check();
        if (4 * info.trainableFloats() > stored) {
            throw new SafetensorsException(f.path(), String.format("metadata \"config\" describes a model of %d "
                    + "trainable weights (%d bytes as F32), but the file's tensors hold only %d bytes",
                    info.trainableFloats(), 4 * info.trainableFloats(), stored));
        }
        if (4 * info.fixedFloats() > Math.max(stored, 64L << 20)) {
            throw new SafetensorsException(f.path(), String.format("metadata \"config\" describes %d patches of "
                    + "width %d, whose position embeddings and other fixed parameters (%d bytes) exceed both the "
                    + "file's tensors (%d bytes) and 64 MiB", (long) c.gridSize() * c.gridSize(), c.embedDim(),
                    4 * info.fixedFloats(), stored));
        }
    }

    private void readTensors(SafetensorsFile f) throws IOException {
        Set<String> used = new HashSet<>();
        for (ParamInfo p : model.parameters()) {
            if (!f.contains(p.name())) {
                if (p.trainable()) {
                    throw new SafetensorsException(f.path(), "is missing parameter \"" + p.name() + "\" "
                            + Arrays.toString(p.shape()) + " of a " + describe() + " model");
                }
                continue;  // fixed position embeddings are recomputed
            }
            model.write(p, Slot.VALUE, checked(f, p.name(), p));
            used.add(p.name());
            for (var slot : List.of(Map.entry(EXP_AVG, Slot.EXP_AVG), Map.entry(EXP_AVG_SQ, Slot.EXP_AVG_SQ))) {
                String key = slot.getKey() + p.name();
                if (f.contains(key)) {
                    model.write(p, slot.getValue(), checked(f, key, p));
                    used.add(key);
                }
            }
        }
        List<String> extra = new ArrayList<>();
        for (SafetensorsFile.Entry e : f.entries()) {
            if (!used.contains(e.name())) {
                extra.add(e.name());
            }
        }
        if (!extra.isEmpty()) {
            throw new SafetensorsException(f.path(), "holds tensors that are not parameters of a " + describe()
                    + " model: " + (extra.size() > 5 ? extra.subList(0, 5) + " and " + (extra.size() - 5) + " more" : extra));
        }
    }

    private static MemorySegment checked(SafetensorsFile f, String key, ParamInfo p) throws IOException {
        SafetensorsFile.Entry e = f.entry(key);
        if (!e.dtype().equals("F32")) {
            throw new SafetensorsException(f.path(), "tensor \"" + key + "\" has dtype " + e.dtype() + ", expected F32");
        }
        if (!Arrays.equals(e.shape(), p.shape())) {
            throw new SafetensorsException(f.path(), "tensor \"" + key + "\" has shape " + Arrays.toString(e.shape())
                    + ", the model's " + p.name() + " is " + Arrays.toString(p.shape()));
        }
        return f.bytes(key);
    }

    private static long metaLong(SafetensorsFile f, String key) throws SafetensorsException {
        String v = f.metadata().get(key);
        if (v == null) {
            return 0;
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new SafetensorsException(f.path(), "metadata \"" + key + "\" is \"" + v + "\", not an integer");
        }
    }

    /**
     * Writes a checkpoint (parameters, optimizer moments, state, configuration) atomically.
     *
     * @param file the checkpoint to write; replaced when it exists
     * @throws IOException when the file cannot be written
     */
    public void save(Path file) throws IOException {
        SafetensorsWriter w = new SafetensorsWriter()
                .metadata("format", FORMAT)
                .metadata("step", Long.toString(state.step()))
                .metadata("epoch", Long.toString(state.epoch()))
                .metadata("optimizer_steps", Long.toString(state.optimizerSteps()))
                .metadata("seed", Long.toString(state.seed()))
                .metadata("config", config.toJson());
        for (ParamInfo p : model.parameters()) {
            w.add(p.name(), "F32", p.shape(), dst -> model.read(p, Slot.VALUE, dst));
        }
        for (ParamInfo p : model.parameters()) {
            if (p.trainable()) {
                w.add(EXP_AVG + p.name(), "F32", p.shape(), dst -> model.read(p, Slot.EXP_AVG, dst));
                w.add(EXP_AVG_SQ + p.name(), "F32", p.shape(), dst -> model.read(p, Slot.EXP_AVG_SQ, dst));
            }
        }
        w.write(file);
    }

    /**
     * Writes the encoder's weights only, under the official {@code encoder.*} names, loadable in
     * PyTorch with {@code safetensors.torch.load_file}.
     *
     * @param file the file to write; replaced when it exists
     * @throws IOException when the file cannot be written
     */
    public void exportEncoder(Path file) throws IOException {
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", FORMAT + "/encoder")
                .metadata("config", config.toJson());
        for (ParamInfo p : model.parameters()) {
            if (p.name().startsWith("encoder.")) {
                w.add(p.name(), "F32", p.shape(), dst -> model.read(p, Slot.VALUE, dst));
            }
        }
        w.write(file);
    }

    /**
     * Encoder features of images F32 [B, C, H, W] (normalized), allocated on the host in {@code arena}.
     *
     * @param images the batch, F32 [B, C, H, W], normalized; host or device memory
     * @param arena the arena that owns the two feature tensors
     * @return the cls and mean-patch features, each F32 [B, D]
     * @throws org.caejava.api.CaeException when the images do not fit the model or the backend fails
     */
    public Features encode(Tensor images, Arena arena) {
        long b = images.size(0);
        Tensor cls = Tensor.allocate(arena, DType.F32, b, config.embedDim());
        Tensor mean = Tensor.allocate(arena, DType.F32, b, config.embedDim());
        model.encode(images, cls, mean);
        return new Features(cls, mean);
    }

    /**
     * Encoder features of images into tensors of the caller's, for loops over many batches.
     *
     * @param images the batch, F32 [B, C, H, W], normalized; host or device memory
     * @param cls the cls token after the encoder's final norm, F32 [B, D]
     * @param mean the mean of the patch tokens after that norm, F32 [B, D]
     * @throws org.caejava.api.CaeException when the shapes do not fit the model or the backend fails
     */
    public void encode(Tensor images, Tensor cls, Tensor mean) {
        model.encode(images, cls, mean);
    }

    /**
     * The decoder's predictions of the masked patches (normalized pixel targets, in patch order).
     *
     * @param images the batch, F32 [B, C, H, W], normalized
     * @param mask U8 [B, N], 1 = masked, the same count M in every row
     * @param pred the predictions, F32 [B, M, patch_size * patch_size * C]
     * @throws org.caejava.api.CaeException when the shapes do not fit the model or the backend fails
     */
    public void predict(Tensor images, Tensor mask, Tensor pred) {
        model.predict(images, mask, pred);
    }

    /**
     * Losses and gradients of a batch without an update and without stochastic depth; the
     * gradients are then readable with {@link #values(String, Slot)} and {@link Slot#GRAD}.
     *
     * @param images the batch, F32 [B, C, H, W], normalized
     * @param mask U8 [B, N], 1 = masked, the same count in every row
     * @param precision the arithmetic of the matrix products
     * @return the losses and the gradient norm
     * @throws org.caejava.api.CaeException when the inputs do not fit the model or the backend fails
     */
    public StepResult computeGradients(Tensor images, Tensor mask, Precision precision) {
        return model.computeGradients(images, mask, StepOptions.defaults().withDropPath(false).withPrecision(precision));
    }

    /**
     * One training step outside {@link CaeTrainer}, for benchmarks and custom loops: forward,
     * backward, clip and AdamW with {@code options}. {@link #state()} does not change.
     *
     * @param images the batch, F32 [B, C, H, W], normalized
     * @param mask U8 [B, N], 1 = masked, the same count in every row
     * @param options learning rate, AdamW settings, step number, seed, precision
     * @return the losses, the gradient norm and the step's timings
     * @throws org.caejava.api.CaeException when the inputs do not fit the model or the backend fails
     */
    public StepResult trainStep(Tensor images, Tensor mask, StepOptions options) {
        return model.trainStep(images, mask, options);
    }

    /**
     * A copy of one of a parameter's arrays: its values, gradient or AdamW moments.
     *
     * @param name the official CAE name
     * @param slot which array
     * @return the values, row-major
     * @throws IllegalArgumentException when the model has no parameter of that name
     */
    public float[] values(String name, Slot slot) {
        return model.read(model.parameter(name), slot);
    }

    /**
     * The model's configuration.
     *
     * @return the configuration
     */
    public CaeConfig config() {
        return config;
    }

    /**
     * The context the model computes in.
     *
     * @return the context
     */
    public Context context() {
        return model.context();
    }

    /**
     * Where training stands: after the last step trained, or as loaded from a checkpoint.
     *
     * @return the training state
     */
    public TrainingState state() {
        return state;
    }

    void setState(TrainingState state) {
        this.state = Objects.requireNonNull(state);
    }

    /**
     * Keeps the weights and starts training over: AdamW's moments are zeroed and the state goes
     * back to step 0 with the given run seed (for a new pretraining that starts from these weights).
     *
     * @param seed the run seed of the new training
     */
    public void startOver(long seed) {
        for (ParamInfo p : model.parameters()) {
            float[] zeros = new float[Math.toIntExact(p.numel())];
            model.write(p, Slot.EXP_AVG, zeros);
            model.write(p, Slot.EXP_AVG_SQ, zeros);
        }
        setState(new TrainingState(0, 0, 0, seed));
    }

    /**
     * Every parameter in the official order.
     *
     * @return an unmodifiable list
     */
    public List<ParamInfo> parameters() {
        return model.parameters();
    }

    /**
     * A copy of a parameter's values.
     *
     * @param name the official CAE name
     * @return the values, row-major
     * @throws IllegalArgumentException when the model has no parameter of that name
     */
    public float[] parameter(String name) {
        return values(name, Slot.VALUE);
    }

    /**
     * Overwrites a parameter's values.
     *
     * @param name the official CAE name
     * @param values exactly as many values as the parameter has, row-major
     * @throws IllegalArgumentException when the model has no parameter of that name, or the count differs
     */
    public void setParameter(String name, float[] values) {
        ParamInfo p = model.parameter(name);
        if (values.length != p.numel()) {
            throw new IllegalArgumentException(name + " has " + p.numel() + " values, got " + values.length);
        }
        model.write(p, Slot.VALUE, values);
    }

    /** The native model, for the trainer. */
    NativeModel nativeModel() {
        return model;
    }

    private String describe() {
        return config.embedDim() + "-wide, depth " + config.depth() + ", " + config.imgSize() + "px";
    }

    /** Frees the native model, and the context when the model owns it. */
    @Override
    public void close() {
        model.close();
        if (ownContext != null) {
            ownContext.close();
        }
    }
}
