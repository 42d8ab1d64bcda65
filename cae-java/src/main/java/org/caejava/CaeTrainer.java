package org.caejava;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import org.caejava.api.Backend;
import org.caejava.api.Communicator;
import org.caejava.api.Context;
import org.caejava.api.NativeModel;
import org.caejava.api.Precision;
import org.caejava.api.StepOptions;
import org.caejava.api.StepResult;
import org.caejava.check.CudaMismatchException;
import org.caejava.check.CudaSelfCheck;
import org.caejava.check.SelfCheckResult;
import org.caejava.data.BatchLoader;
import org.caejava.data.Dataset;
import org.caejava.mask.BlockMaskGenerator;
import org.caejava.mask.MaskGenerator;
import org.caejava.train.CosineSchedule;
import org.caejava.train.DataParallel;

/**
 * Pretrains a CAE model on a dataset.
 *
 * <pre>{@code
 * try (Context ctx = Context.create()) {
 *     CaeTrainer trainer = CaeTrainer.builder()
 *             .context(ctx).config(CaeConfig.preset("fmnist-tiny")).data(dataset)
 *             .epochs(10).batchSize(64).seed(1)
 *             .listener(m -> System.out.println(m.step() + " " + m.loss()))
 *             .build();
 *     try (CaeModel model = trainer.fit()) {
 *         model.save(Path.of("cae.safetensors"));
 *     }
 * }
 * }</pre>
 *
 * <p>Defaults follow CAE: AdamW (0.9, 0.999), weight decay 0.05, gradient clipping at 3.0,
 * learning rate {@code 1.5e-3 * batch / 2048} with a per-step linear warmup from 0 (1/30 of the
 * run, as 10 of 300 epochs) and a cosine decay to lr / 150 (1e-5 at 1.5e-3), block masking of half
 * the patches, stochastic depth at the configuration's rate. Each epoch visits the samples in an
 * order drawn from (seed, epoch) and drops the last partial batch; masks are drawn from (seed,
 * epoch, index). A run resumed from a checkpoint therefore continues exactly.
 *
 * <p>With a {@link Builder#communicator communicator} of N ranks (for example
 * {@link Communicator#fromEnvironment()} in processes started by {@code mpirun -np N}), every rank
 * runs {@link #fit()} with the same options and data: the batch size is the global batch, each rank
 * loads and trains on its B/N rows of every batch, and libcae averages the gradients over the ranks,
 * so N ranks follow the same run as one process with batch B (within float rounding). At the start
 * every rank's run must match rank 0's and rank 0's weights are copied to all; every
 * {@link Builder#weightCheckEvery} steps the weights are compared; only rank 0 writes checkpoints.
 * A rank that fails leaves the others waiting in the next collective: end the job (the CLI aborts
 * it through the communicator). A rank that makes no progress for {@link Builder#rankTimeout}
 * (another rank hung, or this one) prints why and aborts the job.
 *
 * <p>Before the first step on a CUDA device, the device passes {@link CudaSelfCheck} (once per
 * process and device). When it does not: a model the trainer creates in a context asked for as
 * {@link Backend#AUTO} is created on the CPU instead (in a context the model owns), with a warning
 * logged; otherwise {@link #fit()} throws a {@link CudaMismatchException} carrying the figures.
 *
 * <p>{@link #fit()} trains on the calling thread. During a run it starts the batch loader's worker
 * threads, which own the off-heap batch buffers, and with several ranks a watchdog thread; the
 * loader is closed and the watchdog stopped before {@code fit()} returns. Between runs the trainer
 * owns nothing: the model it returns belongs to the caller, and the context, model, data and
 * communicator given to the builder stay the caller's. Call {@code fit()} from one thread at a
 * time; the results of the last run ({@link #skippedSteps()} and the others) may be read from any
 * thread.
 */
public final class CaeTrainer {

    private final Builder b;
    private volatile double lastWaitShare;
    private volatile boolean stoppedEarly;
    private volatile long skippedSteps;
    private volatile long unreadableImages;
    private volatile java.util.List<String> unreadableExamples = java.util.List.of();

    private CaeTrainer(Builder b) {
        this.b = b;
    }

