package org.caejava.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.caejava.CaeModel;
import org.caejava.CpuContext;
import org.caejava.CaeTrainer;
import org.caejava.api.Tensor;
import org.caejava.data.TensorDataset;
import org.caejava.report.MetricsLog;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

class TrainingProbeTest {

    @RegisterExtension
    static final CpuContext CPU = new CpuContext(2);

    @TempDir
    Path dir;


    @Test
    void probesAreDueAtEveryNthEpochEndAndTheLastStep() {
        try (Arena arena = Arena.ofShared(); CaeModel m = CaeModel.create(CPU.get(), ProbeReportTest.TINY, 1)) {
            TensorDataset train = ProbeReportTest.bars(arena, 30, 1);
            TensorDataset test = ProbeReportTest.bars(arena, 12, 2);
            TrainingProbe every2 = new TrainingProbe(m, train, test, 6, 2, TrainingProbe.defaults(), p -> {});
            List<Long> due = new ArrayList<>();
            for (long s = 0; s <= 40; s++) {
                if (every2.due(s, 40)) {
                    due.add(s);
                }
            }
            assertEquals(List.of(12L, 24L, 36L, 40L), due);
            assertThrows(IllegalArgumentException.class,
                    () -> new TrainingProbe(m, train, test, 6, 0, TrainingProbe.defaults(), p -> {}));
            assertThrows(IllegalArgumentException.class,
                    () -> new TrainingProbe(m, train, test, 0, 1, TrainingProbe.defaults(), p -> {}));
            TensorDataset unlabeled = TensorDataset.of(Tensor.of(arena, new float[12 * 256], 12, 1, 16, 16));
            assertThrows(IllegalArgumentException.class,
                    () -> new TrainingProbe(m, train, unlabeled, 6, 1, TrainingProbe.defaults(), p -> {}));
        }
    }

    @Test
    void duringTrainingEachEpochEndAndTheLastStepAppendAKnnLine() throws Exception {
        try (Arena arena = Arena.ofShared(); MetricsLog log = MetricsLog.open(dir, 0);
                CaeModel m = CaeModel.create(CPU.get(), ProbeReportTest.TINY, 4)) {
            TensorDataset train = ProbeReportTest.bars(arena, 96, 1);
            TensorDataset test = ProbeReportTest.bars(arena, 45, 2);
            List<String> printed = new ArrayList<>();
            ProbeOptions options = TrainingProbe.defaults().withLimits(60, 30).withK(5).withLog(printed::add);
            // 96 images in batches of 16: 6 steps an epoch; 15 steps end epochs 1 and 2 and stop mid-epoch 3.
            TrainingProbe probe = new TrainingProbe(m, train, test, 6, 1, options, log::append);
            CaeTrainer.builder().model(m).data(train).steps(15).batchSize(16).seed(4).learningRate(1e-3)
                    .listener(s -> {
                        log.onStep(s);
                        probe.onStep(s);
                    }).build().fit();

            Path file = dir.resolve(MetricsLog.FILE);
            List<String> lines = Files.readAllLines(file);
            assertEquals(15 + 3, lines.size(), "a line per step and one per probe");
            List<JsonNode> knn = new ArrayList<>();
            ObjectMapper json = new ObjectMapper();
            for (String line : lines) {
                JsonNode o = json.readTree(line);
                if (o.has("knn")) {
                    assertFalse(o.has("loss"), line);
                    knn.add(o);
                }
            }
            assertEquals(List.of(6L, 12L, 15L), knn.stream().map(o -> o.get("step").asLong()).toList());
            assertEquals(List.of(1L, 2L, 2L), knn.stream().map(o -> o.get("epoch").asLong()).toList());
            for (JsonNode o : knn) {
                double acc = o.get("knn").asDouble();
                // Three bars a third of the image apart: far above chance (1/3) for any encoder.
                assertTrue(acc > 0.6 && acc <= 1, o.toString());
                assertEquals("cls_mean", o.get("knn_features").asText());
                assertEquals(5, o.get("knn_k").asInt());
                assertEquals(60, o.get("knn_train").asInt());
                assertEquals(30, o.get("knn_test").asInt());
                assertTrue(o.get("knn_seconds").asDouble() >= 0);
            }
            // The step records are all there and read as before.
            assertEquals(15, MetricsLog.read(file).size());
            assertTrue(MetricsLog.read(file).stream().allMatch(r -> Double.isFinite(r.loss())));
            List<KnnPoint> read = MetricsLog.readKnn(file);
            assertEquals(probe.points().stream().map(KnnPoint::accuracy).toList(),
                    read.stream().map(KnnPoint::accuracy).toList(), "what the sink received is what was written");
            assertEquals(3, printed.size(), printed.toString());
            assertTrue(printed.get(0).startsWith("k-NN at step 6 (epoch 1): "), printed.get(0));

            // The last point is the k-NN of the final model's standardized [cls ; mean] features.
            long[] trainIdx = FeatureExtractor.subset(train.size(), 60, 0);
            long[] testIdx = FeatureExtractor.subset(test.size(), 30, 1);
            FeatureMatrix a = FeatureExtractor.encode(m, train, trainIdx, 64).clsMean();
            FeatureMatrix b = FeatureExtractor.encode(m, test, testIdx, 64).clsMean();
            Standardizer st = Standardizer.fit(a);
            double expected = new KnnClassifier(5).accuracy(st.apply(a), FeatureExtractor.labels(train, trainIdx), 3,
                    st.apply(b), FeatureExtractor.labels(test, testIdx));
            assertEquals(expected, knn.get(2).get("knn").asDouble(), 1e-12);
        }
    }

