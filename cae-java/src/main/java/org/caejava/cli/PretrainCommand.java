package org.caejava.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.CaeTrainer;
import org.caejava.StepMetrics;
import org.caejava.TrainingListener;
import org.caejava.TrainingState;
import org.caejava.api.Backend;
import org.caejava.api.Communicator;
import org.caejava.api.Context;
import org.caejava.api.Precision;
import org.caejava.data.Augmentation;
import org.caejava.data.Datasets;
import org.caejava.data.ImageDataset;
import org.caejava.data.ImageSource;
import org.caejava.eval.ProbeOptions;
import org.caejava.eval.ProbeReport;
import org.caejava.eval.ProbeResult;
import org.caejava.eval.ProbeSpread;
import org.caejava.eval.TrainingProbe;
import org.caejava.mask.BlockMaskGenerator;
import org.caejava.mask.MaskGenerator;
import org.caejava.mask.RandomMaskGenerator;
import org.caejava.report.MetricsLog;
import org.caejava.report.Report;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code cae pretrain}: CAE pretraining with a live progress line, checkpoints, and at the end the
 * probe (k-NN and linear, against a randomly initialized encoder and raw pixels) and a report.
 */
@Command(name = "pretrain", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Pretrain a ViT encoder with CAE. Without options: the fmnist-tiny preset on Fashion-MNIST "
                + "(the embedded 10k/2k subset, or the full set of Debian's dataset-fashion-mnist when installed) "
                + "for " + PretrainCommand.DEFAULT_STEPS + " steps, under 10 minutes on 2 CPU cores.",
            "The output folder receives checkpoint.safetensors (weights, AdamW state, configuration), metrics.jsonl, "
                + "probe.json, loss.png, reconstruction.png and report.html. Ctrl-C writes a checkpoint and stops; "
                + "--resume continues from it."})
final class PretrainCommand implements Callable<Integer> {

    static final long DEFAULT_STEPS = 1600;

    /**
     * Below this many training images the small-data recipe applies: peak learning rate
     * {@link #SMALL_DATA_LR} x B / 64 instead of CAE's 1.5e-3 x B / 2048, which at batch 64 is a tenth
     * of what a few epochs of 10k images need (bench/README.md, the quality sweep).
     */
    static final long SMALL_DATA = 100_000;
    static final double SMALL_DATA_LR = 5e-4;

    /** Below this many patches per side, masks are random rather than BEiT blocks: a 7x7 grid has no room for blocks. */
    static final int RANDOM_MASK_BELOW_GRID = 14;
    static final String CHECKPOINT = "checkpoint.safetensors";
    static final String RUN_JSON = "run.json";
    /** run.json's "data" when no --data was given. */
    static final String FASHION_MNIST = "fashion-mnist";

    @Spec
    CommandSpec spec;

    @Option(names = "--data", paramLabel = "PATH", description = "Images: a folder of JPEG/PNG/BMP/GIF (labels from "
            + "subfolders; train/ and test/ subfolders as splits), IDX files, or shards from 'cae prepare'. "
            + "Default: Fashion-MNIST.")
    Path data;

    static final class ModelChoice {
        @Option(names = "--preset", paramLabel = "NAME", description = "tiny, small, base, large (224x224 RGB), "
                + "fmnist-tiny, fmnist-small (28x28 gray). Default: fmnist-tiny for 28x28 gray data, else base.")
        String preset;

        @Option(names = "--config", paramLabel = "FILE.json", description = "A model configuration (see 'cae config').")
        Path config;
    }

    @ArgGroup(exclusive = true)
    ModelChoice model;

    static final class Length {
        @Option(names = "--epochs", paramLabel = "N", description = "Passes over the training images.")
        Long epochs;

        @Option(names = "--steps", paramLabel = "N", description = "Training steps in total (default "
                + DEFAULT_STEPS + " when neither is given).")
        Long steps;
    }

    @ArgGroup(exclusive = true)
    Length length;

    @Option(names = "--batch", paramLabel = "B", description = "Images per step (default 64).")
    Integer batch;

    @Option(names = "--lr", paramLabel = "LR", description = "Peak learning rate (default 5e-4 * B / 64 below "
            + "100,000 training images, else CAE's 1.5e-3 * B / 2048).")
    Double lr;