    /**
     * A builder with the defaults listed on its methods.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Trains and returns the model (the one passed to the builder, or a new one).
     *
     * @return the trained model; a new one is the caller's to close
     * @throws IllegalArgumentException when the data's images do not fit the model, or the batch
     *     does not fit the data or the ranks
     * @throws NonFiniteLossException when too many steps in a row were not finite
     * @throws CudaMismatchException when the model's CUDA device fails its self-check
     * @throws java.io.UncheckedIOException when a checkpoint cannot be written
     * @throws org.caejava.api.CaeException when a native call fails
     */
    public CaeModel fit() {
        Dataset data = b.data;
        CaeModel model = b.model != null ? b.model : newModel();
        try {
            train(model, data);
        } catch (RuntimeException | Error e) {
            if (b.model == null) {
                model.close();
            }
            throw e;
        }
        return model;
    }

    /** A new model in the builder's context, or on the CPU when that is an AUTO context whose device disagrees. */
    private CaeModel newModel() {
        Context ctx = b.context;
        if (ctx.backend() == Backend.CUDA) {
            SelfCheckResult r = CudaSelfCheck.of(ctx);
            if (CudaSelfCheck.decide(ctx.requestedBackend(), r) == CudaSelfCheck.Decision.USE_CPU) {
                System.getLogger("org.caejava").log(System.Logger.Level.WARNING, CudaSelfCheck.fallbackWarning(r));
                Context cpu = Context.builder().backend(Backend.CPU).seed(ctx.seed()).build();
                return CaeModel.createInOwnContext(cpu, b.config, b.seed);
            }
        }
        return CaeModel.create(ctx, b.config, b.seed);
    }

    /** Throws when the model's CUDA device failed its self-check: its steps cannot be trusted. */
    private static void requireTrustedDevice(Context ctx) {
        if (ctx.backend() != Backend.CUDA) {
            return;
        }
        SelfCheckResult r = CudaSelfCheck.of(ctx);
        if (!r.passed()) {
            throw new CudaMismatchException(r, "The model lives on that device: create it in a CPU context, or set "
                    + "CAE_SELF_CHECK=off to train on the device anyway");
        }
    }

