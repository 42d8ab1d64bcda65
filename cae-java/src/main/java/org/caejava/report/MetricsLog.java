package org.caejava.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import org.caejava.StepMetrics;
import org.caejava.TrainingListener;
import org.caejava.eval.KnnPoint;

/**
 * Appends one JSON record per logged training step to {@code metrics.jsonl} in a run's folder
 * (see {@link MetricsRecord} for the fields), flushed line by line so the file can be read while
 * the run goes on and survives a crash.
 *
 * <p>The file also holds the k-NN probes taken during training ({@link #append(KnnPoint)}), one
 * line each, with the step and epoch but no {@code "loss"}:
 * {@code {"step":156,"epoch":1,"knn":0.7512,"knn_features":"cls_mean","knn_k":20,"knn_train":2000,
 * "knn_test":1000,"knn_seconds":1.9}}. {@link #read} returns the step records only, {@link #readKnn}
 * the probes only.
 *
 * <p>Resume: {@link #open(Path, long, int)} with the checkpoint's step k first drops the records
 * after step k, probes included (rewriting the file atomically; a torn last line from a crash goes too), then
 * appends, so the file again describes one run; the elapsed time continues from the last kept
 * record. A fresh run passes k = 0, which empties the file. Readers ({@link #read}) still keep only
 * the last record of each step, in case two writers ever shared a file.
 *
 * <pre>{@code
 * try (MetricsLog log = MetricsLog.open(outDir, model.state().step(), 10)) {
 *     CaeTrainer.builder()...listener(log).build().fit();
 * }
 * }</pre>
 */
public final class MetricsLog implements TrainingListener, AutoCloseable {

    public static final String FILE = "metrics.jsonl";

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final BufferedWriter out;
    private final int every;
    private final long startNanos;
    private final double elapsedBefore;

    private MetricsLog(Path file, BufferedWriter out, int every, double elapsedBefore) {
        this.file = file;
        this.out = out;
        this.every = every;
        this.elapsedBefore = elapsedBefore;
        this.startNanos = System.nanoTime();
    }

    /** A log for a run starting (k = 0) or resuming at step {@code resumeStep}, recording every step. */
    public static MetricsLog open(Path outDir, long resumeStep) throws IOException {
        return open(outDir, resumeStep, 1);
    }

    /**
     * A log in {@code outDir/metrics.jsonl} for a run that starts at step {@code resumeStep} (0 for
     * a fresh run), recording every {@code every}-th step and the last one.
     */
    public static MetricsLog open(Path outDir, long resumeStep, int every) throws IOException {
        if (every < 1) {
            throw new IllegalArgumentException("log every " + every + " steps, expected >= 1");
        }
        if (resumeStep < 0) {
            throw new IllegalArgumentException("resume step " + resumeStep);
        }
        Files.createDirectories(outDir);
        Path file = outDir.resolve(FILE);
        double elapsed = 0;
        if (Files.exists(file)) {
            List<String> kept = new ArrayList<>();
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                JsonNode o = tree(line);
                if (o != null && o.path("step").isIntegralNumber() && o.get("step").asLong() <= resumeStep) {
                    kept.add(line);
                    JsonNode e = o.get("elapsed_s");
                    if (e != null && e.isNumber() && Double.isFinite(e.asDouble())) {
                        elapsed = Math.max(elapsed, e.asDouble());
                    }
                }
            }
            Path tmp = file.resolveSibling(FILE + ".tmp");
            Files.write(tmp, kept, StandardCharsets.UTF_8);
            try {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        }
        BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND);
        return new MetricsLog(file, w, every, elapsed);
    }

    public Path file() {
        return file;
    }

    @Override
    public void onStep(StepMetrics m) {
        if (m.step() % every != 0 && m.step() != m.totalSteps()) {
            return;
        }
        append(new MetricsRecord(m.step(), m.totalSteps(), m.epoch(), m.lr(), m.loss(), m.lossMain(), m.lossAlign(),
                m.gradNorm(), m.skipped(), m.imagesPerSecond(), m.dataMs(), m.computeMs(),
                elapsedBefore + (System.nanoTime() - startNanos) / 1e9, m.reduceMs()));
    }

    /** Appends one record and flushes it. */
    public void append(MetricsRecord r) {
        write(MetricsRecord.toJson(JSON, r), r.step());
    }

    /** Appends one k-NN probe as its own line (without a "loss") and flushes it. */
    public void append(KnnPoint p) {
        ObjectNode o = JSON.createObjectNode();
        o.put("step", p.step());
        o.put("epoch", p.epoch());
        if (Double.isFinite(p.accuracy())) {
            o.put("knn", p.accuracy());
        } else {
            o.putNull("knn");
        }
        o.put("knn_features", p.features());
        o.put("knn_k", p.k());
        o.put("knn_train", p.trainSize());
        o.put("knn_test", p.testSize());
        o.put("knn_seconds", Math.round(p.seconds() * 1000) / 1000.0);
        write(o, p.step());
    }

    private synchronized void write(ObjectNode o, long step) {
        try {
            out.write(JSON.writeValueAsString(o));
            out.write('\n');
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("writing step " + step + " to " + file, e);
        }
    }

    @Override
    public synchronized void close() throws IOException {
        out.close();
    }

    /**
     * The step records of a {@code metrics.jsonl}, the last one of each step, in step order. Lines
     * that are not step records (a torn last line, a k-NN probe: lines without a "loss") are
     * skipped; a missing file gives an empty list.
     */
    public static List<MetricsRecord> read(Path file) throws IOException {
        TreeMap<Long, MetricsRecord> byStep = new TreeMap<>();
        for (JsonNode o : lines(file)) {
            if (o.has("loss")) {
                try {
                    MetricsRecord r = MetricsRecord.fromJson(o);
                    byStep.put(r.step(), r);
                } catch (IllegalArgumentException notARecord) {
                    // no integer step: skipped
                }
            }
        }
        return List.copyOf(byStep.values());
    }

    /**
     * The k-NN probes of a {@code metrics.jsonl} (lines with a "knn" and an integer "step"), the
     * last one of each step, in step order; a missing file gives an empty list. A probe without an
     * accuracy reads as NaN.
     */
    public static List<KnnPoint> readKnn(Path file) throws IOException {
        TreeMap<Long, KnnPoint> byStep = new TreeMap<>();
        for (JsonNode o : lines(file)) {
            if (o.has("knn") && o.path("step").isIntegralNumber()) {
                JsonNode v = o.get("knn");
                byStep.put(o.get("step").asLong(), new KnnPoint(o.get("step").asLong(), o.path("epoch").asLong(0),
                        v.isNumber() ? v.asDouble() : Double.NaN, o.path("knn_features").asText(""),
                        o.path("knn_k").asInt(0), o.path("knn_train").asInt(0), o.path("knn_test").asInt(0),
                        o.path("knn_seconds").isNumber() ? o.get("knn_seconds").asDouble() : Double.NaN));
            }
        }
        return List.copyOf(byStep.values());
    }

    /** The JSON objects of a file's lines, skipping lines that are not one (a torn last line). */
    private static List<JsonNode> lines(Path file) throws IOException {
        if (!Files.exists(file)) {
            return List.of();
        }
        List<JsonNode> out = new ArrayList<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            JsonNode o = tree(line);
            if (o != null) {
                out.add(o);
            }
        }
        return out;
    }

    private static JsonNode tree(String line) {
        if (line.isBlank()) {
            return null;
        }
        try {
            JsonNode o = JSON.readTree(line);
            return o != null && o.isObject() ? o : null;
        } catch (JsonProcessingException e) {
            return null;
        }
    }
}
