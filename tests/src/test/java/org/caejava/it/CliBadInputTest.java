package org.caejava.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.io.SafetensorsWriter;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Misuse of the C ABI driven through the command line: batches whose images or mask do not fit
 * the model, and checkpoints that are inconsistent. Each gives exit code 1 and one line naming
 * what is wrong; the JVM never crashes and no hs_err file appears.
 */
class CliBadInputTest {

    static final CaeConfig TINY = CaeConfig.preset("fmnist-tiny").toBuilder().patchSize(7).embedDim(32).depth(1)
            .numHeads(2).regressorDepth(1).decoderDepth(1).decoderNumHeads(2).build();

    @TempDir
    Path dir;

    Path checkpoint;

    @BeforeEach
    void writeCheckpoint() throws Exception {
        checkpoint = dir.resolve("tiny.safetensors");
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
                CaeModel m = CaeModel.create(ctx, TINY, 1)) {
            m.save(checkpoint);
        }
    }

    /** A batch file with images F32 [b, c, s, s] and a mask U8 [b, n] from {@code mask}. */
    Path batch(String name, long[] imageShape, String imageDtype, byte[] mask, long[] maskShape) throws Exception {
        return batch(dir, name, imageShape, imageDtype, mask, maskShape);
    }

    static Path batch(Path dir, String name, long[] imageShape, String imageDtype, byte[] mask, long[] maskShape)
            throws Exception {
        Random r = new Random(1);
        long numel = 1;
        for (long d : imageShape) {
            numel *= d;
        }
        float[] images = new float[(int) numel];
        for (int i = 0; i < images.length; i++) {
            images[i] = (float) r.nextGaussian();
        }
        SafetensorsWriter w = new SafetensorsWriter();
        if (imageDtype.equals("F32")) {
            w.addFloats("images", imageShape, images);
        } else {
            w.add("images", imageDtype, imageShape, dst -> {});
        }
        if (mask != null) {
            w.add("mask", "U8", maskShape, dst -> dst.copyFrom(java.lang.foreign.MemorySegment.ofArray(mask)));
        }
        Path f = dir.resolve(name + ".safetensors");
        w.write(f);
        return f;
    }

    static byte[] mask(int rows, int n, int... maskedPerRow) {
        byte[] m = new byte[rows * n];
        for (int b = 0; b < rows; b++) {
            for (int k = 0; k < maskedPerRow[b]; k++) {
                m[b * n + k] = 1;
            }
        }
        return m;
    }

    void refused(Path batchFile, String expected) throws Exception {
        CliEndToEndTest.Run r = CliEndToEndTest.run(dir.resolve("grad.log"), "grad", "--checkpoint",
                checkpoint.toString(), "--batch", batchFile.toString(), "--out", dir.resolve("g.safetensors").toString(),
                "--backend", "cpu", "--threads", "1");
        assertEquals(1, r.exit(), r.output());
        assertTrue(r.output().contains(expected), "expected \"" + expected + "\" in: " + r.output());
        assertTrue(r.output().lines().count() <= 3, "a short message: " + r.output());
        assertFalse(Files.exists(dir.resolve("g.safetensors")), "nothing written");
    }

    @Test
    void batchesThatDoNotFitTheModelAreRefusedByName() throws Exception {
        long[] img = {2, 1, 28, 28};
        long[] m = {2, 16};
        Path ok = batch("ok", img, "F32", mask(2, 16, 8, 8), m);
        CliEndToEndTest.Run good = CliEndToEndTest.run(dir.resolve("ok.log"), "grad", "--checkpoint",
                checkpoint.toString(), "--batch", ok.toString(), "--out", dir.resolve("ok-out.safetensors").toString(),
                "--backend", "cpu");
        assertEquals(0, good.exit(), good.output());

        refused(batch("uneven", img, "F32", mask(2, 16, 8, 7), m), "mask row 1 masks 7 patches but row 0 masks 8");
        byte[] two = mask(2, 16, 8, 8);
        two[3] = 2;
        refused(batch("value", img, "F32", two, m), "mask[0, 3] is 2");
        refused(batch("length", img, "F32", mask(2, 15, 8, 8), new long[] {2, 15}),
                "mask has shape [2, 15], expected [2, 16]");
        refused(batch("rows", img, "F32", mask(3, 16, 8, 8, 8), new long[] {3, 16}),
                "mask has shape [3, 16], expected [2, 16]");
        refused(batch("channels", new long[] {2, 3, 28, 28}, "F32", mask(2, 16, 8, 8), m),
                "images has shape [2, 3, 28, 28], expected [B, 1, 28, 28]");
        refused(batch("size", new long[] {2, 1, 32, 32}, "F32", mask(2, 16, 8, 8), m), "expected [B, 1, 28, 28]");
        refused(batch("bf16", img, "BF16", mask(2, 16, 8, 8), m), "images has dtype BF16, expected F32");
        refused(batch("all", img, "F32", mask(2, 16, 16, 16), m), "at least one must be masked and one visible");
        refused(batch("nomask", img, "F32", null, null), "has no tensor \"mask\"");
    }

    @Test
    void inconsistentCheckpointsAreRefusedByName() throws Exception {
        Path ok = batch("ok", new long[] {2, 1, 28, 28}, "F32", mask(2, 16, 8, 8), new long[] {2, 16});
        Path bad = dir.resolve("bad.safetensors");
        Files.write(bad, Files.readAllBytes(checkpoint));
        // The same weights under a configuration whose heads do not divide the width.
        String json = TINY.toJson().replace("\"num_heads\":2", "\"num_heads\":3");
        try (var in = org.caejava.io.SafetensorsFile.open(checkpoint)) {
            SafetensorsWriter w = new SafetensorsWriter().metadata("config", json);
            for (var e : in.entries()) {
                float[] v = in.floats(e.name());
                w.addFloats(e.name(), e.shape(), v);
            }
            w.write(bad);
        }
        CliEndToEndTest.Run r = CliEndToEndTest.run(dir.resolve("bad.log"), "grad", "--checkpoint", bad.toString(),
                "--batch", ok.toString(), "--out", dir.resolve("g.safetensors").toString(), "--backend", "cpu");
        assertEquals(1, r.exit(), r.output());
        assertTrue(r.output().contains("config.num_heads 3 does not divide config.embed_dim 32"), r.output());
        try (var files = Files.list(Path.of("."))) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().startsWith("hs_err_pid")), "no JVM crash log");
        }
    }

    @Test
    void unknownBackendAndPrecisionAreRefusedByName() throws Exception {
        CliEndToEndTest.Run backend = CliEndToEndTest.run(dir.resolve("backend.log"), "bench", "--preset", "fmnist-tiny",
                "--batch", "2", "--steps", "1", "--warmup", "0", "--backend", "tpu");
        assertEquals(1, backend.exit(), backend.output());
        assertTrue(backend.output().contains("--backend must be cpu, cuda or auto, not \"tpu\""), backend.output());
        CliEndToEndTest.Run precision = CliEndToEndTest.run(dir.resolve("precision.log"), "bench", "--preset",
                "fmnist-tiny", "--batch", "2", "--steps", "1", "--warmup", "0", "--backend", "cpu", "--precision", "fp8");
        assertEquals(1, precision.exit(), precision.output());
        assertTrue(precision.output().contains("--precision must be bf16, fp32 or auto, not \"fp8\""),
                precision.output());
        // pretrain refuses them before it writes anything
        Path run = dir.resolve("refused-run");
        CliEndToEndTest.Run pretrain = CliEndToEndTest.run(dir.resolve("pretrain.log"), "pretrain", "--steps", "1",
                "--batch", "2", "--backend", "cpu", "--precision", "fp8", "--out", run.toString());
        assertEquals(1, pretrain.exit(), pretrain.output());
        assertTrue(pretrain.output().contains("--precision must be bf16, fp32 or auto"), pretrain.output());
        assertFalse(Files.exists(run), "no output folder for a refused run");
    }

    @Test
    void aConfigurationFileWithATypoIsRefusedInOneLine() throws Exception {
        Path config = dir.resolve("model.json");
        Files.writeString(config, "{\"img_size\": 28, \"patch_size\": 7, \"in_chans\": 1, \"embed_dim\": 32,"
                + " \"depth\": 1, \"num_heads\": 2, \"regresor_depth\": 1}");
        Path run = dir.resolve("typo-run");
        CliEndToEndTest.Run r = CliEndToEndTest.run(dir.resolve("typo.log"), "pretrain", "--config",
                config.toString(), "--steps", "1", "--batch", "2", "--backend", "cpu", "--out", run.toString());
        assertEquals(1, r.exit(), r.output());
        String expected = "model configuration (" + config + "): unknown key \"regresor_depth\" (value 1); the "
                + "closest known key is \"regressor_depth\"";
        assertTrue(r.output().contains(expected), "expected \"" + expected + "\" in: " + r.output());
        assertEquals(1, r.output().lines().filter(l -> !l.isBlank()).count(), "one line: " + r.output());
        assertFalse(Files.exists(run), "no output folder for a refused run");
    }
}