    private void train(CaeModel model, Dataset data) {
        CaeConfig cfg = model.config();
        if (data.channels() != cfg.inChans() || data.height() != cfg.imgSize() || data.width() != cfg.imgSize()) {
            throw new IllegalArgumentException("the dataset's images are " + data.channels() + "x" + data.height() + "x"
                    + data.width() + " (CxHxW) but the model expects " + cfg.inChans() + "x" + cfg.imgSize() + "x"
                    + cfg.imgSize());
        }
        final int batch = b.batchSize;
        final Communicator comm = b.communicator;
        final int ranks = comm == null ? 1 : comm.size();
        final boolean root = comm == null || comm.isRoot();
        final BatchLoader.Share share = BatchLoader.Share.of(batch, comm == null ? 0 : comm.rank(), ranks);
        final long stepsPerEpoch = data.size() / batch;
        if (stepsPerEpoch < 1) {
            throw new IllegalArgumentException("the dataset has " + data.size() + " images, fewer than one batch of "
                    + batch);
        }
        final long total = b.steps > 0 ? b.steps : b.epochs * stepsPerEpoch;
        final long seed = b.seedSet || b.model == null ? b.seed : model.state().seed();
        final double lr = b.lr > 0 ? b.lr : 1.5e-3 * batch / 2048;
        final double minLr = b.minLr >= 0 ? b.minLr : lr / 150;
        final long warmup = b.warmupSteps >= 0 ? Math.min(b.warmupSteps, total) : Math.round(total / 30.0);
        final CosineSchedule schedule = new CosineSchedule(lr, minLr, warmup, total);
        final MaskGenerator masks = b.masks != null ? b.masks
                : new BlockMaskGenerator(cfg.gridSize(), (int) Math.round(0.5 * cfg.numPatches()));
        if (masks.numPatches() != cfg.numPatches()) {
            throw new IllegalArgumentException("the mask generator covers " + masks.numPatches()
                    + " patches, the model has " + cfg.numPatches());
        }
        NativeModel nm = model.nativeModel();
        Context ctx = model.context();
        requireTrustedDevice(ctx);
        TrainingState state = model.state();
        long optimizerSteps = state.optimizerSteps();
        final Precision precision = b.precision != null ? b.precision : Precision.defaultFor(ctx.backend());
        StepOptions base = StepOptions.defaults().withWeightDecay(b.weightDecay)
                .withMaxGradNorm(b.clip).withSeed(seed).withDropPath(b.dropPath).withPrecision(precision);

        final Path checkpoint = root ? b.checkpoint : null;
        if (ranks > 1) {
            DataParallel.requireSameRun(comm, describeRun(model, data, batch, total, seed, lr, minLr, warmup, masks,
                    precision));
            DataParallel.copyRootState(comm, nm);
            nm.setCommunicator(comm);
            if (root) {
                b.listener.onDataParallelStart(ranks, nm.reduction().description());
            }
        }

        int consecutiveBad = 0;
        skippedSteps = 0;
        final AtomicLong progress = new AtomicLong(System.nanoTime());
        final AtomicLong progressStep = new AtomicLong(state.step());
        Thread watchdog = ranks > 1 && b.rankTimeout != null && !b.rankTimeout.isZero()
                ? startWatchdog(comm, progress, progressStep, b.rankTimeout) : null;
        try (BatchLoader loader = new BatchLoader(ctx, data, masks, batch, share, seed, state.step(), total,
                b.loaderThreads, b.prefetch, b.strictData)) {
            long last = System.nanoTime();
            for (long step = state.step(); step < total; step++) {
                boolean stop = b.stop.getAsBoolean();
                if (ranks > 1) {
                    stop = DataParallel.any(comm, stop);
                }
                if (stop) {
                    stoppedEarly = true;
                    if (checkpoint != null && step > state.step()) {
                        saveCheckpoint(model, step);
                    }
                    break;
                }
                BatchLoader.Batch batchData = loader.next();
                double stepLr = schedule.at(step);
                long t1 = System.nanoTime();
                StepResult r = nm.trainStep(batchData.images(), batchData.mask(),
                        base.withLr(stepLr).withStep(optimizerSteps + 1), share.offset(), ranks > 1 ? batch : 0);
                long t2 = System.nanoTime();
                loader.release(batchData);
                if (!r.skipped()) {
                    optimizerSteps++;
                    consecutiveBad = 0;
                } else {
                    skippedSteps++;
                    consecutiveBad++;
                }
                progress.set(System.nanoTime());
                progressStep.set(step + 1);
                TrainingState next = new TrainingState(step + 1, (step + 1) / stepsPerEpoch, optimizerSteps, seed);
                model.setState(next);
                double seconds = (t2 - last) / 1e9;
                last = t2;
                b.listener.onStep(new StepMetrics(step + 1, total, batchData.epoch(), batch, stepLr, b.weightDecay, r.loss(),
                        r.lossMain(), r.lossAlign(), r.gradNorm(), r.skipped(), batchData.waitMs(), (t2 - t1) / 1e6,
                        r.forwardMs(), r.backwardMs(), r.optimizerMs(), batch / seconds,
                        r.reduceMs()));
                if (b.maxBadSteps > 0 && consecutiveBad >= b.maxBadSteps) {
                    // The weights are those of the last good step: skipped steps change nothing.
                    throw new NonFiniteLossException(step + 1, consecutiveBad, r.loss(), r.gradNorm(),
                            b.checkpoint == null ? null : b.checkpoint);
                }
                boolean lastStep = step + 1 == total;
                if (ranks > 1 && b.weightCheckEvery > 0 && ((step + 1) % b.weightCheckEvery == 0 || lastStep)) {
                    DataParallel.requireSameWeights(comm, nm, step + 1);
                }
                // No checkpoint during a run of skipped steps: the last good one stays on disk.
                if (checkpoint != null && consecutiveBad == 0
                        && ((b.checkpointEvery > 0 && (step + 1) % b.checkpointEvery == 0) || lastStep)) {
                    saveCheckpoint(model, step + 1);
                }
            }
            lastWaitShare = loader.waitShare();
            unreadableImages = loader.unreadableImages();
            unreadableExamples = loader.unreadableExamples();
        } finally {
            if (watchdog != null) {
                watchdog.interrupt();
            }
            if (ranks > 1 && nm.isOpen()) {
                nm.setCommunicator(null);
            }
        }
    }

