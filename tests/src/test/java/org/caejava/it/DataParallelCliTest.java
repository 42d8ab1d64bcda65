package org.caejava.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.io.SafetensorsFile;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mpirun -np 2 cae pretrain} as a user runs it (Open MPI, shared memory, one CPU thread per
 * rank): two ranks of 32 images follow one process of 64 on the same data; a stop asked of one rank
 * stops both with a checkpoint that one process resumes to the same end as a run never stopped; a
 * killed rank ends the job; a rank started with another run is refused at the start.
 */
class DataParallelCliTest {

    static final Path MPIRUN = Path.of("/usr/bin/mpirun");

    @TempDir
    Path dir;

    @BeforeAll
    static void needsMpirun() {
        // ./cae test installs Open MPI (scripts/setup.sh); elsewhere these tests say why they did not run.
        Assumptions.assumeTrue(Files.isExecutable(MPIRUN), "no " + MPIRUN + ": install openmpi-bin");
    }

    static Process mpirun(Path log, String... cliArgs) throws IOException {
        return mpirun(log, Map.of(), cliArgs);
    }

    static Process mpirun(Path log, Map<String, String> env, String... cliArgs) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(MPIRUN.toString(), "-np", "2", "--oversubscribe", "--bind-to",
                "none"));
        cmd.addAll(javaCommand(cliArgs));
        return start(cmd, log, env);
    }

    /** Open MPI's MPMD form: rank 0 and rank 1 run different command lines. */
    static Process mpirunEach(Path log, List<String> rank0, List<String> rank1) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(MPIRUN.toString(), "--oversubscribe", "--bind-to", "none", "-np",
                "1"));
        cmd.addAll(javaCommand(rank0.toArray(String[]::new)));
        cmd.addAll(List.of(":", "-np", "1"));
        cmd.addAll(javaCommand(rank1.toArray(String[]::new)));
        return start(cmd, log);
    }

    static List<String> javaCommand(String... cliArgs) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-jar", CliEndToEndTest.JAR.toString()));
        cmd.addAll(List.of(cliArgs));
        return cmd;
    }

    /** Jobs started by the running test: whatever a failed assertion left running is killed after it. */
    static final List<Process> JOBS = new ArrayList<>();

    @org.junit.jupiter.api.AfterEach
    void killWhatIsLeft() {
        for (Process p : JOBS) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
        JOBS.clear();
    }

    static Process start(List<String> cmd, Path log) throws IOException {
        return start(cmd, log, Map.of());
    }

    static Process start(List<String> cmd, Path log, Map<String, String> env) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("XDG_CACHE_HOME", log.getParent().resolve("cache").toString());
        pb.environment().putAll(env);
        // Containers run as root; shared memory between the ranks of this machine only.
        pb.environment().put("OMPI_ALLOW_RUN_AS_ROOT", "1");
        pb.environment().put("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        pb.environment().put("OMPI_MCA_btl", "self,vader");
        Process p = pb.start();
        JOBS.add(p);
        return p;
    }

    static CliEndToEndTest.Run finish(Process p, Path log) throws Exception {
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "did not finish: " + Files.readString(log));
        return new CliEndToEndTest.Run(p.exitValue(), Files.readString(log));
    }

    Path tinyConfig() throws IOException {
        CaeConfig c = CaeConfig.preset("fmnist-tiny").toBuilder().patchSize(7).embedDim(32).depth(2).numHeads(2)
                .regressorDepth(1).decoderDepth(1).decoderNumHeads(2).build();
        Path f = dir.resolve("tiny.json");
        Files.writeString(f, c.toJson());
        return f;
    }

    String[] pretrain(Path out, String steps, String... more) throws IOException {
        List<String> a = new ArrayList<>(List.of("pretrain", "--config", tinyConfig().toString(), "--steps", steps,
                "--batch", "64", "--no-probe", "--no-report", "--threads", "1", "--out", out.toString()));
        a.addAll(List.of(more));
        return a.toArray(String[]::new);
    }

    /**
     * The worst relative difference over the tensors of two checkpoints (weights and AdamW moments),
     * leaving out the regressor's key LayerNorm bias: its exact gradient is 0, so its float gradient
     * is rounding noise that AdamW turns into steps of +-lr, whatever adds the gradients.
     */
    static double worstDifference(Path a, Path b, StringBuilder where) throws IOException {
        double worst = 0;
        try (SafetensorsFile fa = SafetensorsFile.open(a); SafetensorsFile fb = SafetensorsFile.open(b)) {
            for (SafetensorsFile.Entry e : fa.entries()) {
                if (!e.dtype().equals("F32") || e.name().contains("norm1_k.bias")) {
                    continue;
                }
                float[] x = fa.floats(e.name(), e.shape());
                float[] y = fb.floats(e.name(), e.shape());
                double num = 0;
                double den = 0;
                for (int i = 0; i < x.length; i++) {
                    num += (double) (x[i] - y[i]) * (x[i] - y[i]);
                    den += (double) y[i] * y[i];
                }
                double rel = Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
                if (rel >= worst) {
                    worst = rel;
                    where.setLength(0);
                    where.append(e.name());
                }
            }
        }
        return worst;
    }

    /** Each step's loss and the final weights and moments of {@code two} within fp32 tolerance of {@code one}'s. */
    static void assertSameRun(Path one, Path two, int steps, String what) throws IOException {
        List<JsonNode> a = steps(one);
        List<JsonNode> b = steps(two);
        assertEquals(steps, b.size());
        for (int i = 0; i < steps; i++) {
            double la = a.get(i).get("loss").asDouble();
            double lb = b.get(i).get("loss").asDouble();
            assertTrue(Math.abs(la - lb) <= 1e-5 * Math.abs(la), "step " + (i + 1) + ": loss " + la + " vs " + lb);
        }
        StringBuilder where = new StringBuilder();
        double worst = worstDifference(two.resolve("checkpoint.safetensors"), one.resolve("checkpoint.safetensors"),
                where);
        System.out.printf("%s, %d steps: worst tensor %s, relative difference %.2e%n", what, steps, where, worst);
        assertTrue(worst <= 1e-5, "weights and moments after " + steps + " steps differ by " + worst + " in " + where);
    }

    static List<JsonNode> steps(Path run) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<JsonNode> out = new ArrayList<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode o = json.readTree(line);
            if (o.has("loss")) {
                out.add(o);
            }
        }
        return out;
    }

    @Test
    void twoRanksOfHalfTheBatchFollowOneProcess() throws Exception {
        Path one = dir.resolve("one");
        Path two = dir.resolve("two");
        CliEndToEndTest.Run single = CliEndToEndTest.run(dir.resolve("one.log"), pretrain(one, "20"));
        assertEquals(0, single.exit(), single.output());
        Path log = dir.resolve("two.log");
        CliEndToEndTest.Run pair = finish(mpirun(log, pretrain(two, "20")), log);
        assertEquals(0, pair.exit(), pair.output());
        assertTrue(pair.output().contains("data parallel: 2 processes (Open MPI"), pair.output());
        assertTrue(pair.output().contains("32 images each per step"), pair.output());
        assertTrue(pair.output().contains("gradients of 2 ranks summed by MPI on host memory (Open MPI"),
                pair.output());
        assertEquals(1, pair.output().split("trained to step 20", -1).length - 1, "rank 0 alone prints: " + pair.output());

        assertSameRun(one, two, 20, "2 x 32 against 1 x 64");
        assertEquals(2, new ObjectMapper().readTree(two.resolve("run.json").toFile()).get("ranks").asInt());
    }

    @Test
    void rankZeroProbesTheFinalCheckpointAsOneProcessWould() throws Exception {
        Path two = dir.resolve("two");
        Path log = dir.resolve("two.log");
        List<String> args = new ArrayList<>(List.of(pretrain(two, "20")));
        args.remove("--no-probe");
        // Default threads: each rank trains on half the cores; the probe must run as one process would.
        args.remove(args.indexOf("--threads") + 1);
        args.remove("--threads");
        args.addAll(List.of("--probe-every-epoch", "0", "--probe-train", "2000", "--probe-test", "500"));
        CliEndToEndTest.Run pair = finish(mpirun(log, args.toArray(String[]::new)), log);
        assertEquals(0, pair.exit(), pair.output());
        assertEquals(1, pair.output().split("probing the encoder", -1).length - 1, "rank 0 alone probes: "
                + pair.output());
        Path again = dir.resolve("again.json");
        CliEndToEndTest.Run probe = CliEndToEndTest.run(dir.resolve("probe.log"), "probe", "--checkpoint",
                two.resolve("checkpoint.safetensors").toString(), "--probe-train", "2000", "--probe-test", "500",
                "--out", again.toString());
        assertEquals(0, probe.exit(), probe.output());
        ObjectMapper json = new ObjectMapper();
        JsonNode during = json.readTree(two.resolve("probe.json").toFile()).get("pretrained");
        JsonNode after = json.readTree(again.toFile()).get("pretrained");
        assertEquals(after, during, "the run's probe against a probe of its final checkpoint");
    }

    @Test
    void onTheEmulatedCudaBackendNcclSumsTheGradientsAndTwoRanksFollowOneProcess() throws Exception {
        Path nccl = CliEndToEndTest.ROOT.resolve("build/native/native/tests/libfake_nccl.so");
        Assumptions.assumeTrue(Files.isRegularFile(EmulatedCudaTest.EMULATOR) && Files.isRegularFile(nccl),
                "the CUDA emulator and the fake NCCL are built only where the CUDA headers are");
        Map<String, String> env = Map.of("CAE_LIBRARY_PATH", EmulatedCudaTest.EMULATOR.toString(),
                "CAE_NCCL_LIBRARY", nccl.toString(), "CAE_EMU_THREADS", "1");
        Path one = dir.resolve("one");
        Path two = dir.resolve("two");
        String[] more = {"--backend", "cuda", "--precision", "fp32"};
        CliEndToEndTest.Run single = CliEndToEndTest.run(dir.resolve("one.log"), env, pretrain(one, "6", more));
        assertEquals(0, single.exit(), single.output());
        assertTrue(single.output().contains(EmulatedCudaTest.EMULATED_DEVICE), single.output());
        Path log = dir.resolve("two.log");
        CliEndToEndTest.Run pair = finish(mpirun(log, env, pretrain(two, "6", more)), log);
        assertEquals(0, pair.exit(), pair.output());
        assertTrue(pair.output().contains("gradients of 2 ranks summed by NCCL 2.18.5 on device memory"),
                pair.output());
        assertSameRun(one, two, 6, "emulated CUDA, NCCL: 2 x 32 against 1 x 64");
    }

    @Test
    void aStopOnOneRankStopsBothAndOneProcessResumesToTheSameEnd() throws Exception {
        Path whole = dir.resolve("whole");
        CliEndToEndTest.Run ref = CliEndToEndTest.run(dir.resolve("whole.log"), pretrain(whole, "150"));
        assertEquals(0, ref.exit(), ref.output());

        Path out = dir.resolve("stopped");
        Path log = dir.resolve("stopped.log");
        Process job = mpirun(log, pretrain(out, "150", "--checkpoint-every", "5"));
        Path checkpoint = out.resolve("checkpoint.safetensors");
        ProcessHandle rank1 = rankOnceTraining(job, checkpoint, log, 1);
        rank1.destroy();  // SIGTERM to rank 1 only: both ranks must stop at the same step
        assertTrue(job.waitFor(2, TimeUnit.MINUTES), "the job did not stop: " + Files.readString(log));
        String first = Files.readString(log);
        assertNotEquals(0, job.exitValue(), first);
        assertTrue(first.contains("stopped at step"), first);
        long stoppedAt;
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
                CaeModel m = CaeModel.load(ctx, checkpoint)) {
            stoppedAt = m.state().step();
        }
        assertTrue(stoppedAt >= 5 && stoppedAt < 150, "checkpoint at step " + stoppedAt);

        CliEndToEndTest.Run resumed = CliEndToEndTest.run(dir.resolve("resumed.log"), "pretrain", "--resume",
                "--out", out.toString(), "--threads", "1", "--no-probe", "--no-report");
        assertEquals(0, resumed.exit(), resumed.output());
        assertTrue(resumed.output().contains("resuming from step " + stoppedAt), resumed.output());
        StringBuilder where = new StringBuilder();
        double worst = worstDifference(checkpoint, whole.resolve("checkpoint.safetensors"), where);
        System.out.printf("2 ranks to step %d, then 1 process to 150, against 1 process: worst tensor %s, %.2e%n",
                stoppedAt, where, worst);
        assertTrue(worst <= 1e-4, "2 ranks to step " + stoppedAt + ", then 1 process to 150, against 1 process "
                + "throughout: " + worst + " in " + where);
    }

    @Test
    void aKilledRankEndsTheJobAndTheCheckpointStaysWhole() throws Exception {
        Path out = dir.resolve("killed");
        Path log = dir.resolve("killed.log");
        Process job = mpirun(log, pretrain(out, "100000", "--checkpoint-every", "5"));
        Path checkpoint = out.resolve("checkpoint.safetensors");
        rankOnceTraining(job, checkpoint, log, 1).destroyForcibly();  // SIGKILL
        long killed = System.nanoTime();
        assertTrue(job.waitFor(60, TimeUnit.SECONDS), "the job went on after a rank died: " + Files.readString(log));
        System.out.printf("the job ended %.1f s after rank 1 was killed%n", (System.nanoTime() - killed) / 1e9);
        String output = Files.readString(log);
        assertNotEquals(0, job.exitValue(), output);
        assertTrue(output.contains("rank 1") || output.contains("signal 9"), output);
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
                CaeModel m = CaeModel.load(ctx, checkpoint)) {
            assertTrue(m.state().step() >= 5, "checkpoint at step " + m.state().step());
        }
    }

    @Test
    void aHungRankEndsTheJobAfterTheRankTimeout() throws Exception {
        Path out = dir.resolve("hung");
        Path log = dir.resolve("hung.log");
        Process job = mpirun(log, pretrain(out, "100000", "--checkpoint-every", "5", "--rank-timeout", "10"));
        Path checkpoint = out.resolve("checkpoint.safetensors");
        ProcessHandle rank1 = rankOnceTraining(job, checkpoint, log, 1);
        new ProcessBuilder("kill", "-STOP", Long.toString(rank1.pid())).start().waitFor();  // hangs, alive
        long hung = System.nanoTime();
        assertTrue(job.waitFor(90, TimeUnit.SECONDS), "the job waited for the hung rank: " + Files.readString(log));
        double seconds = (System.nanoTime() - hung) / 1e9;
        System.out.printf("the job ended %.1f s after rank 1 hung (rank timeout 10 s)%n", seconds);
        String output = Files.readString(log);
        assertNotEquals(0, job.exitValue(), output);
        assertTrue(output.contains("rank 0 of 2 made no progress for 10 s after step"), output);
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
                CaeModel m = CaeModel.load(ctx, checkpoint)) {
            assertTrue(m.state().step() >= 5, "checkpoint at step " + m.state().step());
        }
    }

    @Test
    void aRankStartedWithAnotherRunIsRefusedAtTheStart() throws Exception {
        Path out = dir.resolve("mismatch");
        Path log = dir.resolve("mismatch.log");
        Process job = mpirunEach(log, List.of(pretrain(out, "20", "--seed", "1")),
                List.of(pretrain(out, "20", "--seed", "2")));
        CliEndToEndTest.Run r = finish(job, log);
        assertNotEquals(0, r.exit(), r.output());
        assertTrue(r.output().contains("rank 1 was started with a different run than rank 0: "), r.output());
        assertTrue(r.output().contains("seed 2 here, 1 on rank 0"), r.output());
        assertTrue(!Files.exists(out.resolve("checkpoint.safetensors")), "nothing trained");
    }

    /** Rank {@code rank}'s JVM, once the job has written its first checkpoint (and is still running). */
    static ProcessHandle rankOnceTraining(Process job, Path checkpoint, Path log, int rank) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (!Files.exists(checkpoint) && job.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertTrue(job.isAlive(), "the job ended before its first checkpoint: " + Files.readString(log));
        return rank(job, rank).orElseThrow(() -> new AssertionError("no rank " + rank + " under " + job.pid()));
    }

    /** The JVM of rank {@code rank} under an mpirun process (from its OMPI_COMM_WORLD_RANK). */
    static Optional<ProcessHandle> rank(Process mpirun, int rank) {
        return mpirun.descendants().filter(h -> h.info().command().orElse("").endsWith("/java")).filter(h -> {
            try {
                String env = Files.readString(Path.of("/proc", Long.toString(h.pid()), "environ"));
                return List.of(env.split("\0")).contains("OMPI_COMM_WORLD_RANK=" + rank);
            } catch (IOException e) {
                return false;
            }
        }).findFirst();
    }
}
