package org.caejava.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.CaeTrainer;
import org.caejava.Features;
import org.caejava.StepMetrics;
import org.caejava.api.Context;
import org.caejava.api.DType;
import org.caejava.api.Tensor;
import org.caejava.data.TensorDataset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Written the way a user's application uses the library, through the public API only: it fills
 * its own off-heap image tensor, wraps it as a dataset, trains a few steps, saves, reloads and
 * encodes images to features.
 */
class UserApplicationTest {

    @TempDir
    Path dir;

    @Test
    void trainSaveReloadEncode() throws Exception {
        CaeConfig config = CaeConfig.preset("fmnist-tiny").toBuilder().embedDim(64).depth(2).numHeads(4)
                .regressorDepth(1).decoderDepth(1).decoderNumHeads(4).build();
        Path checkpoint = dir.resolve("my-model.safetensors");
        List<StepMetrics> steps = new ArrayList<>();
        try (Context ctx = Context.create(); Arena arena = Arena.ofConfined()) {
            // 64 synthetic 28x28 images: a bright square at a position that depends on the image.
            int n = 64;
            Tensor images = Tensor.allocate(arena, DType.F32, n, 1, 28, 28);
            for (int i = 0; i < n; i++) {
                int r0 = (i * 5) % 20;
                int c0 = (i * 3) % 20;
                for (int r = 0; r < 28; r++) {
                    for (int c = 0; c < 28; c++) {
                        boolean inside = r >= r0 && r < r0 + 8 && c >= c0 && c < c0 + 8;
                        images.setFloat(inside ? 2f : -0.5f, i, 0, r, c);
                    }
                }
            }
            try (CaeModel model = CaeTrainer.builder().context(ctx).config(config).data(TensorDataset.of(images))
                    .steps(12).batchSize(16).learningRate(1e-3).seed(42).listener(steps::add).build().fit()) {
                model.save(checkpoint);
            }
            assertEquals(12, steps.size());
            assertTrue(steps.get(11).loss() < steps.get(0).loss(),
                    "loss falls: " + steps.get(0).loss() + " -> " + steps.get(11).loss());
            for (StepMetrics m : steps) {
                assertTrue(Float.isFinite(m.loss()) && m.imagesPerSecond() > 0);
            }

            try (CaeModel reloaded = CaeModel.load(ctx, checkpoint)) {
                assertEquals(config, reloaded.config());
                assertEquals(12, reloaded.state().step());
                Features f = reloaded.encode(images.slice(0, 8), arena);
                assertArrayEquals(new long[] {8, 64}, f.cls().shape());
                assertArrayEquals(new long[] {8, 64}, f.mean().shape());
                float[] a = f.mean().select(0).toFloatArray();
                float[] b = f.mean().select(1).toFloatArray();
                double diff = 0;
                for (int d = 0; d < a.length; d++) {
                    diff += Math.abs(a[d] - b[d]);
                }
                assertTrue(diff > 1e-3, "different images get different features");
            }
        }
    }
}