    /**
     * Watches a data-parallel run: when no step ends for {@code timeout}, the ranks are no longer
     * in step (one hung or died without the launcher noticing); this rank says so and aborts the
     * job through the communicator (from this thread while the training thread may be blocked in a
     * collective: the last resort MPI_Abort is meant for).
     */
    private static Thread startWatchdog(Communicator comm, AtomicLong progress, AtomicLong step, Duration timeout) {
        Thread t = new Thread(() -> {
            try {
                while (!Thread.currentThread().isInterrupted()) {
                    long idle = System.nanoTime() - progress.get();
                    if (idle > timeout.toNanos()) {
                        System.err.printf("cae: rank %d of %d made no progress for %d s after step %d: another rank "
                                + "hung or died; ending this process so that the launcher ends the job%n", comm.rank(),
                                comm.size(), timeout.toSeconds(), step.get());
                        System.err.flush();
                        // MPI_Abort makes the launcher end every rank; exiting alone would wait in
                        // MPI_Finalize for the hung one.
                        comm.abort(3);
                        Runtime.getRuntime().halt(3);
                    }
                    Thread.sleep(Math.max(10, Math.min(1000, timeout.toMillis() / 10)));
                }
            } catch (InterruptedException done) {
                // the run ended
            }
        }, "cae-rank-watchdog");
        t.setDaemon(true);
        t.start();
        return t;
    }

