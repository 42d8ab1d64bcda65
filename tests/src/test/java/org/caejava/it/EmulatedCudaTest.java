package org.caejava.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.caejava.CaeConfig;
import org.caejava.data.Datasets;
import org.caejava.data.ImageDataset;
import org.caejava.io.SafetensorsFile;
import org.caejava.io.SafetensorsWriter;
import org.caejava.mask.BlockMaskGenerator;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java side on the CUDA backend without a GPU: the CLI in its own JVM with
 * {@code CAE_LIBRARY_PATH} pointing to libcae_emu.so, whose CUDA backend runs the real kernels on
 * the host emulator. A short pretraining, the gradients of a batch and the encoder's features
 * track the CPU backend in fp32 and in bf16, and the self-check lets AUTO train on the emulated
 * device, while a device that disagrees sends AUTO to the CPU and makes CUDA fail.
 *
 * <p>Tolerances are relative, set from what was measured (4 seeds of the pretraining below, the
 * SIMT and mma.sync GEMMs for one batch). fp32 differs only in the order of fp32 sums: at most
 * 2.9e-7 in a step's losses and 9e-7 in its gradient norm over 30 steps, 3e-6 in a gradient and
 * 2e-7 in the features; the tolerances are 30 to 100 times that. bf16 computes the first step
 * exactly as the CPU does; one batch's gradients differ by up to 2.6e-3 in the worst tensor (a
 * regressor LayerNorm bias, a sum over rows in which another order of fp32 sums sometimes rounds a
 * bf16 operand to its neighbour; the tolerance is 5e-3), and along a run a sum that
 * comes out in another order sometimes rounds an operand to the neighbouring bfloat16 (a 2^-8
 * change), and the runs drift apart: up to 3e-3 in a step's alignment loss and 1.1e-2 in its
 * gradient norm; the tolerances are 1e-2 and 5e-2 there.
 */
class EmulatedCudaTest {

    static final Path EMULATOR = Path.of(System.getProperty("cae.emu.library",
            CliEndToEndTest.ROOT.resolve("build/native/lib/libcae_emu.so").toString())).toAbsolutePath();
    /** The emulated device, as the self-check names it and as a context describes it. */
    static final String DEVICE = "CUDA device 0 (CAE host emulator (sm_90 model))";
    static final String EMULATED_DEVICE = "cuda: CAE host emulator";
    static final int STEPS = 30;
    static final int BATCH = 8;

    /** Per-step relative tolerance of the training losses (total, main, alignment) and of the gradient norm. */
    static final Map<String, double[]> TRAINING = Map.of("fp32", new double[] {1e-5, 1e-4},
            "bf16", new double[] {1e-2, 5e-2});
    /** The first step's losses, before any update: the same at both precisions. */
    static final double FIRST_STEP = 1e-5;
    /** Relative tolerance of a batch's losses and of each gradient (against its norm, at least 1e-3 of the whole). */
    static final Map<String, double[]> GRADIENTS = Map.of("fp32", new double[] {1e-5, 1e-4},
            "bf16", new double[] {1e-4, 5e-3});
    static final double FEATURES = 1e-5;

    @TempDir
    Path dir;

    @BeforeEach
    void emulatorBuilt() {
        assumeTrue(Files.isRegularFile(EMULATOR), "no " + EMULATOR + ": libcae_emu.so is built only where the CUDA "
                + "headers are (set -Dcae.emu.library to another build)");
    }

    /**
     * The environment of a child: libcae_emu.so when {@code emulated}, else the library packed in the
     * jar; the self-check on, its tolerances multiplied by {@code tolerance}.
     */
    static Map<String, String> env(boolean emulated, String tolerance) {
        Map<String, String> env = new HashMap<>();
        env.put("CAE_LIBRARY_PATH", emulated ? EMULATOR.toString() : "");
        env.put("CAE_SELF_CHECK", "on");
        env.put("CAE_SELF_CHECK_TOLERANCE", tolerance);
        return env;
    }

    static Map<String, String> emulated() {
        return env(true, "1");
    }