    @Option(names = "--min-lr", paramLabel = "LR", description = "Learning rate at the end of the cosine decay "
            + "(default: the peak / 150).")
    Double minLr;

    @Option(names = "--warmup-steps", paramLabel = "N", description = "Linear warmup from 0 (default 1/30 of the run).")
    Long warmupSteps;

    @Option(names = "--weight-decay", paramLabel = "WD", description = "AdamW weight decay (default 0.05).")
    Double weightDecay;

    @Option(names = "--crop-scale", paramLabel = "MIN", description = "Random resized crop: the smallest share of "
            + "the image area a crop keeps; 1 turns cropping off (default 0.5 below 64 pixels, else 0.08).")
    Double cropScale;

    @Option(names = "--flip", paramLabel = "P", description = "Probability of a horizontal flip (default 0.5).")
    Double flip;

    @Option(names = "--out", paramLabel = "DIR", description = "Output folder (default runs/cae-DATE-TIME).")
    Path out;

    @Option(names = "--resume", arity = "0..1", paramLabel = "CHECKPOINT", fallbackValue = "",
            description = "Continue a run: from CHECKPOINT, or from the output folder's checkpoint. Options not given "
                    + "again are taken from the run's run.json.")
    String resume;

    @Option(names = "--seed", paramLabel = "S", description = "Run seed: initialization, data order, augmentation, "
            + "masks, stochastic depth (default 0).")
    Long seed;

    @Option(names = "--mask", paramLabel = "block|random", description = "Masking: BEiT blocks or random patches "
            + "(default: random below 14x14 patches, else block).")
    String mask;

    @Option(names = "--mask-ratio", paramLabel = "R", description = "Share of masked patches (default 0.5).")
    Double maskRatio;

    @Option(names = "--checkpoint-every", paramLabel = "N", description = "Steps between checkpoints (default 100).")
    Long checkpointEvery;

    @Option(names = "--loader-threads", paramLabel = "N", description = "Threads decoding and augmenting images "
            + "(default 1).")
    Integer loaderThreads;

    @Option(names = "--strict", description = "Fail on an image that cannot be read (by default it is skipped, "
            + "replaced by the next one, and counted).")
    boolean strict;

    @Option(names = "--no-probe", description = "Skip the probe at the end and the k-NN during training.")
    boolean noProbe;

    @Option(names = "--no-report", description = "Skip the pictures and report.html at the end (for headless "
            + "runtimes without java.desktop).")
    boolean noReport;

    @Option(names = "--probe-train", paramLabel = "N", defaultValue = "10000",
            description = "At most N labeled training images fit the probe (default ${DEFAULT-VALUE}).")
    long probeTrain;

    @Option(names = "--probe-test", paramLabel = "N", defaultValue = "10000",
            description = "At most N test images score it (default ${DEFAULT-VALUE}).")
    long probeTest;

    @Option(names = "--probe-every-epoch", paramLabel = "N", defaultValue = "1",
            description = "During training, a quick k-NN probe (" + TrainingProbe.DEFAULT_TRAIN + " train / "
                    + TrainingProbe.DEFAULT_TEST + " test images) every N epochs and at the last step, logged to "
                    + "metrics.jsonl; 0 turns it off, as --no-probe does (default ${DEFAULT-VALUE}).")
    int probeEveryEpoch;

    @Option(names = "--rank-timeout", paramLabel = "SECONDS", defaultValue = "600", description = "Under mpirun "
            + "or srun: a rank whose step does not end within this many seconds (another rank hung) ends the job "
            + "(default 600; 0: never).")
    long rankTimeout;

    @Option(names = "--init", paramLabel = "CHECKPOINT", description = "Start a new pretraining from these "
            + "weights: a checkpoint, or only the model's tensors under the official names with the configuration "
            + "in the metadata (a converted PyTorch checkpoint, for instance); AdamW starts fresh at step 0.")
    Path init;

    @Option(names = "--seeds", paramLabel = "N", defaultValue = "1", description = "Train N times, with seeds "
            + "--seed .. --seed + N - 1, into DIR/seed-S folders, and print the probe's mean, spread and range over "
            + "them (written to " + ProbeSpread.FILE + ") (default ${DEFAULT-VALUE}).")
    int seeds;

