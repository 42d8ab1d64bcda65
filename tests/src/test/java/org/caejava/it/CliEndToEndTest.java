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
import java.util.concurrent.TimeUnit;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line as a user runs it: the shaded CLI jar in its own JVM. An interrupted
 * pretraining resumes to the end with nothing lost; a folder of real photos trains with the
 * official ViT-B preset at 224 and, prepared into shards, at a small size.
 */
class CliEndToEndTest {

    static final Path ROOT = Path.of(System.getProperty("cae.root", "..")).toAbsolutePath().normalize();
    static final Path JAR = ROOT.resolve("cae-java/target/cae-cli.jar");
    static final Path PHOTOS = ROOT.resolve("cae-java/src/test/resources/org/caejava/data/images/photos");

    @TempDir
    Path dir;

    record Run(int exit, String output) {}

    static Process start(Path log, String... args) throws IOException {
        return start(log, Map.of(), args);
    }

    /** Starts the CLI with {@code env} added to its environment (CAE_LIBRARY_PATH, for instance). */
    static Process start(Path log, Map<String, String> env, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-jar", JAR.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("XDG_CACHE_HOME", log.getParent().resolve("cache").toString());
        pb.environment().putAll(env);
        return pb.start();
    }

    static Run run(Path log, String... args) throws Exception {
        return run(log, Map.of(), args);
    }

