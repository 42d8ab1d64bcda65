package org.caejava.check;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import org.caejava.CaeConfig;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.api.DType;
import org.caejava.api.DeviceInfo;
import org.caejava.api.NativeLibrary;
import org.caejava.api.NativeModel;
import org.caejava.api.ParamInfo;
import org.caejava.api.Precision;
import org.caejava.api.Slot;
import org.caejava.api.StepOptions;
import org.caejava.api.StepResult;
import org.caejava.api.Tensor;
import org.caejava.mask.BlockMaskGenerator;

/**
 * Before a CUDA device trains, it computes a tiny CAE model's losses, gradients, one AdamW step
 * and encoder features beside the CPU backend (the reference) on the same seed and batch, in fp32
 * and in bf16. A device that disagrees is not trusted: a context asked for as {@link Backend#AUTO}
 * moves to the CPU with a warning, one asked for as {@link Backend#CUDA} fails with the figures.
 * The result is kept per device for the life of the process.
 *
 * <p>Tolerances (relative): fp32 losses 1e-4 and vectors (each parameter's gradient, the
 * features) 1e-3; bf16 losses 2e-3 and vectors 3e-2. Correct backends differ only in the order of
 * fp32 sums (and, on a device, fused multiply-adds): on the host emulator at most 1e-7 in the
 * losses and 7e-7 in a gradient (fp32, SIMT or 3xTF32 mma.sync GEMMs), and 7e-5 in a bf16
 * gradient; single-pass TF32 (CAE_TF32=1, which gets bf16's tolerances for its fp32 figures)
 * reaches 9e-5 in the loss and 1.5e-3 in a gradient. A wrong kernel gives errors of order 1. A
 * gradient is measured against its own norm or 1e-3 of the whole gradient's, the larger: a key
 * bias's gradient is zero but for rounding, since every softmax cancels its shift.
 *
 * <p>{@code CAE_SELF_CHECK=off} (or {@code -Dcae.selfCheck=off}) skips the check;
 * {@code CAE_SELF_CHECK_TOLERANCE=F} (or {@code -Dcae.selfCheck.tolerance=F}) multiplies every
 * tolerance by F (0 turns any difference into a mismatch).
 */
public final class CudaSelfCheck {

    /** 16x16x3 images, 16 patches of 4x4, width 32 (two heads of 16), two encoder blocks. */
    static final CaeConfig MODEL = CaeConfig.preset("fmnist-tiny").toBuilder().imgSize(16).patchSize(4).inChans(3)
            .embedDim(32).depth(2).numHeads(2).regressorDepth(1).decoderDepth(1).decoderNumHeads(2).build();
    static final int BATCH = 4;
    static final long SEED = 7;
    static final double ADAMW_LR = 1e-2;
    /** A parameter's gradient error is relative to its norm or this share of the whole gradient's, the larger. */
    static final double GRADIENT_FLOOR = 1e-3;

    static final double FP32_LOSS = 1e-4;
    static final double FP32_VECTOR = 1e-3;
    static final double BF16_LOSS = 2e-3;
    static final double BF16_VECTOR = 3e-2;

    /** What to do with a CUDA context after its check. */
    public enum Decision { USE_DEVICE, USE_CPU }

    private static final Map<Integer, SelfCheckResult> RESULTS = new HashMap<>();

    private CudaSelfCheck() {}

    /** The check of {@code cuda}'s device, run on the first call for that device and kept. */
    public static synchronized SelfCheckResult of(Context cuda) {
        SelfCheckResult r = RESULTS.get(cuda.deviceIndex());
        if (r == null) {
            r = enabled() ? run(cuda) : SelfCheckResult.skipped(deviceName(cuda), "CAE_SELF_CHECK=off");
            RESULTS.put(cuda.deviceIndex(), r);
        }
        return r;
    }

    /**
     * Decides from a check what a context asked for as {@code requested} computes on: the device when
     * the check passed, the CPU when it failed and the choice was AUTO. Throws
     * {@link CudaMismatchException} when it failed and CUDA was asked for.
     */
    public static Decision decide(Backend requested, SelfCheckResult r) {
        if (r.passed()) {
            return Decision.USE_DEVICE;
        }
        if (requested == Backend.AUTO) {
            return Decision.USE_CPU;
        }
        throw new CudaMismatchException(r, "Its results cannot be trusted: compute on the CPU (backend cpu), "
                + "or set CAE_SELF_CHECK=off to use the device anyway");
    }

