package org.caejava.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.caejava.StepMetrics;
import org.caejava.eval.KnnPoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MetricsLogTest {

    @TempDir
    Path dir;

    static StepMetrics step(long s, float loss) {
        return new StepMetrics(s, 10, (s - 1) / 5, 64, 1e-3 * s, 0.05, loss, loss * 0.8f, loss * 0.1f, 1.5f, false, 2.0,
                30.0, 10, 15, 5, 640, 0);
    }

    @Test
    void everyLoggedStepIsOneJsonLineWithTheDocumentedFields() throws Exception {
        try (MetricsLog log = MetricsLog.open(dir, 0)) {
            for (int s = 1; s <= 3; s++) {
                log.onStep(step(s, 1f / s));
            }
        }
        List<String> lines = Files.readAllLines(dir.resolve(MetricsLog.FILE));
        assertEquals(3, lines.size());
        JsonNode first = new ObjectMapper().readTree(lines.get(0));
        for (String key : List.of("step", "epoch", "lr", "loss", "loss_main", "loss_align", "grad_norm", "skipped",
                "img_per_s", "data_wait_ms", "compute_ms", "elapsed_s")) {
            assertTrue(first.has(key), key + " in " + first);
        }
        assertEquals(1, first.get("step").asInt());
        assertEquals(1.0, first.get("loss").asDouble(), 1e-7);
        assertEquals(0.8, first.get("loss_main").asDouble(), 1e-6);
        assertEquals(1e-3, first.get("lr").asDouble(), 1e-12);
        assertEquals(640, first.get("img_per_s").asDouble());
        assertEquals(2.0, first.get("data_wait_ms").asDouble());
        assertEquals(30.0, first.get("compute_ms").asDouble());
        assertFalse(first.get("skipped").asBoolean());
    }

    @Test
    void aResumeDropsTheRecordsAfterItsStepAndContinuesTheFile() throws Exception {
        try (MetricsLog log = MetricsLog.open(dir, 0)) {
            for (int s = 1; s <= 8; s++) {
                log.onStep(step(s, 10 + s));
            }
        }
        // A crash can leave a torn last line; it is dropped too.
        Files.writeString(dir.resolve(MetricsLog.FILE), "{\"step\": 9, \"lo", StandardOpenOption.APPEND);
        double elapsedAt5 = MetricsLog.read(dir.resolve(MetricsLog.FILE)).get(4).elapsedSeconds();
        try (MetricsLog log = MetricsLog.open(dir, 5)) {  // the checkpoint was at step 5
            for (int s = 6; s <= 10; s++) {
                log.onStep(step(s, 100 + s));
            }
        }
        List<String> lines = Files.readAllLines(dir.resolve(MetricsLog.FILE));
        assertEquals(10, lines.size(), "steps 1-5 of the first run and 6-10 of the resumed one");
        List<MetricsRecord> r = MetricsLog.read(dir.resolve(MetricsLog.FILE));
        assertEquals(10, r.size());
        for (int i = 0; i < 10; i++) {
            assertEquals(i + 1, r.get(i).step());
        }
        assertEquals(15, r.get(4).loss(), 1e-6);
        assertEquals(106, r.get(5).loss(), 1e-6, "the resumed run's value, not the dropped one");
        assertTrue(r.get(5).elapsedSeconds() >= elapsedAt5, "elapsed time continues across the resume");
    }

    @Test
    void aFreshRunEmptiesTheFileAndReadersKeepTheLastRecordPerStep() throws Exception {
        Path file = dir.resolve(MetricsLog.FILE);
        Files.writeString(file, "{\"step\":1,\"loss\":5}\n{\"step\":2,\"loss\":6}\n{\"step\":1,\"loss\":7}\n",
                StandardCharsets.UTF_8);
        List<MetricsRecord> r = MetricsLog.read(file);
        assertEquals(2, r.size());
        assertEquals(7, r.get(0).loss(), "the last record of step 1");
        assertTrue(Double.isNaN(r.get(0).lr()), "a missing field reads as NaN");
        try (MetricsLog log = MetricsLog.open(dir, 0)) {
            log.onStep(step(1, 3));
        }
        assertEquals(1, Files.readAllLines(file).size());
    }

    @Test
    void nonFiniteValuesAreNullAndOnlyEveryNthStepIsLogged() throws Exception {
        try (MetricsLog log = MetricsLog.open(dir, 0, 4)) {
            for (int s = 1; s <= 10; s++) {
                log.onStep(step(s, s == 8 ? Float.NaN : s));
            }
        }
        List<String> lines = Files.readAllLines(dir.resolve(MetricsLog.FILE));
        assertEquals(3, lines.size(), "steps 4, 8 and the last (10)");
        assertTrue(lines.get(1).contains("\"loss\":null"), lines.get(1));
        List<MetricsRecord> r = MetricsLog.read(dir.resolve(MetricsLog.FILE));
        assertEquals(List.of(4L, 8L, 10L), r.stream().map(MetricsRecord::step).toList());
        assertTrue(Double.isNaN(r.get(1).loss()));
    }

    @Test
    void knnProbeLinesHaveNoLossAndDoNotReplaceTheirStepsRecord() throws Exception {
        Path file = dir.resolve(MetricsLog.FILE);
        KnnPoint at2 = new KnnPoint(2, 1, 0.75, "cls_mean", 20, 2000, 1000, 1.5);
        try (MetricsLog log = MetricsLog.open(dir, 0)) {
            for (int s = 1; s <= 4; s++) {
                log.onStep(step(s, s));
                if (s % 2 == 0) {
                    log.append(s == 2 ? at2 : new KnnPoint(s, 2, Double.NaN, "cls_mean", 20, 2000, 1000, 1.25));
                }
            }
        }
        List<String> lines = Files.readAllLines(file);
        assertEquals(6, lines.size());
        JsonNode probe = new ObjectMapper().readTree(lines.get(2));
        assertFalse(probe.has("loss"), probe.toString());
        assertEquals(2, probe.get("step").asInt());
        assertEquals(1, probe.get("epoch").asInt());
        assertEquals(0.75, probe.get("knn").asDouble());
        assertEquals("cls_mean", probe.get("knn_features").asText());
        assertEquals(2000, probe.get("knn_train").asInt());
        assertEquals(1000, probe.get("knn_test").asInt());
        assertEquals(1.5, probe.get("knn_seconds").asDouble());

        List<MetricsRecord> r = MetricsLog.read(file);
        assertEquals(List.of(1L, 2L, 3L, 4L), r.stream().map(MetricsRecord::step).toList());
        assertEquals(2, r.get(1).loss(), 1e-6, "step 2's record, not its probe");
        assertEquals(4, r.get(3).loss(), 1e-6);
        List<KnnPoint> knn = MetricsLog.readKnn(file);
        assertEquals(2, knn.size());
        assertEquals(at2, knn.get(0));
        assertTrue(Double.isNaN(knn.get(1).accuracy()), "null reads back as NaN");

        // A resume at step 3 keeps the probe of step 2 and drops that of step 4.
        try (MetricsLog log = MetricsLog.open(dir, 3)) {
            log.onStep(step(4, 40));
        }
        assertEquals(List.of(at2), MetricsLog.readKnn(file));
        assertEquals(40, MetricsLog.read(file).get(3).loss(), 1e-6);
    }
}