    Path tinyConfig() throws Exception {
        CaeConfig c = CaeConfig.preset("fmnist-tiny").toBuilder().patchSize(7).embedDim(32).depth(2).numHeads(2)
                .regressorDepth(1).decoderDepth(1).decoderNumHeads(2).build();
        Path f = dir.resolve("tiny.json");
        Files.writeString(f, c.toJson());
        return f;
    }

    /** A child process of the CLI or of a main class of this module, started but not awaited. */
    record Child(String what, Process process, Path log) {
        CliEndToEndTest.Run await() throws Exception {
            assertTrue(process.waitFor(4, TimeUnit.MINUTES), what + " did not finish");
            CliEndToEndTest.Run r = new CliEndToEndTest.Run(process.exitValue(), Files.readString(log));
            assertEquals(0, r.exit(), what + ":\n" + r.output());
            return r;
        }
    }

    Child cli(String name, Map<String, String> env, String... args) throws Exception {
        Path log = dir.resolve(name + ".log");
        return new Child("cae " + String.join(" ", args), CliEndToEndTest.start(log, env, args), log);
    }

    Child main(String name, Map<String, String> env, Class<?> main, String... args) throws Exception {
        Path log = dir.resolve(name + ".log");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), main.getName()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("XDG_CACHE_HOME", dir.resolve("cache").toString());
        pb.environment().putAll(env);
        return new Child(main.getSimpleName() + " " + String.join(" ", args), pb.start(), log);
    }

    @Test
    void pretrainingGradientsAndFeaturesOnTheEmulatedDeviceTrackTheCpu() throws Exception {
        String config = tinyConfig().toString();
        Map<String, Child> runs = new LinkedHashMap<>();
        for (String precision : List.of("fp32", "bf16")) {
            for (String backend : List.of("cuda", "cpu")) {
                runs.put(backend + "-" + precision, cli("pretrain-" + backend + "-" + precision,
                        env(backend.equals("cuda"), "1"), "pretrain", "--config", config, "--steps", "" + STEPS,
                        "--batch", "" + BATCH, "--lr", "3e-3", "--warmup-steps", "3", "--seed", "1", "--precision",
                        precision, "--backend", backend, "--threads", "1", "--no-probe", "--no-report", "--out",
                        dir.resolve(backend + "-" + precision).toString()));
            }
        }
        for (var e : runs.entrySet()) {
            String out = e.getValue().await().output();
            String where = e.getKey().startsWith("cuda") ? EMULATED_DEVICE : "cpu:";
            assertTrue(out.startsWith("cae pretrain: " + where), e.getKey() + ":\n" + out);
            assertTrue(out.contains(e.getKey().substring(e.getKey().indexOf('-') + 1) + " matrix products"), out);
        }
        for (String precision : List.of("fp32", "bf16")) {
            List<JsonNode> cuda = metrics(dir.resolve("cuda-" + precision));
            List<JsonNode> cpu = metrics(dir.resolve("cpu-" + precision));
            assertEquals(STEPS, cuda.size());
            assertEquals(STEPS, cpu.size());
            double[] tol = TRAINING.get(precision);
            double worstLoss = 0;
            double worstNorm = 0;
            for (int i = 0; i < STEPS; i++) {
                for (String k : List.of("loss", "loss_main", "loss_align")) {
                    double err = relative(cuda.get(i).get(k).asDouble(), cpu.get(i).get(k).asDouble());
                    worstLoss = Math.max(worstLoss, err);
                    assertTrue(err <= (i == 0 ? FIRST_STEP : tol[0]), precision + " step " + (i + 1) + " " + k
                            + ": emulated CUDA " + cuda.get(i).get(k) + ", CPU " + cpu.get(i).get(k) + " (relative "
                            + err + ")");
                }
                double err = relative(cuda.get(i).get("grad_norm").asDouble(), cpu.get(i).get("grad_norm").asDouble());
                worstNorm = Math.max(worstNorm, err);
                assertTrue(err <= tol[1], precision + " step " + (i + 1) + " gradient norm: emulated CUDA "
                        + cuda.get(i).get("grad_norm") + ", CPU " + cpu.get(i).get("grad_norm") + " (relative " + err
                        + ")");
            }
            // Measured: the mean of the last 5 losses is 0.26-0.29 of the first.
            double first = cpu.get(0).get("loss").asDouble();
            double last = lastMean(cpu, 5);
            double lastCuda = lastMean(cuda, 5);
            assertTrue(last < 0.5 * first && lastCuda < 0.5 * first, precision + " loss falls: " + first + " -> CPU "
                    + last + ", emulated CUDA " + lastCuda + " (mean of the last 5 steps)");
            System.out.printf(Locale.ROOT, "%s pretraining, %d steps: loss %.6f -> %.6f (CPU), %.6f (emulated CUDA), "
                    + "last 5 steps; worst relative difference %.2e in the losses, %.2e in the gradient norm%n",
                    precision, STEPS, first, last, lastCuda, worstLoss, worstNorm);
        }

        // One batch through the trained encoder and the gradients, on the same checkpoint.
        Path checkpoint = dir.resolve("cpu-fp32/checkpoint.safetensors");
        Path batch = batchFile(8);
        List<Child> children = new ArrayList<>();
        for (String backend : List.of("cuda", "cpu")) {
            boolean emu = backend.equals("cuda");
            for (String precision : List.of("fp32", "bf16")) {
                children.add(cli("grad-" + backend + "-" + precision, env(emu, "1"), "grad", "--checkpoint",
                        checkpoint.toString(), "--batch", batch.toString(), "--precision", precision, "--backend",
                        backend, "--threads", "1", "--out", dir.resolve("grad-" + backend + "-" + precision
                                + ".safetensors").toString()));
            }
            children.add(main("encode-" + backend, env(emu, "1"), EncodeFeatures.class, checkpoint.toString(),
                    batch.toString(), dir.resolve("features-" + backend + ".safetensors").toString(), backend));
        }
        for (Child c : children) {
            c.await();
        }
        for (String precision : List.of("fp32", "bf16")) {
            compareGradients(precision, dir.resolve("grad-cuda-" + precision + ".safetensors"),
                    dir.resolve("grad-cpu-" + precision + ".safetensors"));
        }
        try (SafetensorsFile cuda = SafetensorsFile.open(dir.resolve("features-cuda.safetensors"));
                SafetensorsFile cpu = SafetensorsFile.open(dir.resolve("features-cpu.safetensors"))) {
            assertTrue(cuda.metadata().get("backend").startsWith(EMULATED_DEVICE), cuda.metadata().toString());
            assertTrue(cpu.metadata().get("backend").startsWith("cpu:"), cpu.metadata().toString());
            for (String k : List.of("cls", "mean")) {
                double err = vectorError(cuda.floats(k, 8, 32), cpu.floats(k, 8, 32), 0);
                System.out.printf(Locale.ROOT, "encoder features %s: relative difference %.2e%n", k, err);
                assertTrue(err <= FEATURES, k + " features: emulated CUDA against the CPU, relative " + err);
            }
        }
    }

    @Test
    void theSelfCheckPassesAndAutoTrainsOnTheEmulatedDevice() throws Exception {
        CliEndToEndTest.Run info = cli("info", emulated(), "info", "--check", "--json").await();
        JsonNode check = new ObjectMapper().readTree(info.output()).get("self_check");
        assertEquals(1, check.size(), info.output());
        JsonNode device = check.get(0);
        assertEquals(DEVICE, device.get("device").asText());
        assertTrue(device.get("passed").asBoolean(), info.output());
        assertEquals(12, device.get("figures").size(), info.output());
        for (JsonNode f : device.get("figures")) {
            assertTrue(f.get("relative").asDouble() <= f.get("tolerance").asDouble(), f.toString());
            assertTrue(f.get("cuda").asDouble() > 0, f.toString());
        }
        assertTrue(device.get("seconds").asDouble() < 30, device.toString());

        CliEndToEndTest.Run text = cli("info-text", emulated(), "info", "--check").await();
        assertTrue(text.output().contains("self-check of " + DEVICE + " against the CPU"), text.output());
        assertTrue(text.output().contains("fp32 loss after an AdamW step"), text.output());
        assertTrue(text.output().contains("auto computes on this device"), text.output());

        Child auto = cli("auto", emulated(), "pretrain", "--config", tinyConfig().toString(), "--steps", "3", "--batch",
                "4", "--no-probe", "--no-report", "--out", dir.resolve("auto").toString());
        Child library = main("library", emulated(), TrainOnDefaultContext.class);
        String out = auto.await().output();
        assertTrue(out.startsWith("cae pretrain: " + EMULATED_DEVICE), out);
        assertFalse(out.contains("warning"), out);
        String lib = library.await().output();
        assertTrue(lib.contains("model: " + EMULATED_DEVICE), lib);
    }

    @Test
    void aDeviceThatDisagreesSendsAutoToTheCpuAndMakesCudaFail() throws Exception {
        // A device with a broken kernel: the emulator skips the fp32 GELU backward, so the losses
        // stay right and the fp32 gradients go wrong (the tolerances are the real ones).
        Map<String, String> strict = env(true, "1");
        strict.put("CAE_EMU_BREAK_KERNEL", "gelu_backward_kernel");
        Path infoLog = dir.resolve("info.log");
        Process p = CliEndToEndTest.start(infoLog, strict, "info", "--check", "--json");
        assertTrue(p.waitFor(2, TimeUnit.MINUTES));
        JsonNode device = new ObjectMapper().readTree(Files.readString(infoLog)).get("self_check").get(0);
        List<String> differing = new ArrayList<>();
        for (JsonNode f : device.get("figures")) {
            if (!(f.get("relative").asDouble() <= f.get("tolerance").asDouble())) {
                differing.add(f.get("name").asText());
            }
        }
        assertFalse(differing.isEmpty(), "a figure catches the broken kernel: " + device);
        assertTrue(differing.get(0).startsWith("fp32 gradient"), differing.toString());
        assertEquals(1, p.exitValue(), "info --check exits with 1 when a device disagrees");
        assertFalse(device.get("passed").asBoolean());

        String config = tinyConfig().toString();
        Child auto = cli("auto", strict, "pretrain", "--config", config, "--steps", "3", "--batch", "4", "--no-probe",
                "--no-report", "--out", dir.resolve("auto").toString());
        Child library = main("library", strict, TrainOnDefaultContext.class);
        Path cudaLog = dir.resolve("cuda.log");
        Process cuda = CliEndToEndTest.start(cudaLog, strict, "pretrain", "--config", config, "--steps", "3", "--batch",
                "4", "--no-probe", "--no-report", "--backend", "cuda", "--out", dir.resolve("cuda").toString());

        String out = auto.await().output();
        assertTrue(out.startsWith("cae pretrain: warning: " + DEVICE + " disagrees with the CPU on a tiny model: "
                + differing.get(0) + " "), out);
        assertTrue(out.contains("computing on the CPU instead"), out);
        assertTrue(out.contains("\ncae pretrain: cpu: "), out);
        assertTrue(out.contains("trained to step 3"), out);

        String lib = library.await().output();
        assertTrue(lib.contains("context: " + EMULATED_DEVICE), lib);
        assertTrue(lib.contains("model: cpu: "), lib);
        assertTrue(lib.contains("disagrees with the CPU"), lib);

        assertTrue(cuda.waitFor(2, TimeUnit.MINUTES));
        String failed = Files.readString(cudaLog);
        assertEquals(1, cuda.exitValue(), failed);
        assertTrue(failed.startsWith("cae pretrain: " + DEVICE + " disagrees with the CPU on a tiny model: "
                + differing.get(0) + " "), failed);
        assertTrue(failed.contains("on the CPU (relative ") && failed.contains("> 1e-03"), failed);
        assertFalse(Files.exists(dir.resolve("cuda/checkpoint.safetensors")), "no step ran on the device");
    }

    // ---------------------------------------------------------------- helpers

    static List<JsonNode> metrics(Path run) throws Exception {
        ObjectMapper json = new ObjectMapper();
        List<JsonNode> records = new ArrayList<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            records.add(json.readTree(line));
        }
        return records;
    }

    static double lastMean(List<JsonNode> records, int n) {
        double sum = 0;
        for (int i = records.size() - n; i < records.size(); i++) {
            sum += records.get(i).get("loss").asDouble();
        }
        return sum / n;
    }

    /** {@code n} Fashion-MNIST test images (normalized, not augmented) and block masks of 8 of 16 patches. */
    Path batchFile(int n) throws Exception {
        float[] images = new float[n * 28 * 28];
        byte[] mask = new byte[n * 16];
        try (var source = Datasets.fashionMnist("test"); Arena arena = Arena.ofConfined()) {
            ImageDataset data = ImageDataset.builder(source).size(28).build();
            MemorySegment one = arena.allocate(ValueLayout.JAVA_FLOAT, 28 * 28);
            BlockMaskGenerator masks = new BlockMaskGenerator(4, 8);
            for (int i = 0; i < n; i++) {
                data.loadPlain(i, one);
                MemorySegment.copy(one, ValueLayout.JAVA_FLOAT, 0, images, i * 28 * 28, 28 * 28);
                masks.generate(11, 0, i, MemorySegment.ofArray(mask).asSlice(i * 16L, 16));
            }
        }
        Path f = dir.resolve("batch.safetensors");
        new SafetensorsWriter().addFloats("images", new long[] {n, 1, 28, 28}, images)
                .add("mask", "U8", new long[] {n, 16}, dst -> dst.copyFrom(MemorySegment.ofArray(mask))).write(f);
        return f;
    }

    static void compareGradients(String precision, Path cudaFile, Path cpuFile) throws Exception {
        double[] tol = GRADIENTS.get(precision);
        try (SafetensorsFile cuda = SafetensorsFile.open(cudaFile);
                SafetensorsFile cpu = SafetensorsFile.open(cpuFile)) {
            assertEquals(precision, cuda.metadata().get("precision"));
            assertTrue(cuda.metadata().get("backend").startsWith(EMULATED_DEVICE), cuda.metadata().toString());
            assertTrue(cpu.metadata().get("backend").startsWith("cpu:"), cpu.metadata().toString());
            double worstLoss = 0;
            for (String k : List.of("loss", "loss_main", "loss_align")) {
                double err = relative(cuda.floats(k)[0], cpu.floats(k)[0]);
                worstLoss = Math.max(worstLoss, err);
                assertTrue(err <= tol[0], precision + " " + k + ": emulated CUDA " + cuda.floats(k)[0] + ", CPU "
                        + cpu.floats(k)[0]);
            }
            double total = 0;
            for (SafetensorsFile.Entry e : cpu.entries()) {
                if (e.shape().length > 0) {
                    for (float v : cpu.floats(e.name())) {
                        total += (double) v * v;
                    }
                }
            }
            double floor = 1e-3 * Math.sqrt(total);
            double worst = 0;
            String worstName = "";
            int gradients = 0;
            for (SafetensorsFile.Entry e : cpu.entries()) {
                if (e.shape().length == 0) {
                    continue;
                }
                gradients++;
                double err = vectorError(cuda.floats(e.name(), e.shape()), cpu.floats(e.name()), floor);
                if (err > worst) {
                    worst = err;
                    worstName = e.name();
                }
                assertTrue(err <= tol[1], precision + " gradient of " + e.name() + ": emulated CUDA against the CPU, "
                        + "relative " + err);
            }
            assertTrue(gradients > 30, gradients + " gradients");
            System.out.printf(Locale.ROOT, "%s gradients of a batch: losses within %.2e, %d gradients within %.2e "
                    + "(worst %s)%n", precision, worstLoss, gradients, worst, worstName);
        }
    }

    static double relative(double cuda, double cpu) {
        return cuda == cpu ? 0 : Math.abs(cuda - cpu) / Math.abs(cpu);
    }

    /** |cuda - cpu| / max(|cpu|, floor) of two vectors. */
    static double vectorError(float[] cuda, float[] cpu, double floor) {
        double diff = 0;
        double ref = 0;
        for (int i = 0; i < cpu.length; i++) {
            double d = (double) cuda[i] - cpu[i];
            diff += d * d;
            ref += (double) cpu[i] * cpu[i];
        }
        return diff == 0 ? 0 : Math.sqrt(diff) / Math.max(Math.sqrt(ref), floor);
    }
}