    /** The one-line warning of a fallback to the CPU. */
    public static String fallbackWarning(SelfCheckResult r) {
        return r.summary() + "; computing on the CPU instead (ask for backend cuda to fail instead, "
                + "CAE_SELF_CHECK=off to use the device anyway)";
    }

    /**
     * The context to compute on: {@code ctx} itself unless it is a CUDA context whose device fails the
     * check; then, for an AUTO context, a new CPU context with {@code cpuThreads} threads and the same
     * seed (after {@code warn} got the one-line warning), and for a CUDA context a
     * {@link CudaMismatchException}. A context that is not used is closed.
     */
    public static Context verified(Context ctx, int cpuThreads, Consumer<String> warn) {
        if (ctx.backend() != Backend.CUDA) {
            return ctx;
        }
        Decision d;
        try {
            d = decide(ctx.requestedBackend(), of(ctx));
        } catch (RuntimeException e) {
            ctx.close();
            throw e;
        }
        if (d == Decision.USE_DEVICE) {
            return ctx;
        }
        long seed = ctx.seed();
        SelfCheckResult r = of(ctx);
        ctx.close();
        warn.accept(fallbackWarning(r));
        return Context.builder().backend(Backend.CPU).threads(cpuThreads).seed(seed).build();
    }

    /** Runs the check on {@code cuda}'s device now (not kept). */
    public static SelfCheckResult run(Context cuda) {
        if (cuda.backend() != Backend.CUDA) {
            throw new IllegalArgumentException("the self-check compares a CUDA context with the CPU; got " + cuda);
        }
        double scale = toleranceScale();
        try (Context cpu = Context.builder().backend(Backend.CPU).seed(cuda.seed()).build()) {
            // With TF32 allowed (CAE_TF32), fp32 products round their operands to 10 mantissa bits.
            return compare(cuda, cpu, deviceName(cuda), cuda.description().contains("TF32 allowed"), scale);
        }
    }

    /**
     * The figures of {@code candidate} against {@code reference}, tolerances multiplied by
     * {@code scale}; {@code tf32}: the candidate's fp32 products may round to TF32.
     */
    static SelfCheckResult compare(Context candidate, Context reference, String name, boolean tf32, double scale) {
        List<Figure> figures = new ArrayList<>();
        long t0 = System.nanoTime();
        try (Arena arena = Arena.ofConfined();
                NativeModel onDevice = NativeModel.create(candidate, MODEL.modelConfig(), SEED);
                NativeModel onCpu = NativeModel.create(reference, MODEL.modelConfig(), SEED)) {
            Tensor images = Tensor.of(arena, images(), BATCH, MODEL.inChans(), MODEL.imgSize(), MODEL.imgSize());
            Tensor mask = Tensor.of(arena, masks(), BATCH, MODEL.numPatches());
            for (Precision p : List.of(Precision.FP32, Precision.BF16)) {
                boolean loose = p == Precision.BF16 || tf32;
                double lossTol = scale * (loose ? BF16_LOSS : FP32_LOSS);
                double vectorTol = scale * (loose ? BF16_VECTOR : FP32_VECTOR);
                StepOptions o = StepOptions.defaults().withDropPath(false).withPrecision(p);
                StepResult a = onDevice.computeGradients(images, mask, o);
                StepResult b = onCpu.computeGradients(images, mask, o);
                figures.add(Figure.scalar(p + " loss", a.loss(), b.loss(), lossTol));
                figures.add(Figure.scalar(p + " main loss", a.lossMain(), b.lossMain(), lossTol));
                figures.add(Figure.scalar(p + " alignment loss", a.lossAlign(), b.lossAlign(), lossTol));
                figures.add(Figure.scalar(p + " gradient norm", a.gradNorm(), b.gradNorm(), vectorTol));
                figures.add(worstGradient(p, onDevice, onCpu, GRADIENT_FLOOR * b.gradNorm(), vectorTol));
            }
            // One AdamW step (clipped, weight decay) at a large rate, then the loss it leads to.
            double lossTol = scale * (tf32 ? BF16_LOSS : FP32_LOSS);
            StepOptions step = StepOptions.defaults().withLr(ADAMW_LR).withDropPath(false);
            onDevice.trainStep(images, mask, step);
            onCpu.trainStep(images, mask, step);
            StepResult a = onDevice.computeGradients(images, mask);
            StepResult b = onCpu.computeGradients(images, mask);
            figures.add(Figure.scalar("fp32 loss after an AdamW step", a.loss(), b.loss(), lossTol));
            figures.add(features(arena, images, onDevice, onCpu, scale * (tf32 ? BF16_VECTOR : FP32_VECTOR)));
        } catch (RuntimeException e) {
            return SelfCheckResult.failed(name, figures, e.getMessage(), (System.nanoTime() - t0) / 1e9);
        }
        return SelfCheckResult.of(name, figures, (System.nanoTime() - t0) / 1e9);
    }

