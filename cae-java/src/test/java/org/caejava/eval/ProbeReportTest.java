package org.caejava.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.CpuContext;
import org.caejava.Features;
import org.caejava.api.Tensor;
import org.caejava.data.TensorDataset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

class ProbeReportTest {

    static final CaeConfig TINY = CaeConfig.preset("fmnist-tiny").toBuilder().imgSize(16).embedDim(32).depth(2)
            .numHeads(2).regressorDepth(1).decoderDepth(1).decoderNumHeads(2).build();

    @RegisterExtension
    static final CpuContext CPU = new CpuContext(2);

    @TempDir
    Path dir;


    /**
     * n labeled 1x16x16 images of 3 classes: a bright bar at the top, the middle or the bottom
     * (rows 0-4, 5-9, 10-14), plus noise. Easy for raw pixels.
     */
    static TensorDataset bars(Arena arena, int n, long seed) {
        return bars(arena, n, seed, 0.5);
    }

    /** {@link #bars} with Gaussian noise of the given standard deviation (3: a hard task, no encoder near 100%). */
    static TensorDataset bars(Arena arena, int n, long seed, double noise) {
        Random r = new Random(seed);
        float[] x = new float[n * 256];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = i % 3;
            for (int p = 0; p < 256; p++) {
                int row = p / 16;
                x[i * 256 + p] = (float) ((row / 5 == y[i] ? 1.5 : -0.5) + noise * r.nextGaussian());
            }
        }
        return TensorDataset.of(Tensor.of(arena, x, n, 1, 16, 16), y);
    }

    static float[] sample(TensorDataset d, long i) {
        float[] out = new float[(int) d.floatsPerSample()];
        d.loadPlain(i, java.lang.foreign.MemorySegment.ofArray(out));
        return out;
    }

    @Test
    void subsetsAreSortedDistinctAndSeeded() {
        long[] s = FeatureExtractor.subset(1000, 100, 7);
        assertEquals(100, s.length);
        assertEquals(100, Arrays.stream(s).distinct().count());
        for (int i = 1; i < s.length; i++) {
            assertTrue(s[i - 1] < s[i]);
        }
        assertArrayEquals(s, FeatureExtractor.subset(1000, 100, 7));
        assertNotEquals(Arrays.toString(s), Arrays.toString(FeatureExtractor.subset(1000, 100, 8)));
        assertArrayEquals(new long[] {0, 1, 2}, FeatureExtractor.subset(3, 0, 7));
        assertArrayEquals(new long[] {0, 1, 2}, FeatureExtractor.subset(3, 5, 7));
    }

    @Test
    void extractedFeaturesEqualTheModelsEncodeAndThePixels() {
        try (Arena arena = Arena.ofShared(); CaeModel m = CaeModel.create(CPU.get(), TINY, 3)) {
            TensorDataset data = bars(arena, 7, 1);
            long[] idx = {0, 2, 3, 6};
            FeatureExtractor.Encoded e = FeatureExtractor.encode(m, data, idx, 3);  // batches of 3, then 1
            assertEquals(4, e.mean().rows());
            assertEquals(32, e.mean().cols());
            for (int i = 0; i < idx.length; i++) {
                Features f = m.encode(Tensor.of(arena, sample(data, idx[i]), 1, 1, 16, 16), arena);
                float[] cls = f.cls().toFloatArray();
                float[] mean = f.mean().toFloatArray();
                for (int d = 0; d < 32; d++) {
                    assertEquals(cls[d], e.cls().get(i, d), 1e-5f, "cls of sample " + idx[i]);
                    assertEquals(mean[d], e.mean().get(i, d), 1e-5f, "mean of sample " + idx[i]);
                }
            }
            FeatureMatrix raw = FeatureExtractor.rawPixels(data, idx);
            assertEquals(256, raw.cols());
            assertArrayEquals(sample(data, 6), raw.row(3));
            assertArrayEquals(new int[] {0, 2, 0, 0}, FeatureExtractor.labels(data, idx));
        }
    }

    @Test
    void largeImagesArePooledForTheRawPixelBaseline() {
        assertEquals(1, FeatureExtractor.rawPoolFactor(1, 28, 28));
        assertEquals(7, FeatureExtractor.rawPoolFactor(3, 224, 224));  // 3 x 32 x 32 = 3072
        try (Arena arena = Arena.ofShared()) {
            // 1 x 128 x 128 -> pooled by 2 to 64 x 64 = 4096 values, each the mean of a 2x2 square.
            float[] x = new float[128 * 128];
            for (int i = 0; i < x.length; i++) {
                x[i] = i;
            }
            TensorDataset big = TensorDataset.of(Tensor.of(arena, x, 1, 1, 128, 128), new int[] {0});
            FeatureMatrix raw = FeatureExtractor.rawPixels(big, new long[] {0});
            assertEquals(4096, raw.cols());
            assertEquals((0 + 1 + 128 + 129) / 4f, raw.get(0, 0));
            assertEquals((2 + 3 + 130 + 131) / 4f, raw.get(0, 1));
        }
    }

    @Test
    void theProbeComparesThreeEncodersAndWritesItsSchema() throws Exception {
        try (Arena arena = Arena.ofShared(); CaeModel m = CaeModel.create(CPU.get(), TINY, 5)) {
            TensorDataset train = bars(arena, 150, 2);
            TensorDataset test = bars(arena, 60, 3);
            List<String> log = new ArrayList<>();
            ProbeResult r = ProbeReport.run(m, train, test,
                    ProbeOptions.defaults().withK(5).withLimits(120, 0).withBatchSize(64).withLog(log::add));
            assertEquals(120, r.trainSize());
            assertEquals(60, r.testSize());
            assertEquals(3, r.numClasses());
            assertEquals(5, r.k());
            assertEquals(5, r.randomInitSeed(), "the model's run seed");
            // This model is itself fresh from seed 5, so the random-init baseline is the same encoder.
            assertEquals(r.pretrained(), r.randomInit());
            assertEquals(r.pretrainedCls(), r.randomInitCls());
            assertEquals(r.pretrainedMean(), r.randomInitMean());
            assertTrue(r.rawPixels().knn() > 0.95 && r.rawPixels().linear() > 0.95, r.toTable());
            assertEquals(256, r.rawPixels().dim());
            assertEquals(64, r.pretrained().dim(), "[cls ; mean] of a 32-wide encoder");
            assertEquals(32, r.pretrainedCls().dim());
            assertEquals(32, r.pretrainedMean().dim());
            assertTrue(log.size() >= 5, log.toString());

            Path file = dir.resolve("probe.json");
            r.write(file);
            JsonNode j = new ObjectMapper().readTree(file.toFile());
            for (String enc : List.of("pretrained", "random_init", "raw_pixels")) {
                JsonNode e = j.get(enc);
                for (String key : List.of("knn", "linear")) {
                    double v = e.get(key).asDouble();
                    assertTrue(e.get(key).isNumber() && v >= 0 && v <= 1, enc + "." + key + " = " + v);
                }
                assertTrue(e.get("linear_iterations").isInt());
                assertTrue(e.get("linear_converged").isBoolean());
            }
            for (String enc : List.of("pretrained", "random_init")) {
                for (String key : List.of("knn_cls", "linear_cls", "knn_mean", "linear_mean")) {
                    double v = j.get(enc).get(key).asDouble();
                    assertTrue(v >= 0 && v <= 1, enc + "." + key + " = " + v);
                }
                assertEquals(32, j.get(enc).get("dim_mean").asInt());
            }
            assertEquals("cls_mean", j.get("features").asText());
            assertEquals(5, j.get("k").asInt());
            assertEquals("L-BFGS", j.get("optimizer").asText());
            assertEquals(120, j.get("train_size").asInt());
            assertEquals(60, j.get("test_size").asInt());
            assertEquals(r, ProbeResult.read(file), "probe.json reads back");
            String table = r.toTable();
            assertTrue(table.contains("pretrained") && table.contains("random init") && table.contains("raw pixels"),
                    table);
        }
    }
}
