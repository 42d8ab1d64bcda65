package org.caejava.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.TrainingState;
import org.caejava.data.Dataset;
import org.caejava.eval.KnnPoint;
import org.caejava.eval.ProbeResult;
import org.caejava.eval.ProbeScores;

/**
 * The report of a pretraining run, written into the run's folder: {@code loss.png} (from
 * {@code metrics.jsonl}, when there is one), {@code knn.png} (from the k-NN probes taken during
 * training, when it holds any), {@code reconstruction.png} (when sample data is
 * given), {@code probe.json} (when a probe result is given) and {@code report.html}, a
 * self-contained page that shows them with the model configuration, the run's options and the
 * final metrics. Images are referenced by relative path, so the folder can be moved as a whole.
 *
 * <pre>{@code
 * Report.write(outDir, model, testData, Map.of("epochs", 10, "batch_size", 64, "seed", 1), probe);
 * }</pre>
 */
public final class Report {

    public static final String HTML = "report.html";
    public static final String LOSS_PNG = "loss.png";
    public static final String KNN_PNG = "knn.png";
    public static final String PROBE_JSON = "probe.json";

    /** At most this many logged steps are averaged for the final metrics. */
    static final int RECENT = 50;

    private static final ObjectMapper JSON = new ObjectMapper();

    private Report() {}

    /**
     * Writes the pictures, {@code probe.json} and {@code report.html} into {@code outDir} and
     * returns the page's path.
     *
     * @param model      the trained model (its configuration and state, and the reconstructions)
     * @param sampleData images for the reconstruction picture (normally the test split), or null for none
     * @param runInfo    the run's options to show (name to value; maps and lists are shown as JSON), or null
     * @param probe      the probe of the model, or null: then an existing {@code probe.json} is shown, if any
     */
    public static Path write(Path outDir, CaeModel model, Dataset sampleData, Map<String, Object> runInfo,
            ProbeResult probe) throws IOException {
        Files.createDirectories(outDir);
        List<MetricsRecord> records = MetricsLog.read(outDir.resolve(MetricsLog.FILE));
        boolean curves = !records.isEmpty() && LossCurves.write(records, outDir.resolve(LOSS_PNG));
        List<KnnPoint> knn = MetricsLog.readKnn(outDir.resolve(MetricsLog.FILE));
        long lastStep = records.isEmpty() ? 0 : records.get(records.size() - 1).step();
        boolean knnCurve = !knn.isEmpty() && KnnCurve.write(knn, lastStep, outDir.resolve(KNN_PNG));
        boolean recon = false;
        if (sampleData != null) {
            ReconstructionGrid.write(outDir.resolve(ReconstructionGrid.FILE), model, sampleData, 8);
            recon = true;
        }
        Path probeFile = outDir.resolve(PROBE_JSON);
        if (probe != null) {
            probe.write(probeFile);
        } else if (Files.exists(probeFile)) {
            probe = ProbeResult.read(probeFile);
        }
        String html = page(model.config(), model.state(), runInfo, records, knnCurve ? knn : List.of(), probe,
                curves, recon);
        Path file = outDir.resolve(HTML);
        Files.writeString(file, html, StandardCharsets.UTF_8);
        return file;
    }