    @Option(names = "--log-interval", paramLabel = "SECONDS", defaultValue = "10",
            description = "Seconds between log lines when the output is not a terminal (default ${DEFAULT-VALUE}).")
    double logInterval;

    @Mixin
    ContextOptions where = new ContextOptions();

    @Mixin
    PrecisionOption precisionOption = new PrecisionOption();

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The processes of this run: MPI's world under mpirun or srun, else this process alone. */
    private Communicator comm;

    @Override
    public Integer call() throws Exception {
        try (Communicator c = Communicator.fromEnvironment()) {
            comm = c;
            if (c.size() == 1) {
                return run(spec.commandLine().getOut());
            }
            // Rank 0 prints and writes the run's files; a rank that fails ends the whole job, as the
            // others would wait for it in the next step.
            PrintWriter stdout = c.isRoot() ? spec.commandLine().getOut()
                    : new PrintWriter(java.io.OutputStream.nullOutputStream());
            try {
                return run(stdout);
            } catch (Exception | Error e) {
                PrintWriter err = spec.commandLine().getErr();
                err.printf("cae pretrain: rank %d of %d failed: %s%n", c.rank(), c.size(),
                        e.getMessage() != null ? e.getMessage() : e.toString());
                err.println("cae pretrain: ending every rank of the job");
                err.flush();
                c.abort(e instanceof ParameterException ? 2 : 1);
                throw e;
            }
        }
    }