    /** What must be equal on every rank of a data-parallel run, as text. */
    private Map<String, String> describeRun(CaeModel model, Dataset data, int batch, long total, long seed,
            double lr, double minLr, long warmup, MaskGenerator masks, Precision precision) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("config", model.config().toJson());
        m.put("state", model.state().toString());
        m.put("data", data.size() + " images of " + data.channels() + "x" + data.height() + "x" + data.width()
                + ", content hash " + Long.toHexString(DataParallel.dataHash(data, seed)));
        m.put("batch", Integer.toString(batch));
        m.put("steps", Long.toString(total));
        m.put("seed", Long.toString(seed));
        m.put("schedule", "lr " + lr + " to " + minLr + ", warmup " + warmup);
        m.put("optimizer", "weight decay " + b.weightDecay + ", clip " + b.clip);
        m.put("masks", masks.getClass().getSimpleName() + " " + masks.numMasked() + "/" + masks.numPatches());
        m.put("drop path", Boolean.toString(b.dropPath));
        m.put("precision", precision.toString());
        return m;
    }

    private void saveCheckpoint(CaeModel model, long step) {
        try {
            model.save(b.checkpoint);
        } catch (IOException e) {
            throw new UncheckedIOException("writing checkpoint " + b.checkpoint + " at step " + step, e);
        }
        b.listener.onCheckpoint(b.checkpoint, model.state());
    }

    /**
     * Steps of the last {@link #fit()} whose update was skipped for a non-finite loss or gradient.
     *
     * @return the count of skipped steps
     */
    public long skippedSteps() {
        return skippedSteps;
    }

    /**
     * Images of the last {@link #fit()} that could not be read and were replaced by the next ones.
     *
     * @return the count, each time an image was met
     */
    public long unreadableImages() {
        return unreadableImages;
    }

    /**
     * The messages of the first few unreadable images of the last {@link #fit()}.
     *
     * @return at most 5 messages; empty when every image was read
     */
    public java.util.List<String> unreadableExamples() {
        return unreadableExamples;
    }

    /**
     * Whether the last {@link #fit()} ended because the stop signal was raised.
     *
     * @return true when it stopped before its last step
     */
    public boolean stoppedEarly() {
        return stoppedEarly;
    }

    /**
     * The share of the last {@link #fit()} spent waiting for data.
     *
     * @return a fraction from 0 to 1
     */
    public double dataWaitShare() {
        return lastWaitShare;
    }

    /**
     * Options of a training run. A plain mutable object that owns nothing (the context, model, data
     * and communicator it is given stay the caller's); used by one thread at a time.
     */
    public static final class Builder {
        private Context context;
        private CaeConfig config;
        private CaeModel model;
        private Dataset data;
        private long epochs = 1;
        private long steps = -1;
        private int batchSize = 64;
        private double lr = -1;
        private double minLr = -1;
        private long warmupSteps = -1;
        private double weightDecay = 0.05;
        private double clip = 3.0;
        private long seed = 0;
        private boolean seedSet;
        private boolean dropPath = true;
        private Precision precision;
        private MaskGenerator masks;
        private TrainingListener listener = m -> {};
        private Path checkpoint;
        private long checkpointEvery;
        private int loaderThreads = 1;
        private int maxBadSteps = 10;
        private boolean strictData;
        private java.util.function.BooleanSupplier stop = () -> false;
        private int prefetch = 4;
        private Communicator communicator;
        private long weightCheckEvery = 100;
        private Duration rankTimeout = Duration.ofMinutes(10);

        private Builder() {}

        /**
         * Train data-parallel over the ranks of {@code comm} (null, the default: this process alone).
         * Every rank calls {@link #fit()} with the same options; {@link #batchSize} is the global batch,
         * a multiple of the rank count. The communicator is not closed by the trainer.
         *
         * @param v the communicator, or null
         * @return this builder
         */
        public Builder communicator(Communicator v) { communicator = v; return this; }
        /**
         * With a communicator: compare the ranks' weights every this many steps and at the end (0: never; default 100).
         *
         * @param v the interval in steps; 0 for never
         * @return this builder
         */
        public Builder weightCheckEvery(long v) { weightCheckEvery = v; return this; }
        /**
         * With a communicator of several ranks: when no step ends for this long (default 10 minutes;
         * null or zero: never), this rank prints why and aborts the job (MPI_Abort) instead of every
         * rank waiting forever for one that hung.
         *
         * @param v the longest wait for a step; null or zero for no limit
         * @return this builder
         */
        public Builder rankTimeout(Duration v) { rankTimeout = v; return this; }

        /**
         * The context a new model is created in (not needed with {@link #model}).
         *
         * @param v an open context; it stays the caller's
         * @return this builder
         */
        public Builder context(Context v) { context = v; return this; }
        /**
         * The configuration of a new model.
         *
         * @param v the configuration; with {@link #model}, it must equal the model's
         * @return this builder
         */
        public Builder config(CaeConfig v) { config = v; return this; }
        /**
         * Continue training this model from its state (for instance one loaded from a checkpoint).
         *
         * @param v the model; it stays the caller's
         * @return this builder
         */
        public Builder model(CaeModel v) { model = v; return this; }
        /**
         * The images to train on (required).
         *
         * @param v the dataset; its images must have the model's channels and size
         * @return this builder
         */
        public Builder data(Dataset v) { data = v; return this; }
        /**
         * Train for this many epochs (default 1); {@link #steps} takes precedence.
         *
         * @param v the number of epochs, at least 1
         * @return this builder
         */
        public Builder epochs(long v) { epochs = v; return this; }
        /**
         * Train for this many steps in total, counting steps done before a resume; 0 or less (the default) counts epochs instead.
         *
         * @param v the number of steps
         * @return this builder
         */
        public Builder steps(long v) { steps = v; return this; }
        /**
         * The images of each (global) batch (default 64); the last partial batch of an epoch is dropped.
         *
         * @param v the batch size, at least 1
         * @return this builder
         */
        public Builder batchSize(int v) { batchSize = v; return this; }
        /**
         * Peak learning rate (default 1.5e-3 * batch / 2048; 0 or less picks the default).
         *
         * @param v the peak learning rate
         * @return this builder
         */
        public Builder learningRate(double v) { lr = v; return this; }
        /**
         * Final learning rate of the cosine decay (default peak / 150; a negative value picks the default).
         *
         * @param v the final learning rate
         * @return this builder
         */
        public Builder minLearningRate(double v) { minLr = v; return this; }
        /**
         * Linear warmup steps from 0 (default 1/30 of the run; a negative value picks the default). At most the whole run.
         *
         * @param v the warmup steps
         * @return this builder
         */
        public Builder warmupSteps(long v) { warmupSteps = v; return this; }
        /**
         * AdamW weight decay of the decayed parameters (default 0.05).
         *
         * @param v the weight decay
         * @return this builder
         */
        public Builder weightDecay(double v) { weightDecay = v; return this; }
        /**
         * Global gradient-norm clip (default 3.0; 0 or less turns it off).
         *
         * @param v the largest global L2 norm of the gradients
         * @return this builder
         */
        public Builder clipGradNorm(double v) { clip = v; return this; }
        /**
         * The run seed: initialization, data order, masks and stochastic depth derive from it. Default 0 for a new model; a given {@link #model} keeps the seed of its state unless this is set.
         *
         * @param v the run seed
         * @return this builder
         */
        public Builder seed(long v) { seed = v; seedSet = true; return this; }
        /**
         * Whether stochastic depth is on (default true), at the configuration's rate.
         *
         * @param v true to turn it on
         * @return this builder
         */
        public Builder dropPath(boolean v) { dropPath = v; return this; }
        /**
         * The precision of the linear layers' matrix products (default: bf16 on CUDA, fp32 on the
         * CPU, where bf16 is an emulation for comparisons, slower than fp32). Checkpoints stay fp32.
         *
         * @param v the precision; not null
         * @return this builder
         * @throws NullPointerException when {@code v} is null
         */
        public Builder precision(Precision v) { precision = Objects.requireNonNull(v); return this; }
        /**
         * Draws the masks (default: block masking of half the patches).
         *
         * @param v the generator; it must cover the model's patches
         * @return this builder
         */
        public Builder maskGenerator(MaskGenerator v) { masks = v; return this; }
        /**
         * Receives the metrics of every step and each checkpoint written (default: none).
         *
         * @param v the listener; not null
         * @return this builder
         * @throws NullPointerException when {@code v} is null
         */
        public Builder listener(TrainingListener v) { listener = Objects.requireNonNull(v); return this; }
        /**
         * Write a checkpoint to {@code file} every {@code everySteps} steps (0: only at the end) and at the end.
         * Only rank 0 of a data-parallel run writes it.
         *
         * @param file the checkpoint file, replaced each time; null for no checkpoints
         * @param everySteps the interval in steps; 0 or less for only at the end
         * @return this builder
         */
        public Builder checkpoint(Path file, long everySteps) { checkpoint = file; checkpointEvery = everySteps; return this; }
        /**
         * Checked before every step: when it returns true, training stops, writes a checkpoint (when
         * one is configured) and {@link #fit()} returns. For Ctrl-C handling.
         *
         * @param v the stop signal, called on the training thread; not null
         * @return this builder
         * @throws NullPointerException when {@code v} is null
         */
        public Builder stopWhen(java.util.function.BooleanSupplier v) { stop = Objects.requireNonNull(v); return this; }
        /**
         * A step whose loss or gradient norm is not finite changes nothing and is counted; after this
         * many in a row (default 10; 0: never) training stops with a {@link NonFiniteLossException}.
         *
         * @param v the limit; 0 or less for none
         * @return this builder
         */
        public Builder maxBadSteps(int v) { maxBadSteps = v; return this; }
        /**
         * With true, an image that cannot be read fails the run; by default it is replaced by the next
         * image in the epoch's order and counted ({@link #unreadableImages()}).
         *
         * @param v true to fail on an unreadable image
         * @return this builder
         */
        public Builder strictData(boolean v) { strictData = v; return this; }
        /**
         * Threads that load and augment batches ahead of the step (default 1).
         *
         * @param v the number of loader threads, at least 1
         * @return this builder
         */
        public Builder loaderThreads(int v) { loaderThreads = v; return this; }
        /**
         * Batches prepared ahead of the step (default 4).
         *
         * @param v the number of batches, at least 1
         * @return this builder
         */
        public Builder prefetch(int v) { prefetch = v; return this; }

        /**
         * Checks the options and makes the trainer.
         *
         * @return the trainer
         * @throws IllegalStateException when data is missing, a new model lacks its context or
         *     configuration, or the configuration differs from the given model's
         * @throws IllegalArgumentException when the batch size or run length is out of range, or the
         *     configuration is invalid
         */
        public CaeTrainer build() {
            if (data == null) {
                throw new IllegalStateException("no data: call data(...)");
            }
            if (model == null && (context == null || config == null)) {
                throw new IllegalStateException("a new model needs context(...) and config(...), or pass model(...)");
            }
            if (model != null && config != null && !config.equals(model.config())) {
                throw new IllegalStateException("config(...) differs from the configuration of model(...)");
            }
            if (batchSize < 1) {
                throw new IllegalArgumentException("batch size " + batchSize);
            }
            if (steps <= 0 && epochs < 1) {
                throw new IllegalArgumentException("train for at least one epoch or one step");
            }
            if (config != null) {
                config.validate();
            }
            return new CaeTrainer(this);
        }
    }
}
