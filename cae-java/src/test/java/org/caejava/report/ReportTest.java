package org.caejava.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.CpuContext;
import org.caejava.CaeTrainer;
import org.caejava.api.Tensor;
import org.caejava.data.TensorDataset;
import org.caejava.eval.ProbeOptions;
import org.caejava.eval.ProbeReport;
import org.caejava.eval.ProbeResult;
import org.caejava.eval.TrainingProbe;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

class ReportTest {

    static final CaeConfig TINY = ReconstructionTest.TINY;

    @RegisterExtension
    static final CpuContext CPU = new CpuContext(2);

    @TempDir
    Path dir;


    static TensorDataset data(Arena arena, int n, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n * 256];
        int[] y = new int[n];
        for (int i = 0; i < n; i++) {
            y[i] = i % 2;
            for (int p = 0; p < 256; p++) {
                x[i * 256 + p] = (float) (((p % 16 < 8) == (y[i] == 0) ? 0.8 : 0.1) + 0.1 * r.nextGaussian());
            }
        }
        return TensorDataset.of(Tensor.of(arena, x, n, 1, 16, 16), y);
    }

    @Test
    void theReportOfAShortRunReferencesOnlyFilesThatExist() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            TensorDataset train = data(arena, 64, 1);
            TensorDataset test = data(arena, 24, 2);
            ProbeResult probe;
            Path html;
            try (MetricsLog log = MetricsLog.open(dir, 0); CaeModel model = CaeModel.create(CPU.get(), TINY, 3)) {
                // 4 steps an epoch: k-NN probes at steps 4, 8 and 12.
                TrainingProbe knn = new TrainingProbe(model, train, test, 4, 1, TrainingProbe.defaults(), log::append);
                CaeTrainer.builder().model(model).data(train).steps(12).batchSize(16).seed(3).learningRate(1e-3)
                        .listener(m -> {
                            log.onStep(m);
                            knn.onStep(m);
                        }).build().fit();
                probe = ProbeReport.run(model, train, test, ProbeOptions.defaults().withK(5));
                Map<String, Object> run = new LinkedHashMap<>();
                run.put("steps", 12);
                run.put("batch_size", 16);
                run.put("data", "<synthetic & stripes>");
                run.put("mask", Map.of("kind", "block", "ratio", 0.5));
                html = Report.write(dir, model, test, run, probe);
            }
            assertEquals(dir.resolve(Report.HTML), html);
            String page = Files.readString(html);
            List<String> refs = new ArrayList<>();
            Matcher m = Pattern.compile("(?:src|href)=\"([^\"]+)\"").matcher(page);
            while (m.find()) {
                refs.add(m.group(1));
            }
            assertEquals(List.of(Report.LOSS_PNG, Report.KNN_PNG, ReconstructionGrid.FILE), refs);
            for (String ref : refs) {
                assertFalse(ref.startsWith("/") || ref.contains(":"), "relative: " + ref);
                assertTrue(Files.size(dir.resolve(ref)) > 1000, ref + " exists and is a picture");
            }
            assertTrue(Files.exists(dir.resolve(Report.PROBE_JSON)));
            assertEquals(probe, ProbeResult.read(dir.resolve(Report.PROBE_JSON)));
            // The configuration, the run's options (escaped), the final metrics and the probe are shown.
            assertTrue(page.contains("embed_dim") && page.contains(">32<"), "model config");
            assertTrue(page.contains("&lt;synthetic &amp; stripes&gt;"), "run options, HTML-escaped");
            assertFalse(page.contains("<synthetic"));
            assertTrue(page.contains("{&quot;") && page.contains("block"), "a map value as JSON");
            assertTrue(page.contains("12 / 12"), "steps done / total");
            assertEquals(3, MetricsLog.readKnn(dir.resolve(MetricsLog.FILE)).size());
            assertTrue(page.contains("k-NN during training") && page.contains("at step 12"), "the in-run k-NN");
            assertTrue(page.contains(String.format(java.util.Locale.ROOT, "%.2f%%", 100 * probe.pretrained().knn())));
            assertTrue(page.contains("random init") && page.contains("raw pixels"));
            assertTrue(page.startsWith("<!DOCTYPE html>") && page.trim().endsWith("</html>"));
        }
    }

    @Test
    void withoutMetricsOrSampleDataThePageStillRendersAndShowsAnExistingProbe() throws Exception {
        Path run = dir.resolve("bare");
        try (Arena arena = Arena.ofShared(); CaeModel model = CaeModel.create(CPU.get(), TINY, 2)) {
            ProbeResult probe = ProbeReport.run(model, data(arena, 40, 3), data(arena, 20, 4),
                    ProbeOptions.defaults().withK(3));
            probe.write(run.resolve(Report.PROBE_JSON));
            Path html = Report.write(run, model, null, null, null);
            String page = Files.readString(html);
            assertFalse(page.contains("<img"), "no pictures without metrics or data");
            assertTrue(page.contains("No metrics were logged"));
            assertTrue(page.contains("No run options were recorded"));
            assertTrue(page.contains("Probe"), "the probe.json in the folder is shown");
            assertFalse(Files.exists(run.resolve(Report.LOSS_PNG)));
        }
    }
}
