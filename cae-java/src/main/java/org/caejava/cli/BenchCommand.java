package org.caejava.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.api.DType;
import org.caejava.api.Location;
import org.caejava.api.Precision;
import org.caejava.api.StepOptions;
import org.caejava.api.StepResult;
import org.caejava.api.Tensor;
import org.caejava.mask.BlockMaskGenerator;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code cae bench}: the speed of full training steps on random data. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Time full training steps (forward with the alignment pass, backward, clipping, AdamW, "
                + "stochastic depth on) on random images with block masks of half the patches, and print one JSON "
                + "line: img_per_s, step_ms (median), the median of each phase, the time Java adds to the native "
                + "step, backend and threads, and the model FLOP utilization: FLOPs counted from the model's "
                + "shapes against a GEMM of the step's precision measured in the same run."})
final class BenchCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    static final class Model {
        @Option(names = "--preset", paramLabel = "NAME", description = "A preset: tiny, small, base, large, "
                + "fmnist-tiny, fmnist-small.")
        String preset;

        @Option(names = "--config", paramLabel = "FILE.json", description = "A model configuration file.")
        Path config;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Model model;

    @Option(names = "--batch", defaultValue = "64", description = "Batch size (default ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--steps", defaultValue = "20", description = "Timed steps (default ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--warmup", defaultValue = "3", description = "Untimed steps first (default ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--mask-ratio", defaultValue = "0.5", description = "Share of masked patches (default ${DEFAULT-VALUE}).")
    double maskRatio;

    @Mixin
    ContextOptions where = new ContextOptions();

    @Mixin
    PrecisionOption precisionOption = new PrecisionOption();

    @Override
    public Integer call() throws Exception {
        CaeConfig cfg = model.preset != null ? CaeConfig.preset(model.preset)
                : CaeConfig.read(model.config);
        cfg.validate();
        if (batch < 1 || steps < 1 || warmup < 0) {
            throw new IllegalArgumentException("--batch and --steps must be >= 1, --warmup >= 0");
        }
        int masked = (int) Math.round(maskRatio * cfg.numPatches());
        BlockMaskGenerator masks = new BlockMaskGenerator(cfg.gridSize(), masked);
        try (Context ctx = where.open(0); CaeModel m = CaeModel.create(ctx, cfg, 0); Arena arena = Arena.ofConfined()) {
            long[] shape = {batch, cfg.inChans(), cfg.imgSize(), cfg.imgSize()};
            Tensor host = Tensor.allocate(arena, DType.F32, shape);
            SplittableRandom rng = new SplittableRandom(1);
            float[] values = new float[(int) host.numel()];
            for (int i = 0; i < values.length; i++) {
                values[i] = (float) (rng.nextDouble() * 2 - 1);
            }
            host.copyFrom(values);
            // On a GPU the batch lives on the device, as a training loop with a device-side copy would.
            Tensor images = ctx.backend() == Backend.CUDA ? host.to(ctx, Location.DEVICE, arena) : host;
            Tensor mask = Tensor.allocate(arena, DType.U8, batch, cfg.numPatches());
            for (int i = 0; i < batch; i++) {
                mask.select(i).copyFrom(masks.generate(1, 0, i));
            }
            Precision precision = precisionOption.resolve(ctx.backend());
            StepOptions o = StepOptions.defaults().withLr(1e-4f).withPrecision(precision);
            double[] total = new double[steps];
            double[] fwd = new double[steps];
            double[] bwd = new double[steps];
            double[] opt = new double[steps];
            double[] javaMs = new double[steps];
            int replayed = 0;
            for (int s = 0; s < warmup + steps; s++) {
                long t0 = System.nanoTime();
                StepResult r = m.trainStep(images, mask, o.withStep(s + 1));
                double ms = (System.nanoTime() - t0) / 1e6;
                if (s >= warmup) {
                    int i = s - warmup;
                    total[i] = ms;
                    fwd[i] = r.forwardMs();
                    bwd[i] = r.backwardMs();
                    opt[i] = r.optimizerMs();
                    // What the Java side adds: the call's wall time less the time inside the library.
                    javaMs[i] = ms - r.totalMs();
                    replayed += r.replayed() ? 1 : 0;
                }
            }
            // The peak, measured in the same run: a GEMM of the step's precision on this backend.
            int g = ctx.backend() == Backend.CUDA ? 8192 : 1024;
            double peakGflops = ctx.measureGemmGflops(precision, g, g, g, 10);
            double flops = org.caejava.FlopCount.trainingStepPerImage(cfg, masked);
            ObjectMapper json = new ObjectMapper();
            ObjectNode out = json.createObjectNode();
            double median = median(total);
            out.put("impl", "cae-java");
            out.put("precision", precision.toString());
            out.put("backend", ctx.backend().name().toLowerCase());
            out.put("device", ctx.description());
            out.put("threads", ctx.threads());
            out.put("model", model.preset != null ? model.preset : model.config.toString());
            out.put("batch", batch);
            out.put("masked", masked);
            out.put("img_per_s", Math.round(batch / (median / 1000) * 10) / 10.0);
            out.put("step_ms", round(median));
            out.put("forward_ms", round(median(fwd)));
            out.put("backward_ms", round(median(bwd)));
            out.put("optimizer_ms", round(median(opt)));
            out.put("java_overhead_ms", Math.round(median(javaMs) * 1000) / 1000.0);
            out.put("java_overhead_share", Math.round(median(javaMs) / median * 1e5) / 1e5);
            out.put("replayed_steps", replayed);
            double achieved = flops * batch / (median / 1000) / 1e9;
            out.put("gflop_per_image", round(flops / 1e9));
            out.put("achieved_gflops", round(achieved));
            out.put("peak_gemm_gflops", round(peakGflops));
            out.put("peak_gemm", precision + " " + g + "^3, measured in this run");
            out.put("mfu", Math.round(achieved / peakGflops * 1000) / 1000.0);
            out.put("steps", steps);
            var all = out.putArray("step_ms_all");
            Arrays.stream(total).forEach(v -> all.add(round(v)));
            spec.commandLine().getOut().println(json.writeValueAsString(out));
            spec.commandLine().getOut().flush();
        }
        return 0;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static double round(double v) {
        return Math.round(v * 100) / 100.0;
    }
}