    static Run run(Path log, Map<String, String> env, String... args) throws Exception {
        Process p = start(log, env, args);
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "cae " + String.join(" ", args) + " did not finish");
        return new Run(p.exitValue(), Files.readString(log));
    }

    Path tinyConfig(int img, int patch, int chans) throws IOException {
        CaeConfig c = CaeConfig.preset("fmnist-tiny").toBuilder().imgSize(img).patchSize(patch).inChans(chans)
                .embedDim(32).depth(2).numHeads(2).regressorDepth(1).decoderDepth(1).decoderNumHeads(2).build();
        Path f = dir.resolve("tiny-" + img + "-" + chans + ".json");
        Files.writeString(f, c.toJson());
        return f;
    }

    @Test
    void anInterruptedRunResumesToTheEndWithNothingLost() throws Exception {
        Path out = dir.resolve("run");
        Path config = tinyConfig(28, 7, 1);
        String[] args = {"pretrain", "--config", config.toString(), "--steps", "400", "--batch", "16",
            "--checkpoint-every", "5", "--out", out.toString(), "--no-probe", "--threads", "2"};
        Path log1 = dir.resolve("first.log");
        Process p = start(log1, args);
        Path checkpoint = out.resolve("checkpoint.safetensors");
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (!(Files.exists(checkpoint) && Files.readString(log1).contains("step 3")) && p.isAlive()
                && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertTrue(p.isAlive(), "the run ended before it could be stopped: " + Files.readString(log1));
        p.destroy();  // SIGTERM, as a kill or a Ctrl-C would: the shutdown hook stops at a step boundary
        assertTrue(p.waitFor(2, TimeUnit.MINUTES));
        String first = Files.readString(log1);
        assertNotEquals(0, p.exitValue(), first);
        assertTrue(first.contains("stopped at step"), first);
        long stoppedAt;
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
                CaeModel m = CaeModel.load(ctx, checkpoint)) {
            stoppedAt = m.state().step();
        }
        assertTrue(stoppedAt >= 3 && stoppedAt < 400, "checkpoint at step " + stoppedAt);

        Run second = run(dir.resolve("second.log"), "pretrain", "--resume", "--out", out.toString(), "--threads", "2");
        assertEquals(0, second.exit(), second.output());
        assertTrue(second.output().contains("resuming from step " + stoppedAt), second.output());
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
                CaeModel m = CaeModel.load(ctx, checkpoint)) {
            assertEquals(400, m.state().step());
        }
        // One metrics record per step, 1..400 in order, across both processes; the resumed run (without
        // --no-probe) adds a k-NN line, without a "loss", at its last step.
        List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
        ObjectMapper json = new ObjectMapper();
        List<JsonNode> steps = new ArrayList<>();
        List<JsonNode> knn = new ArrayList<>();
        for (String line : lines) {
            JsonNode o = json.readTree(line);
            (o.has("loss") ? steps : knn).add(o);
        }
        assertEquals(400, steps.size());
        for (int i = 0; i < steps.size(); i++) {
            assertEquals(i + 1, steps.get(i).get("step").asLong(), "record " + (i + 1));
        }
        assertEquals(1, knn.size(), knn.toString());
        assertEquals(400, knn.get(0).get("step").asLong());
        assertTrue(second.output().contains("k-NN at step 400"), second.output());
        for (String f : List.of("report.html", "loss.png", "reconstruction.png", "config.json", "run.json")) {
            assertTrue(Files.size(out.resolve(f)) > 0, f);
        }
    }

    @Test
    void seedsTrainOneRunPerSeedAndSummarizeTheProbe() throws Exception {
        Path out = dir.resolve("seeds");
        Run r = run(dir.resolve("seeds.log"), "pretrain", "--config", tinyConfig(28, 7, 1).toString(), "--steps", "3",
                "--batch", "16", "--seed", "4", "--seeds", "2", "--probe-train", "200", "--probe-test", "100",
                "--probe-every-epoch", "0", "--no-report", "--out", out.toString(), "--threads", "2");
        assertEquals(0, r.exit(), r.output());
        ObjectMapper json = new ObjectMapper();
        for (int seed : new int[] {4, 5}) {
            Path run = out.resolve("seed-" + seed);
            assertEquals(seed, json.readTree(run.resolve("run.json").toFile()).get("seed").asInt());
            JsonNode probe = json.readTree(run.resolve("probe.json").toFile());
            assertEquals(seed, probe.get("random_init").get("seed").asInt());
            assertEquals("cls_mean", probe.get("features").asText());
        }
        JsonNode spread = json.readTree(out.resolve("probe-seeds.json").toFile());
        assertEquals(2, spread.get("runs").asInt());
        JsonNode lin = spread.get("pretrained").get("linear");
        double a = lin.get("values").get(0).asDouble();
        double b = lin.get("values").get(1).asDouble();
        assertEquals((a + b) / 2, lin.get("mean").asDouble(), 1e-12);
        assertEquals(Math.min(a, b), lin.get("min").asDouble(), 0);
        assertTrue(r.output().contains("Probe over 2 seeds"), r.output());
        assertTrue(r.output().contains("== seed 5 (2 of 2) =="), r.output());

        Run refused = run(dir.resolve("seeds-resume.log"), "pretrain", "--seeds", "2", "--resume", "--out",
                out.resolve("seed-4").toString());
        assertEquals(2, refused.exit(), refused.output());
        assertTrue(refused.output().contains("--seeds cannot be combined with --resume"), refused.output());
    }

    @Test
    void photosTrainWithViTBaseAt224AndFromShardsAtASmallSize() throws Exception {
        Path base = dir.resolve("base");
        Run vitb = run(dir.resolve("vitb.log"), "pretrain", "--data", PHOTOS.toString(), "--preset", "base",
                "--steps", "2", "--batch", "2", "--out", base.toString(), "--no-probe", "--threads", "2");
        assertEquals(0, vitb.exit(), vitb.output());
        assertTrue(vitb.output().contains("224x224x3 images, patch 16 (196 patches), width 768, depth 12"),
                vitb.output());
        assertTrue(vitb.output().contains("trained to step 2"), vitb.output());

        Path shards = dir.resolve("shards");
        Run prep = run(dir.resolve("prepare.log"), "prepare", "--images", PHOTOS.toString(), "--out",
                shards.toString(), "--size", "32");
        assertEquals(0, prep.exit(), prep.output());
        Path small = dir.resolve("small");
        Run run = run(dir.resolve("small.log"), "pretrain", "--data", shards.toString(), "--config",
                tinyConfig(32, 8, 3).toString(), "--steps", "20", "--batch", "2", "--out", small.toString(),
                "--no-probe", "--threads", "2");
        assertEquals(0, run.exit(), run.output());
        JsonNode runJson = new ObjectMapper().readTree(small.resolve("run.json").toFile());
        assertEquals(shards.toString(), runJson.get("data").asText());
        assertTrue(Files.size(small.resolve("reconstruction.png")) > 0);
    }

    @Test
    void badUsageExitsWith2AndOneClearLine() throws Exception {
        Run r = run(dir.resolve("bad.log"), "pretrain", "--batch", "-3x");
        assertEquals(2, r.exit(), r.output());
        assertTrue(r.output().contains("--batch"), r.output());
        Run missing = run(dir.resolve("missing.log"), "pretrain", "--data", dir.resolve("nope").toString(),
                "--out", dir.resolve("o").toString());
        assertEquals(1, missing.exit(), missing.output());
        assertTrue(missing.output().contains(dir.resolve("nope").toString()), missing.output());
    }
}