    private Integer run(PrintWriter stdout) throws Exception {
        Path outDir = out != null ? out : Path.of("runs", "cae-"
                + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        Path checkpointFile = outDir.resolve(CHECKPOINT);
        Path resumeFrom = null;
        if (resume != null) {
            resumeFrom = resume.isEmpty() ? checkpointFile : Path.of(resume);
            if (!Files.isRegularFile(resumeFrom)) {
                throw new ParameterException(spec.commandLine(), "--resume: no checkpoint at " + resumeFrom
                        + (resume.isEmpty() ? " (give the run's folder with --out, or the checkpoint file)" : ""));
            }
            restoreOptions(outDir.resolve(RUN_JSON));
        } else if (Files.exists(checkpointFile)) {
            throw new ParameterException(spec.commandLine(), outDir + " already holds a run (" + CHECKPOINT
                    + "): continue it with --resume, or choose another --out");
        }
        if (init != null && resume != null) {
            throw new ParameterException(spec.commandLine(), "--init starts a new run and --resume continues one: "
                    + "give one of them");
        }
        if (init != null && !Files.isRegularFile(init)) {
            throw new ParameterException(spec.commandLine(), "--init: no checkpoint at " + init);
        }
        // Checked before anything is written (a resumed run's come from its run.json).
        where.parsedBackend();
        precisionOption.validate();
        if (probeEveryEpoch < 0) {
            throw new ParameterException(spec.commandLine(), "--probe-every-epoch must be >= 0, not "
                    + probeEveryEpoch);
        }
        if (rankTimeout < 0) {
            throw new ParameterException(spec.commandLine(), "--rank-timeout must be >= 0 seconds, not " + rankTimeout);
        }
        if (seeds < 1) {
            throw new ParameterException(spec.commandLine(), "--seeds must be >= 1, not " + seeds);
        }
        if (seeds > 1 && resumeFrom != null) {
            throw new ParameterException(spec.commandLine(), "--seeds cannot be combined with --resume: resume each "
                    + "seed's run (its folder seed-N) on its own");
        }
        CaeConfig config = chooseConfig(resumeFrom != null ? resumeFrom : init);
        Files.createDirectories(outDir);

        // The data: the training split (augmented) and, where there is one, a labeled test split.
        try (DataSplits splits = DataSplits.open(data, config, augmentation(config))) {
            long firstSeed = seed != null ? seed : 0;
            if (seeds == 1) {
                return runOne(outDir, resumeFrom, config, splits, firstSeed, stdout) ? 0 : 130;
            }
            List<ProbeResult> probes = new ArrayList<>();
            for (long k = 0; k < seeds; k++) {
                Path dir = outDir.resolve("seed-" + (firstSeed + k));
                if (Files.exists(dir.resolve(CHECKPOINT))) {
                    throw new ParameterException(spec.commandLine(), dir + " already holds a run (" + CHECKPOINT
                            + "): choose another --out");
                }
                stdout.printf("== seed %d (%d of %d) ==%n", firstSeed + k, k + 1, seeds);
                if (!runOne(dir, null, config, splits, firstSeed + k, stdout)) {
                    return 130;
                }
                if (lastProbe != null) {
                    probes.add(lastProbe);
                }
            }
            if (!probes.isEmpty()) {
                ProbeSpread spread = ProbeSpread.of(probes);
                stdout.print(spread.toTable());
                spread.write(outDir.resolve(ProbeSpread.FILE));
                stdout.printf("over the seeds: %s%n", outDir.resolve(ProbeSpread.FILE).toAbsolutePath());
                stdout.flush();
            }
        }
        return 0;
    }

    /** The probe of the last run that finished, or null. */
    private ProbeResult lastProbe;

    /** One training run with the given seed into {@code outDir}; false when stopped by Ctrl-C / SIGTERM. */
    private boolean runOne(Path outDir, Path resumeFrom, CaeConfig config, DataSplits splits, long runSeed,
            PrintWriter stdout) throws IOException {
        Files.createDirectories(outDir);
        Path checkpointFile = outDir.resolve(CHECKPOINT);
        ImageDataset train = splits.train();
        ImageDataset test = splits.test();
        int b = batch != null ? batch : 64;
        long stepsPerEpoch = train.size() / b;
        if (stepsPerEpoch < 1) {
            throw new ParameterException(spec.commandLine(), "--batch " + b + " is larger than the "
                    + train.size() + " training images");
        }
        long total = length != null && length.steps != null ? length.steps
                : length != null && length.epochs != null ? length.epochs * stepsPerEpoch : DEFAULT_STEPS;
        int masked = (int) Math.round((maskRatio != null ? maskRatio : 0.5) * config.numPatches());
        String maskKind = mask != null ? mask : config.gridSize() < RANDOM_MASK_BELOW_GRID ? "random" : "block";
        MaskGenerator masks = "random".equals(maskKind) ? new RandomMaskGenerator(config.numPatches(), masked)
                : new BlockMaskGenerator(config.gridSize(), masked);
        double peakLr = lr != null ? lr : train.size() < SMALL_DATA ? SMALL_DATA_LR * b / 64 : 1.5e-3 * b / 2048;
        if (mask != null && !mask.equals("random") && !mask.equals("block")) {
            throw new ParameterException(spec.commandLine(), "--mask must be block or random, not \"" + mask + "\"");
        }
        if (b % comm.size() != 0) {
            throw new ParameterException(spec.commandLine(), "--batch " + b + " (the global batch) cannot be split "
                    + "evenly over " + comm.size() + " ranks: choose a multiple of " + comm.size());
        }
        Map<String, Object> run = runInfo(train, test, config, b, total, runSeed, maskKind, masked, peakLr);
        boolean root = comm.isRoot();
        if (root) {
            Files.writeString(outDir.resolve(RUN_JSON), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(run));
            Files.writeString(outDir.resolve("config.json"), config.toJson() + "\n");
        }

        try (Context ctx = where.open(runSeed, comm)) {
            CaeModel model = resumeFrom != null ? CaeModel.load(ctx, resumeFrom)
                    : init != null ? initialized(ctx, config, runSeed) : CaeModel.create(ctx, config, runSeed);
            try (model; MetricsLog metrics = root ? MetricsLog.open(outDir, model.state().step()) : null) {
                Precision precision = precisionOption.resolve(ctx.backend());
                stdout.printf("cae pretrain: %s, %s matrix products%n  data: %s (%d training images%s)%n  model: %s%n"
                        + "  %d steps of %d images (%.1f epochs), %s%s, peak learning rate %.1e%n  output: %s%n",
                        ctx.description(),
                        precision,
                        data == null ? "Fashion-MNIST" + (Datasets.fullFashionMnistInstalled() ? "" : ", embedded subset")
                                : data, train.size(), test == null ? ", no labeled test split" : ", " + test.size()
                                + " test images", describe(config), total, b, (double) total / stepsPerEpoch,
                        masks instanceof BlockMaskGenerator ? "block" : "random", " masks of " + masked + "/"
                                + config.numPatches() + " patches", peakLr, outDir);
                if (ctx.backend() == Backend.CPU && precision == Precision.BF16) {
                    stdout.printf("  bf16 on the CPU is an emulation of the GPU's arithmetic, slower than fp32%n");
                }
                if (comm.size() > 1) {
                    stdout.printf("  data parallel: %d processes (%s), %d images each per step%n", comm.size(),
                            comm.library(), b / comm.size());
                }
                if (resumeFrom != null) {
                    stdout.printf("  resuming from step %d (%s)%n", model.state().step(), resumeFrom);
                }
                if (init != null) {
                    stdout.printf("  starting from the weights of %s%n", init);
                }
                stdout.flush();
                boolean stopped = train(model, precision, train, test, masks, b, total, peakLr, runSeed,
                        checkpointFile, metrics, stdout);
                if (stopped) {
                    return false;
                }
                if (root && comm.size() > 1 && ctx.backend() == Backend.CPU) {
                    // The other ranks are done: the probe gets the cores they shared with this one,
                    // on the weights as the final checkpoint holds them.
                    try (Context whole = where.open(runSeed); CaeModel saved = CaeModel.load(whole, checkpointFile)) {
                        lastProbe = finish(outDir, saved, train, test, run, stdout);
                    }
                } else if (root) {
                    lastProbe = finish(outDir, model, train, test, run, stdout);
                }
            }
        }
        return true;
    }

    /** Trains until done or until Ctrl-C / SIGTERM, which writes a checkpoint first. Returns true when stopped. */
    private boolean train(CaeModel model, Precision precision, ImageDataset train, ImageDataset test,
            MaskGenerator masks, int b, long total, double peakLr, long runSeed, Path checkpointFile, MetricsLog metrics,
            PrintWriter stdout) {
        ProgressPrinter progress = new ProgressPrinter(stdout, ProgressPrinter.terminal(), logInterval);
        TrainingListener listeners = metrics != null ? both(progress, metrics) : m -> {};
        if (metrics != null && !noProbe && probeEveryEpoch > 0 && test != null && train.label(0) >= 0) {
            listeners = both(listeners, new TrainingProbe(model, train, test, train.size() / b, probeEveryEpoch,
                    TrainingProbe.defaults().withLog(line -> {
                        progress.finishLine();
                        stdout.println(line);
                        stdout.flush();
                    }), metrics::append));
        }
        AtomicBoolean stop = new AtomicBoolean();
        CountDownLatch finished = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            stop.set(true);
            try {
                finished.await(120, TimeUnit.SECONDS);  // let the step end and the checkpoint be written
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "cae-pretrain-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        long t0 = System.nanoTime();
        long startStep = model.state().step();
        CaeTrainer trainer;
        try {
            CaeTrainer.Builder builder = CaeTrainer.builder().model(model).data(train).steps(total).batchSize(b)
                    .seed(runSeed).maskGenerator(masks).checkpoint(checkpointFile,
                            checkpointEvery != null ? checkpointEvery : 100)
                    .loaderThreads(loaderThreads != null ? loaderThreads : 1).stopWhen(stop::get).strictData(strict)
                    .listener(listeners).precision(precision).learningRate(peakLr);
            if (comm.size() > 1) {
                builder.communicator(comm).rankTimeout(java.time.Duration.ofSeconds(rankTimeout));
            }
            if (minLr != null) {
                builder.minLearningRate(minLr);
            }
            if (warmupSteps != null) {
                builder.warmupSteps(warmupSteps);
            }
            if (weightDecay != null) {
                builder.weightDecay(weightDecay);
            }
            trainer = builder.build();
            trainer.fit();
        } finally {
            progress.finishLine();
            finished.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the JVM is already stopping: the hook is running
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        TrainingState s = model.state();
        if (trainer.unreadableImages() > 0) {
            stdout.printf("%d unreadable images were skipped (replaced by the next ones; --strict fails instead), "
                    + "for example:%n", trainer.unreadableImages());
            trainer.unreadableExamples().forEach(m -> stdout.println("  " + m));
        }
        if (trainer.stoppedEarly()) {
            stdout.printf("stopped at step %d of %d; checkpoint %s. Continue with: cae pretrain --resume --out %s%n",
                    s.step(), total, checkpointFile, checkpointFile.getParent());
            stdout.flush();
            return true;
        }
        stdout.printf("trained to step %d in %s (%.0f images/s); the step waited for data %.1f%% of the time%s%n",
                s.step(), ProgressPrinter.duration(seconds), b * (s.step() - startStep) / Math.max(seconds, 1e-9),
                100 * trainer.dataWaitShare(), trainer.skippedSteps() == 0 ? ""
                        : "; " + trainer.skippedSteps() + " steps skipped for non-finite values");
        stdout.flush();
        return false;
    }

    /** The probe and the report; returns the probe, or null when skipped. */
    private ProbeResult finish(Path outDir, CaeModel model, ImageDataset train, ImageDataset test, Map<String, Object> run,
            PrintWriter stdout) throws IOException {
        ProbeResult probe = null;
        if (noProbe) {
            stdout.println("probe skipped (--no-probe)");
        } else if (test == null || train.label(0) < 0) {
            stdout.println("probe skipped: the data has no labeled test split (a folder with train/ and test/ "
                    + "subfolders of class folders has one)");
        } else {
            stdout.println("probing the encoder (k-NN and linear, against a random encoder and raw pixels)...");
            stdout.flush();
            probe = ProbeReport.run(model, train, test, ProbeOptions.defaults().withLimits(probeTrain, probeTest));
            stdout.print(probe.toTable());
        }
        if (noReport) {
            if (probe != null) {
                probe.write(outDir.resolve(Report.PROBE_JSON));
            }
            stdout.println("report skipped (--no-report)");
        } else {
            Path page = Report.write(outDir, model, test != null ? test : train, run, probe);
            stdout.printf("report: %s%n", page.toAbsolutePath());
        }
        stdout.flush();
        return probe;
    }

    /** The training augmentation: the default for the image size, changed by --crop-scale and --flip. */
    private Augmentation augmentation(CaeConfig config) {
        if (cropScale == null && flip == null) {
            return null;
        }
        if (cropScale != null && !(cropScale > 0 && cropScale <= 1)) {
            throw new ParameterException(spec.commandLine(), "--crop-scale must be in (0, 1], not " + cropScale);
        }
        if (flip != null && !(flip >= 0 && flip <= 1)) {
            throw new ParameterException(spec.commandLine(), "--flip must be a probability in [0, 1], not " + flip);
        }
        Augmentation a = Augmentation.defaultFor(config.imgSize());
        if (cropScale != null) {
            a = cropScale == 1 ? Augmentation.none().withInterpolation(a.interpolation())
                    .withFlipProbability(a.flipProbability()) : a.withScale(cropScale, 1);
        }
        return flip != null ? a.withFlipProbability(flip) : a;
    }

    /** The weights of --init in a model of {@code config}, with a fresh optimizer at step 0. */
    private CaeModel initialized(Context ctx, CaeConfig config, long runSeed) throws IOException {
        CaeModel m = CaeModel.load(ctx, init, config);
        if (!m.config().equals(config)) {
            String held = describe(m.config());
            m.close();
            throw new ParameterException(spec.commandLine(), "--init: " + init + " holds a model of " + held
                    + ", not the one asked for (" + describe(config) + ")");
        }
        m.startOver(runSeed);
        return m;
    }

    private CaeConfig chooseConfig(Path resumeFrom) throws IOException {
        if (model != null && model.config != null) {
            return CaeConfig.read(model.config);
        }
        if (model != null && model.preset != null) {
            return CaeConfig.preset(model.preset);
        }
        if (resumeFrom != null) {
            try (var f = org.caejava.io.SafetensorsFile.open(resumeFrom)) {
                String json = f.metadata().get("config");
                if (json != null) {
                    return CaeConfig.fromJson(json, "checkpoint metadata of " + resumeFrom);
                }
            }
        }
        try (ImageSource train = DataSplits.peekTrain(data)) {
            boolean gray28 = train.channels() == 1 && train.size() > 0 && train.width(0) == 28 && train.height(0) == 28;
            return CaeConfig.preset(gray28 ? "fmnist-tiny" : "base");
        }
    }

    /** Options a resumed run did not repeat come from its run.json. */
    private void restoreOptions(Path runJson) throws IOException {
        if (!Files.isRegularFile(runJson)) {
            return;
        }
        JsonNode r = JSON.readTree(runJson.toFile());
        if (data == null && r.hasNonNull("data") && !r.get("data").asText().equals(FASHION_MNIST)) {
            data = Path.of(r.get("data").asText());
        }
        if (length == null && r.hasNonNull("steps")) {
            length = new Length();
            length.steps = r.get("steps").asLong();
        }
        batch = batch != null ? batch : r.hasNonNull("batch") ? r.get("batch").asInt() : null;
        lr = lr != null ? lr : r.hasNonNull("lr") ? r.get("lr").asDouble() : null;
        minLr = minLr != null ? minLr : r.hasNonNull("min_lr") ? r.get("min_lr").asDouble() : null;
        cropScale = cropScale != null ? cropScale : r.hasNonNull("crop_scale") ? r.get("crop_scale").asDouble() : null;
        flip = flip != null ? flip : r.hasNonNull("flip") ? r.get("flip").asDouble() : null;
        if (r.hasNonNull("probe_every_epoch") && spec.commandLine().getParseResult().matchedOption("--probe-every-epoch")
                == null) {
            probeEveryEpoch = r.get("probe_every_epoch").asInt();
        }
        warmupSteps = warmupSteps != null ? warmupSteps : r.hasNonNull("warmup_steps") ? r.get("warmup_steps").asLong() : null;
        weightDecay = weightDecay != null ? weightDecay : r.hasNonNull("weight_decay") ? r.get("weight_decay").asDouble() : null;
        seed = seed != null ? seed : r.hasNonNull("seed") ? r.get("seed").asLong() : null;
        mask = mask != null ? mask : r.hasNonNull("mask") ? r.get("mask").asText() : null;
        maskRatio = maskRatio != null ? maskRatio : r.hasNonNull("mask_ratio") ? r.get("mask_ratio").asDouble() : null;
        if (precisionOption.precision == null && r.hasNonNull("precision")) {
            precisionOption.precision = r.get("precision").asText();
        }
    }

    private Map<String, Object> runInfo(ImageDataset train, ImageDataset test, CaeConfig config, int b, long total,
            long runSeed, String maskKind, int masked, double peakLr) throws IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("data", data == null ? FASHION_MNIST : data.toString());
        if (data == null) {
            m.put("data_source", Datasets.fullFashionMnistInstalled()
                    ? "the full Fashion-MNIST of Debian's dataset-fashion-mnist" : "the embedded Fashion-MNIST subset");
        }
        m.put("train_images", train.size());
        m.put("test_images", test == null ? 0 : test.size());
        m.put("steps", total);
        m.put("batch", b);
        m.put("lr", peakLr);
        m.put("min_lr", minLr);
        m.put("warmup_steps", warmupSteps);
        m.put("weight_decay", weightDecay);
        m.put("seed", runSeed);
        m.put("mask", maskKind);
        m.put("mask_ratio", maskRatio == null ? 0.5 : maskRatio);
        m.put("masked_patches", masked);
        m.put("crop_scale", cropScale);
        m.put("flip", flip);
        m.put("probe_every_epoch", probeEveryEpoch);
        m.put("augmentation", train.augmentation().toString());
        m.put("normalization", train.normalization().toString());
        m.put("backend", where.backend);
        m.put("precision", precisionOption.requested());
        m.put("threads", where.threads);
        m.put("ranks", comm.size());
        if (init != null) {
            m.put("init", init.toString());
        }
        m.put("config", JSON.readTree(config.toJson()));
        return m;
    }

    private static String describe(CaeConfig c) {
        return String.format("%dx%dx%d images, patch %d (%d patches), width %d, depth %d, %d heads, regressor %d, "
                + "decoder %d", c.imgSize(), c.imgSize(), c.inChans(), c.patchSize(), c.numPatches(), c.embedDim(),
                c.depth(), c.numHeads(), c.regressorDepth(), c.decoderDepth());
    }

    private static TrainingListener both(TrainingListener a, TrainingListener b) {
        return new TrainingListener() {
            @Override
            public void onStep(StepMetrics m) {
                a.onStep(m);
                b.onStep(m);
            }

            @Override
            public void onCheckpoint(Path file, TrainingState state) {
                a.onCheckpoint(file, state);
                b.onCheckpoint(file, state);
            }

            @Override
            public void onDataParallelStart(int ranks, String reduction) {
                a.onDataParallelStart(ranks, reduction);
                b.onDataParallelStart(ranks, reduction);
            }
        };
    }
}
