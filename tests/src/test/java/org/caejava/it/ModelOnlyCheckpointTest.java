package org.caejava.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.caejava.CaeConfig;
import org.caejava.io.SafetensorsFile;
import org.caejava.io.SafetensorsWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A checkpoint that holds only the model's tensors under the official names and its
 * configuration (no AdamW moments, no step), as a converted PyTorch checkpoint does, works in
 * every command that reads a model: probe, export, grad, encoding from Java, and pretrain --init,
 * which starts a new run from its weights.
 */
class ModelOnlyCheckpointTest {

    @TempDir
    Path dir;

    @Test
    void probeExportGradAndInitAcceptModelTensorsAlone() throws Exception {
        CaeConfig c = CaeConfig.preset("fmnist-tiny").toBuilder().patchSize(7).embedDim(32).depth(2).numHeads(2)
                .regressorDepth(1).decoderDepth(1).decoderNumHeads(2).build();
        Path config = dir.resolve("tiny.json");
        Files.writeString(config, c.toJson());
        Path run = dir.resolve("run");
        CliEndToEndTest.Run trained = CliEndToEndTest.run(dir.resolve("train.log"), "pretrain", "--config",
                config.toString(), "--steps", "6", "--batch", "16", "--no-probe", "--no-report", "--threads", "1",
                "--out", run.toString());
        assertEquals(0, trained.exit(), trained.output());

        // Only the model's tensors and the configuration.
        Path modelOnly = dir.resolve("model-only.safetensors");
        int tensors = 0;
        try (SafetensorsFile f = SafetensorsFile.open(run.resolve("checkpoint.safetensors"))) {
            SafetensorsWriter w = new SafetensorsWriter().metadata("config", f.metadata().get("config"));
            for (SafetensorsFile.Entry e : f.entries()) {
                if (!e.name().startsWith("optimizer.")) {
                    w.addFloats(e.name(), e.shape(), f.floats(e.name(), e.shape()));
                    tensors++;
                }
            }
            w.write(modelOnly);
        }
        assertTrue(tensors > 20, tensors + " tensors");

        CliEndToEndTest.Run probe = CliEndToEndTest.run(dir.resolve("probe.log"), "probe", "--checkpoint",
                modelOnly.toString(), "--probe-train", "300", "--probe-test", "100", "--threads", "1");
        assertEquals(0, probe.exit(), probe.output());
        assertTrue(probe.output().contains("pretrained"), probe.output());

        Path encoder = dir.resolve("encoder.safetensors");
        CliEndToEndTest.Run export = CliEndToEndTest.run(dir.resolve("export.log"), "export", "--checkpoint",
                modelOnly.toString(), "--out", encoder.toString());
        assertEquals(0, export.exit(), export.output());
        try (SafetensorsFile e = SafetensorsFile.open(encoder)) {
            assertTrue(e.contains("encoder.blocks.1.attn.qkv.weight"), e.entries().toString());
        }

        // encode, from Java.
        try (org.caejava.api.Context ctx = org.caejava.api.Context.builder().backend(org.caejava.api.Backend.CPU)
                .threads(1).build(); java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined();
                org.caejava.CaeModel m = org.caejava.CaeModel.load(ctx, modelOnly)) {
            assertEquals(0, m.state().step());
            org.caejava.api.Tensor images = org.caejava.api.Tensor.allocate(arena, org.caejava.api.DType.F32, 3, 1, 28,
                    28);
            org.caejava.Features f = m.encode(images, arena);
            assertArrayEquals(new long[] {3, 32}, f.cls().shape());
            assertArrayEquals(new long[] {3, 32}, f.mean().shape());
        }

        Path batch = CliBadInputTest.batch(dir, "batch", new long[] {2, 1, 28, 28}, "F32",
                CliBadInputTest.mask(2, 16, 8, 8), new long[] {2, 16});
        CliEndToEndTest.Run grad = CliEndToEndTest.run(dir.resolve("grad.log"), "grad", "--checkpoint",
                modelOnly.toString(), "--batch", batch.toString(), "--out", dir.resolve("grads.safetensors").toString(),
                "--backend", "cpu");
        assertEquals(0, grad.exit(), grad.output());

        // A new run from these weights: at a learning rate of 1e-12 they stay those of the file (within 1e-7;
        // a model not started from it differs by 1e-3 and more).
        Path again = dir.resolve("again");
        CliEndToEndTest.Run init = CliEndToEndTest.run(dir.resolve("init.log"), "pretrain", "--init",
                modelOnly.toString(), "--steps", "3", "--batch", "16", "--lr", "1e-12", "--no-probe", "--no-report",
                "--threads", "1", "--out", again.toString());
        assertEquals(0, init.exit(), init.output());
        assertTrue(init.output().contains("starting from the weights of " + modelOnly), init.output());
        try (SafetensorsFile before = SafetensorsFile.open(modelOnly);
                SafetensorsFile after = SafetensorsFile.open(again.resolve("checkpoint.safetensors"))) {
            assertEquals("3", after.metadata().get("step"));
            for (SafetensorsFile.Entry e : before.entries()) {
                assertArrayEquals(before.floats(e.name(), e.shape()), after.floats(e.name(), e.shape()), 1e-7f, e.name());
            }
        }

        CliEndToEndTest.Run both = CliEndToEndTest.run(dir.resolve("both.log"), "pretrain", "--init",
                modelOnly.toString(), "--resume", "--out", again.toString());
        assertEquals(2, both.exit(), both.output());
        assertTrue(both.output().contains("--init starts a new run and --resume continues one"), both.output());
    }
}