    /** The parameter whose gradient differs most, relative to its norm. */
    private static Figure worstGradient(Precision p, NativeModel onDevice, NativeModel onCpu, double floor,
            double tolerance) {
        Figure worst = null;
        for (ParamInfo info : onCpu.parameters()) {
            if (!info.trainable()) {
                continue;
            }
            Figure f = Figure.vector(p + " gradient of " + info.name(), onDevice.read(info, Slot.GRAD),
                    onCpu.read(info, Slot.GRAD), floor, tolerance);
            if (worst == null || !(f.error() <= worst.error())) {
                worst = f;
            }
        }
        return worst;
    }

    /** The encoder's cls and mean-patch features of the batch, as one vector. */
    private static Figure features(Arena arena, Tensor images, NativeModel onDevice, NativeModel onCpu,
            double tolerance) {
        float[][] out = new float[2][];
        NativeModel[] models = {onDevice, onCpu};
        for (int m = 0; m < 2; m++) {
            Tensor cls = Tensor.allocate(arena, DType.F32, BATCH, MODEL.embedDim());
            Tensor mean = Tensor.allocate(arena, DType.F32, BATCH, MODEL.embedDim());
            models[m].encode(images, cls, mean);
            float[] c = cls.toFloatArray();
            float[] e = mean.toFloatArray();
            out[m] = new float[c.length + e.length];
            System.arraycopy(c, 0, out[m], 0, c.length);
            System.arraycopy(e, 0, out[m], c.length, e.length);
        }
        return Figure.vector("fp32 encoder features", out[0], out[1], tolerance);
    }

    private static float[] images() {
        Random r = new Random(SEED);
        float[] x = new float[BATCH * MODEL.inChans() * MODEL.imgSize() * MODEL.imgSize()];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    private static byte[] masks() {
        int n = MODEL.numPatches();
        BlockMaskGenerator g = new BlockMaskGenerator(MODEL.gridSize(), n / 2);
        byte[] m = new byte[BATCH * n];
        for (int i = 0; i < BATCH; i++) {
            g.generate(SEED, 0, i, MemorySegment.ofArray(m).asSlice((long) i * n, n));
        }
        return m;
    }

    private static String deviceName(Context cuda) {
        int index = cuda.deviceIndex();
        String name = NativeLibrary.devices().stream().filter(d -> d.index() == index).map(DeviceInfo::name)
                .findFirst().orElse("?");
        return "CUDA device " + index + " (" + name + ")";
    }

    static boolean enabled() {
        String v = setting("cae.selfCheck", "CAE_SELF_CHECK");
        return v == null || !List.of("off", "false", "0", "no").contains(v.trim().toLowerCase(Locale.ROOT));
    }

    static double toleranceScale() {
        String v = setting("cae.selfCheck.tolerance", "CAE_SELF_CHECK_TOLERANCE");
        if (v == null) {
            return 1;
        }
        try {
            double f = Double.parseDouble(v.trim());
            if (f >= 0 && Double.isFinite(f)) {
                return f;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("CAE_SELF_CHECK_TOLERANCE (or cae.selfCheck.tolerance) is \"" + v
                + "\"; expected a factor >= 0 for the self-check's tolerances");
    }

    private static String setting(String property, String environment) {
        String v = System.getProperty(property);
        if (v == null || v.isBlank()) {
            v = System.getenv(environment);
        }
        return v == null || v.isBlank() ? null : v;
    }
}
