package org.caejava.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.caejava.CaeModel;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kill -9 at random moments while a process writes checkpoints: the file on disk is always a
 * whole checkpoint, never a mix of two and never truncated; a training run killed the same way
 * resumes to the end.
 */
class CrashSafetyTest {

    static final int KILLS = 15;

    @TempDir
    Path dir;

    @Test
    void aKilledWriterLeavesTheLastWholeCheckpoint() throws Exception {
        Path file = dir.resolve("ckpt.safetensors");
        Path log = dir.resolve("writer.log");
        SplittableRandom rng = new SplittableRandom(7);
        int loaded = 0;
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build()) {
            for (int k = 0; k < KILLS; k++) {
                ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                        CheckpointWriterLoop.class.getName(), file.toString())
                        .redirectErrorStream(true).redirectOutput(log.toFile());
                Process p = pb.start();
                // Wait for its first checkpoint (however long a loaded machine takes to start a JVM),
                // then let it write more (the file is 20-30 MB) and kill it anywhere.
                long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
                while (p.isAlive() && System.nanoTime() < deadline
                        && Files.readAllLines(log).stream().noneMatch(l -> l.startsWith("saved "))) {
                    Thread.sleep(20);
                }
                assertTrue(p.isAlive(), "the writer ended: " + Files.readString(log));
                long waitMs = rng.nextLong(1500);
                Thread.sleep(waitMs);
                p.destroyForcibly();  // SIGKILL: no shutdown hooks, no flushing
                assertTrue(p.waitFor(30, TimeUnit.SECONDS));
                List<String> lines = Files.readAllLines(log);
                long lastSaved = lines.stream().filter(l -> l.matches("saved [0-9]+")).mapToLong(l -> Long.parseLong(l.substring(6)))
                        .max().orElse(0);
                assertTrue(lastSaved > 0 && Files.exists(file), "kill " + k + " came after a first checkpoint");
                try (CaeModel m = CaeModel.load(ctx, file)) {
                    float[] token = m.parameter("mask_token");
                    float first = token[0];
                    for (float v : token) {
                        assertEquals(first, v, "one checkpoint's values throughout (kill " + k + ")");
                    }
                    assertTrue(first >= lastSaved, "the file holds checkpoint " + first + ", older than the last one "
                            + lastSaved + " whose save returned (kill " + k + " after " + waitMs + " ms)");
                    loaded++;
                }
            }
        }
        assertEquals(KILLS, loaded);
        try (Stream<Path> s = Files.list(dir)) {
            long temps = s.filter(p -> p.getFileName().toString().endsWith(".tmp")).count();
            assertTrue(temps <= 1, temps + " temporary files left: each write removes those of killed writers");
        }
    }

    @Test
    void aTrainingRunKilledWithSigkillResumes() throws Exception {
        Path out = dir.resolve("run");
        CaeModelConfigFile config = CaeModelConfigFile.tiny(dir);
        String[] args = {"pretrain", "--config", config.path().toString(), "--steps", "300", "--batch", "16",
            "--checkpoint-every", "4", "--out", out.toString(), "--no-probe", "--threads", "2"};
        Path log = dir.resolve("first.log");
        Process p = CliEndToEndTest.start(log, args);
        Path ckpt = out.resolve("checkpoint.safetensors");
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (!(Files.exists(ckpt) && Files.readString(log).contains("step 2")) && p.isAlive()
                && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        Thread.sleep(700);
        assertTrue(p.isAlive(), Files.readString(log));
        p.destroyForcibly();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        CliEndToEndTest.Run r = CliEndToEndTest.run(dir.resolve("second.log"), "pretrain", "--resume", "--out",
                out.toString(), "--threads", "2");
        assertEquals(0, r.exit(), r.output());
        assertTrue(r.output().contains("resuming from step"), r.output());
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
                CaeModel m = CaeModel.load(ctx, ckpt)) {
            assertEquals(300, m.state().step());
        }
    }

    /** A tiny model configuration file for CLI runs. */
    record CaeModelConfigFile(Path path) {
        static CaeModelConfigFile tiny(Path dir) throws java.io.IOException {
            var c = org.caejava.CaeConfig.preset("fmnist-tiny").toBuilder().patchSize(7).embedDim(32).depth(2).numHeads(2)
                    .regressorDepth(1).decoderDepth(1).decoderNumHeads(2).build();
            Path f = dir.resolve("tiny.json");
            Files.writeString(f, c.toJson());
            return new CaeModelConfigFile(f);
        }
    }
}
