package org.caejava.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
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

/**
 * Appends one JSON record per logged training step to {@code metrics.jsonl} in a run's folder
 * (see {@link MetricsRecord} for the fields), flushed line by line so the file can be read while
 * the run goes on and survives a crash.
 *
 * <p>Resume: {@link #open(Path, long, int)} with the checkpoint's step k first drops the records
 * after step k (rewriting the file atomically; a torn last line from a crash goes too), then
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
                MetricsRecord r = parse(line);
                if (r != null && r.step() <= resumeStep) {
                    kept.add(line);
                    if (Double.isFinite(r.elapsedSeconds())) {
                        elapsed = Math.max(elapsed, r.elapsedSeconds());
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
                elapsedBefore + (System.nanoTime() - startNanos) / 1e9));
    }

    /** Appends one record and flushes it. */
    public synchronized void append(MetricsRecord r) {
        try {
            out.write(JSON.writeValueAsString(MetricsRecord.toJson(JSON, r)));
            out.write('\n');
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("writing step " + r.step() + " to " + file, e);
        }
    }

    @Override
    public synchronized void close() throws IOException {
        out.close();
    }

    /**
     * The records of a {@code metrics.jsonl}, the last one of each step, in step order. Lines that
     * are not records (a torn last line) are skipped; a missing file gives an empty list.
     */
    public static List<MetricsRecord> read(Path file) throws IOException {
        if (!Files.exists(file)) {
            return List.of();
        }
        TreeMap<Long, MetricsRecord> byStep = new TreeMap<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            MetricsRecord r = parse(line);
            if (r != null) {
                byStep.put(r.step(), r);
            }
        }
        return List.copyOf(byStep.values());
    }

    private static MetricsRecord parse(String line) {
        if (line.isBlank()) {
            return null;
        }
        try {
            return MetricsRecord.fromJson(JSON.readTree(line));
        } catch (JsonProcessingException | IllegalArgumentException e) {
            return null;
        }
    }
}