    @Test
    void theVoteIsOnTheClsAndMeanTokensStandardizedWithTheTrainingSubset() {
        try (Arena arena = Arena.ofShared(); CaeModel m = CaeModel.create(CPU.get(), ProbeReportTest.TINY, 4)) {
            TensorDataset train = ProbeReportTest.bars(arena, 150, 1, 3.0);
            TensorDataset test = ProbeReportTest.bars(arena, 150, 2, 3.0);
            TrainingProbe probe = new TrainingProbe(m, train, test, 5, 1, TrainingProbe.defaults().withLimits(120, 0)
                    .withK(5), p -> {});
            KnnPoint p = probe.probe(10);
            assertEquals(10, p.step());
            assertEquals(2, p.epoch());
            assertEquals(120, p.trainSize());
            assertEquals(150, p.testSize());

            long[] trainIdx = FeatureExtractor.subset(150, 120, 0);
            long[] testIdx = FeatureExtractor.subset(150, 0, 1);
            int[] yTrain = FeatureExtractor.labels(train, trainIdx);
            int[] yTest = FeatureExtractor.labels(test, testIdx);
            FeatureExtractor.Encoded a = FeatureExtractor.encode(m, train, trainIdx, 64);
            FeatureExtractor.Encoded b = FeatureExtractor.encode(m, test, testIdx, 64);
            KnnClassifier knn = new KnnClassifier(5);
            Standardizer s = Standardizer.fit(a.clsMean());
            assertEquals(knn.accuracy(s.apply(a.clsMean()), yTrain, 3, s.apply(b.clsMean()), yTest), p.accuracy());
            // The other choices score differently on this data, so the check above tells them apart.
            Standardizer mean = Standardizer.fit(a.mean());
            assertNotEquals(knn.accuracy(mean.apply(a.mean()), yTrain, 3, mean.apply(b.mean()), yTest), p.accuracy(),
                    "mean patch token only");
            assertNotEquals(knn.accuracy(a.clsMean(), yTrain, 3, b.clsMean(), yTest), p.accuracy(), "not standardized");
        }
    }

    @Test
    void probingDoesNotChangeTraining() {
        try (Arena arena = Arena.ofShared()) {
            TensorDataset train = ProbeReportTest.bars(arena, 48, 1);
            TensorDataset test = ProbeReportTest.bars(arena, 24, 2);
            float[][] weights = new float[2][];
            for (int run = 0; run < 2; run++) {
                try (CaeModel m = CaeModel.create(CPU.get(), ProbeReportTest.TINY, 7)) {
                    // 3 steps an epoch: with probing, probes after steps 3 and 6 (the last).
                    TrainingProbe probe = new TrainingProbe(m, train, test, 3, 1, TrainingProbe.defaults().withK(3),
                            p -> {});
                    boolean probing = run == 1;
                    CaeTrainer.builder().model(m).data(train).steps(6).batchSize(16).seed(7).learningRate(1e-3)
                            .listener(s -> {
                                if (probing) {
                                    probe.onStep(s);
                                }
                            }).build().fit();
                    assertEquals(probing ? 2 : 0, probe.points().size());
                    weights[run] = m.parameter("encoder.blocks.0.attn.qkv.weight");
                }
            }
            assertArrayEquals(weights[0], weights[1], "the same weights with and without the probe");
        }
    }
}