    static String page(CaeConfig config, TrainingState state, Map<String, Object> runInfo,
            List<MetricsRecord> records, List<KnnPoint> knn, ProbeResult probe, boolean curves, boolean recon) {
        StringBuilder h = new StringBuilder(16_384);
        h.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
                .append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
                .append("<title>CAE pretraining report</title>\n<style>\n").append(CSS).append("</style>\n</head>\n<body>\n")
                .append("<main>\n<header>\n<h1>CAE pretraining report</h1>\n<p class=\"sub\">")
                .append(esc(describe(config))).append(" &middot; step ").append(state.step()).append(" &middot; seed ")
                .append(state.seed()).append(" &middot; generated ")
                .append(esc(ZonedDateTime.now().format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm z"))))
                .append("</p>\n</header>\n");

        summary(h, state, records);
        if (probe != null) {
            probe(h, probe);
        }
        if (curves) {
            h.append("<section>\n<h2>Loss curves</h2>\n<figure><img src=\"").append(LOSS_PNG)
                    .append("\" alt=\"training loss and learning rate by step\" width=\"").append(LossCurves.WIDTH)
                    .append("\"><figcaption>Total loss = main (reconstruction MSE on per-patch normalized pixels) + ")
                    .append(fmt(config.alignLossWeight())).append(" &times; align (MSE to the encoder's own "
                            + "representation of the masked patches).</figcaption></figure>\n</section>\n");
        }
        if (!knn.isEmpty()) {
            knnSection(h, knn);
        }
        if (recon) {
            h.append("<section>\n<h2>Reconstructions</h2>\n<figure><img src=\"").append(ReconstructionGrid.FILE)
                    .append("\" alt=\"original, masked and reconstructed images\">")
                    .append("<figcaption>Masked patches are predicted in per-patch normalized space and shown with "
                            + "the mean and variance of the original patch (as MAE visualizes norm-pix models); "
                            + "visible patches are the input.</figcaption></figure>\n</section>\n");
        }
        h.append("<section>\n<h2>Configuration</h2>\n<div class=\"cols\">\n<div>\n<h3>Model</h3>\n");
        table(h, configMap(config));
        h.append("</div>\n<div>\n<h3>Run</h3>\n");
        if (runInfo == null || runInfo.isEmpty()) {
            h.append("<p class=\"muted\">No run options were recorded.</p>\n");
        } else {
            table(h, runInfo);
        }
        h.append("</div>\n</div>\n</section>\n</main>\n</body>\n</html>\n");
        return h.toString();
    }

    private static void summary(StringBuilder h, TrainingState state, List<MetricsRecord> records) {
        h.append("<section>\n<h2>Training</h2>\n");
        if (records.isEmpty()) {
            h.append("<p class=\"muted\">No metrics were logged (no ").append(MetricsLog.FILE).append(").</p>\n")
                    .append("</section>\n");
            return;
        }
        MetricsRecord last = records.get(records.size() - 1);
        // "Final" values average the last tenth of the logged steps (1 to 50 of them) against step noise.
        int window = Math.max(1, Math.min(RECENT, records.size() / 10));
        List<MetricsRecord> recent = records.subList(records.size() - window, records.size());
        double[] speeds = records.stream().mapToDouble(MetricsRecord::imagesPerSecond).filter(Double::isFinite)
                .sorted().toArray();
        double wait = records.stream().mapToDouble(MetricsRecord::dataWaitMs).filter(Double::isFinite).sum();
        double compute = records.stream().mapToDouble(MetricsRecord::computeMs).filter(Double::isFinite).sum();
        long skipped = records.stream().filter(MetricsRecord::skipped).count();
        h.append("<div class=\"cards\">\n");
        card(h, "step", last.totalSteps() > 0 ? last.step() + " / " + last.totalSteps() : Long.toString(last.step()));
        card(h, "epoch", Long.toString(Math.max(last.epoch(), state.epoch())));
        card(h, "final loss", num(mean(recent, MetricsRecord::loss)));
        card(h, "throughput", speeds.length == 0 ? "&ndash;"
                : String.format(Locale.ROOT, "%.0f img/s", speeds[speeds.length / 2]));
        card(h, "wall time", duration(last.elapsedSeconds()));
        card(h, "waiting for data", compute + wait > 0
                ? String.format(Locale.ROOT, "%.1f%%", 100 * wait / (wait + compute)) : "&ndash;");
        h.append("</div>\n<table class=\"metrics\">\n<thead><tr><th>metric</th><th>last logged step</th><th>mean of "
                + "last ").append(recent.size()).append(" logged steps</th></tr></thead>\n<tbody>\n");
        metricRow(h, "loss (total)", last.loss(), mean(recent, MetricsRecord::loss));
        metricRow(h, "loss main (reconstruction)", last.lossMain(), mean(recent, MetricsRecord::lossMain));
        metricRow(h, "loss align", last.lossAlign(), mean(recent, MetricsRecord::lossAlign));
        metricRow(h, "gradient norm", last.gradNorm(), mean(recent, MetricsRecord::gradNorm));
        metricRow(h, "learning rate", last.lr(), mean(recent, MetricsRecord::lr));
        metricRow(h, "images / s", last.imagesPerSecond(), mean(recent, MetricsRecord::imagesPerSecond));
        h.append("</tbody>\n</table>\n");
        if (skipped > 0) {
            h.append("<p class=\"warn\">").append(skipped).append(" logged step(s) were skipped for non-finite values."
                    + "</p>\n");
        }
        h.append("</section>\n");
    }

    /** The curve of the k-NN probes taken during training ({@code knn.png}), the last and the best. */
    private static void knnSection(StringBuilder h, List<KnnPoint> knn) {
        List<KnnPoint> finite = knn.stream().filter(p -> Double.isFinite(p.accuracy())).toList();
        if (finite.isEmpty()) {
            return;
        }
        KnnPoint last = finite.get(finite.size() - 1);
        KnnPoint best = finite.stream().max(Comparator.comparingDouble(KnnPoint::accuracy)).orElseThrow();
        h.append("<section>\n<h2>k-NN during training</h2>\n<figure><img src=\"").append(KNN_PNG)
                .append("\" alt=\"k-NN test accuracy by step\" width=\"").append(KnnCurve.WIDTH)
                .append("\"><figcaption>At the end of epochs and at the last step: k-NN (k = ").append(last.k())
                .append(") test accuracy of the encoder's ").append(esc(featureName(last.features())))
                .append(", standardized with the training subset's statistics, on fixed subsets of ")
                .append(last.trainSize()).append(" training and ").append(last.testSize())
                .append(" test images. Last: ").append(pct(last.accuracy())).append(" at step ").append(last.step())
                .append("; best: ").append(pct(best.accuracy())).append(" at step ").append(best.step())
                .append(".</figcaption></figure>\n</section>\n");
    }

    private static String featureName(String features) {
        return "cls_mean".equals(features) ? "[cls ; mean patch token] features" : features + " features";
    }

    private static void probe(StringBuilder h, ProbeResult p) {
        h.append("<section>\n<h2>Probe</h2>\n<p>").append(p.trainSize()).append(" train / ").append(p.testSize())
                .append(" test images, ").append(p.numClasses()).append(" classes; frozen, standardized features "
                        + "(").append(esc(p.featuresDescription())).append(" after the encoder's final LayerNorm). "
                        + "Test accuracy:</p>\n")
                .append("<table class=\"probe\">\n<thead><tr><th>encoder</th><th>k-NN (k = ").append(p.k())
                .append(")</th><th>linear probe</th><th class=\"minor\">cls k-NN</th><th class=\"minor\">cls linear"
                        + "</th><th class=\"minor\">mean k-NN</th><th class=\"minor\">mean linear</th>"
                        + "<th class=\"minor\">dim</th></tr></thead>\n<tbody>\n");
        double bestKnn = Math.max(p.pretrained().knn(), Math.max(p.randomInit().knn(), p.rawPixels().knn()));
        double bestLin = Math.max(p.pretrained().linear(), Math.max(p.randomInit().linear(), p.rawPixels().linear()));
        probeRow(h, "pretrained", p.pretrained(), p.pretrainedCls(), p.pretrainedMean(), bestKnn, bestLin);
        probeRow(h, "random init (seed " + p.randomInitSeed() + ")", p.randomInit(), p.randomInitCls(),
                p.randomInitMean(), bestKnn, bestLin);
        probeRow(h, "raw pixels (" + p.rawPixelShape() + ")", p.rawPixels(), null, null, bestKnn, bestLin);
        h.append("</tbody>\n</table>\n<p class=\"note\">k-NN: Euclidean distance, majority vote, ties to the class "
                + "of the nearest neighbour. Linear probe: softmax regression with L2 ").append(fmt(p.l2()))
                .append(", full-batch L-BFGS until the gradient norm is below ").append(fmt(p.tolerance()))
                .append(" &times; max(1, initial) or ").append(p.maxIterations()).append(" iterations; iterations: ")
                .append(iterations(p.pretrained())).append(" / ").append(iterations(p.randomInit())).append(" / ")
                .append(iterations(p.rawPixels())).append(". Random init: the same configuration freshly created "
                        + "with the seed shown.</p>\n</section>\n");
    }

    private static String iterations(ProbeScores s) {
        return s.iterations() + (s.converged() ? "" : " (not converged)");
    }

    private static void probeRow(StringBuilder h, String name, ProbeScores s, ProbeScores cls, ProbeScores mean,
            double bestKnn, double bestLin) {
        h.append("<tr><td>").append(esc(name)).append("</td>").append(pctCell(s.knn(), s.knn() == bestKnn))
                .append(pctCell(s.linear(), s.linear() == bestLin))
                .append("<td class=\"minor\">").append(cls == null ? "&ndash;" : pct(cls.knn())).append("</td>")
                .append("<td class=\"minor\">").append(cls == null ? "&ndash;" : pct(cls.linear())).append("</td>")
                .append("<td class=\"minor\">").append(mean == null ? "&ndash;" : pct(mean.knn())).append("</td>")
                .append("<td class=\"minor\">").append(mean == null ? "&ndash;" : pct(mean.linear())).append("</td>")
                .append("<td class=\"minor\">").append(s.dim()).append("</td></tr>\n");
    }

    private static String pctCell(double v, boolean best) {
        return "<td class=\"num" + (best ? " best" : "") + "\">" + pct(v) + "</td>";
    }

    private static String pct(double v) {
        return String.format(Locale.ROOT, "%.2f%%", 100 * v);
    }

    private static void card(StringBuilder h, String label, String value) {
        h.append("<div class=\"card\"><div class=\"label\">").append(esc(label)).append("</div><div class=\"value\">")
                .append(value).append("</div></div>\n");
    }

    private static void metricRow(StringBuilder h, String name, double last, double recent) {
        h.append("<tr><td>").append(esc(name)).append("</td><td class=\"num\">").append(num(last))
                .append("</td><td class=\"num\">").append(num(recent)).append("</td></tr>\n");
    }

    private static void table(StringBuilder h, Map<String, ?> entries) {
        h.append("<table class=\"kv\">\n<tbody>\n");
        for (Map.Entry<String, ?> e : entries.entrySet()) {
            h.append("<tr><th>").append(esc(e.getKey())).append("</th><td>").append(esc(value(e.getValue())))
                    .append("</td></tr>\n");
        }
        h.append("</tbody>\n</table>\n");
    }

    private static Map<String, Object> configMap(CaeConfig c) {
        Map<String, Object> m = new java.util.LinkedHashMap<>();
        try {
            JsonNode n = JSON.readTree(c.toJson());
            for (Iterator<Map.Entry<String, JsonNode>> it = n.fields(); it.hasNext();) {
                Map.Entry<String, JsonNode> e = it.next();
                m.put(e.getKey(), e.getValue().isTextual() ? e.getValue().asText() : e.getValue().toString());
            }
        } catch (JsonProcessingException e) {
            m.put("config", c.toJson());
        }
        return m;
    }

    private static String value(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof CharSequence || v instanceof Number || v instanceof Boolean || v instanceof Path
                || v instanceof Enum<?>) {
            return v.toString();
        }
        if (v instanceof double[] d) {
            return Arrays.toString(d);
        }
        if (v instanceof float[] f) {
            return Arrays.toString(f);
        }
        if (v instanceof int[] i) {
            return Arrays.toString(i);
        }
        try {
            return JSON.writeValueAsString(v);
        } catch (JsonProcessingException e) {
            return v.toString();
        }
    }

    private static double mean(List<MetricsRecord> records, java.util.function.ToDoubleFunction<MetricsRecord> f) {
        return records.stream().mapToDouble(f).filter(Double::isFinite).average().orElse(Double.NaN);
    }

    private static String describe(CaeConfig c) {
        return String.format(Locale.ROOT, "ViT %d wide, depth %d, %d heads; regressor %d, decoder %d; %dx%dx%d images, "
                + "patch %d", c.embedDim(), c.depth(), c.numHeads(), c.regressorDepth(), c.decoderDepth(), c.imgSize(),
                c.imgSize(), c.inChans(), c.patchSize());
    }

    private static String num(double v) {
        if (!Double.isFinite(v)) {
            return "&ndash;";
        }
        double a = Math.abs(v);
        if (a != 0 && (a < 1e-3 || a >= 1e5)) {
            return String.format(Locale.ROOT, "%.3e", v);
        }
        return String.format(Locale.ROOT, a >= 100 ? "%.1f" : "%.4f", v);
    }

    private static String fmt(double v) {
        String s = String.format(Locale.ROOT, "%.0e", v);
        return v >= 0.01 && v < 1000 ? String.format(Locale.ROOT, "%s", stripZeros(v)) : s.replace("e-0", "e-");
    }

    private static String stripZeros(double v) {
        String s = Double.toString(v);
        return s.endsWith(".0") ? s.substring(0, s.length() - 2) : s;
    }

    private static String duration(double seconds) {
        if (!Double.isFinite(seconds)) {
            return "&ndash;";
        }
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%dh %02dm", s / 3600, s / 60 % 60)
                : s >= 60 ? String.format(Locale.ROOT, "%dm %02ds", s / 60, s % 60) : s + " s";
    }

    static String esc(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '&' -> b.append("&amp;");
                case '"' -> b.append("&quot;");
                case '\'' -> b.append("&#39;");
                default -> b.append(c);
            }
        }
        return b.toString();
    }

    private static final String CSS = """
            :root { --ink: #1d2433; --muted: #667085; --line: #e4e7ec; --accent: #1f4e9a; --bg: #f7f8fa; }
            * { box-sizing: border-box; }
            body { margin: 0; background: var(--bg); color: var(--ink);
                   font: 15px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; }
            main { max-width: 1100px; margin: 0 auto; padding: 28px 24px 48px; }
            header { border-bottom: 2px solid var(--accent); margin-bottom: 8px; }
            h1 { font-size: 26px; margin: 0 0 4px; }
            h2 { font-size: 19px; margin: 0 0 12px; }
            h3 { font-size: 15px; margin: 0 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
            .sub { color: var(--muted); margin: 0 0 14px; }
            section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px;
                      margin: 18px 0; }
            .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px;
                     margin-bottom: 14px; }
            .card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
            .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
            .card .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
            table { border-collapse: collapse; width: 100%; }
            th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
            thead th { font-size: 13px; color: var(--muted); font-weight: 600; border-bottom: 2px solid var(--line); }
            td.num, .probe td, .metrics td.num { font-variant-numeric: tabular-nums; }
            .probe td:not(:first-child), .probe th:not(:first-child), .metrics td.num, .metrics th:not(:first-child)
                { text-align: right; }
            .probe td.best { font-weight: 700; color: var(--accent); }
            .minor { color: var(--muted); font-size: 13px; }
            .kv th { width: 45%; font-weight: 500; color: var(--muted); font-family: "DejaVu Sans Mono", Menlo, monospace;
                     font-size: 13px; }
            .kv td { font-family: "DejaVu Sans Mono", Menlo, monospace; font-size: 13px; word-break: break-word; }
            .cols { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
            @media (max-width: 800px) { .cols { grid-template-columns: 1fr; } }
            figure { margin: 0; }
            img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
            figcaption, .note, .muted { color: var(--muted); font-size: 13px; margin-top: 8px; }
            .warn { color: #b42318; }
            """;
}
