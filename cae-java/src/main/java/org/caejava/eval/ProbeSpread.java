package org.caejava.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.function.ToDoubleFunction;

/**
 * The probe scores of several runs that differ only in their seed, summarized per encoder, feature
 * and classifier as mean, sample standard deviation, minimum and maximum: how much of a difference
 * between two recipes is the seed's.
 *
 * <p>{@link #toJson()} is the {@code probe-seeds.json} schema: {@code {"runs": 3, "random_init_seeds":
 * [0, 1, 2], "pretrained": {"knn": {"mean": 0.71, "sd": 0.004, "min": 0.705, "max": 0.716, "values":
 * [...]}, "linear": {...}, "knn_cls": ..., "linear_mean": ...}, "random_init": {...}, "raw_pixels":
 * {"knn": ..., "linear": ...}}}}: the unsuffixed keys are the [cls ; mean] features, as in {@code
 * probe.json}.
 *
 * <p>Owns nothing but its heap data, and is not changed after {@link #of}: several threads may
 * read it.
 */
public final class ProbeSpread {

    /** The file name {@code cae pretrain --seeds N} writes. */
    public static final String FILE = "probe-seeds.json";

    /**
     * Mean, sample standard deviation (0 for one value), minimum, maximum and the values. The
     * record does not copy {@code values}; it is safe to share while nobody changes that array.
     *
     * @param mean the mean of the values
     * @param sd the sample standard deviation, 0 for one value
     * @param min the smallest value
     * @param max the largest value
     * @param values the values, one per run, in the order of the results
     */
    public record Stat(double mean, double sd, double min, double max, double[] values) {

        static Stat of(double[] v) {
            double sum = 0;
            double min = Double.POSITIVE_INFINITY;
            double max = Double.NEGATIVE_INFINITY;
            for (double x : v) {
                sum += x;
                min = Math.min(min, x);
                max = Math.max(max, x);
            }
            double mean = sum / v.length;
            double ss = 0;
            for (double x : v) {
                ss += (x - mean) * (x - mean);
            }
            return new Stat(mean, v.length > 1 ? Math.sqrt(ss / (v.length - 1)) : 0, min, max, v.clone());
        }
    }

    /**
     * One row: an encoder's scores with one kind of feature. A plain value, safe to share between
     * threads.
     *
     * @param encoder "pretrained", "random_init" or "raw_pixels"
     * @param features "cls_mean", "cls", "mean" or "pixels"
     * @param knn the spread of the k-NN test accuracy
     * @param linear the spread of the linear probe's test accuracy
     */
    public record Row(String encoder, String features, Stat knn, Stat linear) {}

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final List<ProbeResult> results;
    private final List<Row> rows = new ArrayList<>();

    private ProbeSpread(List<ProbeResult> results) {
        this.results = List.copyOf(results);
        add("pretrained", "cls_mean", ProbeResult::pretrained);
        add("pretrained", "cls", ProbeResult::pretrainedCls);
        add("pretrained", "mean", ProbeResult::pretrainedMean);
        add("random_init", "cls_mean", ProbeResult::randomInit);
        add("random_init", "cls", ProbeResult::randomInitCls);
        add("random_init", "mean", ProbeResult::randomInitMean);
        add("raw_pixels", "pixels", ProbeResult::rawPixels);
    }

    /**
     * The spread over the given results (at least one; all from the same data and probe settings).
     *
     * @param results the probe results, one per seed
     * @return the spread; a feature kind missing from any result has no row
     * @throws IllegalArgumentException when {@code results} is empty
     */
    public static ProbeSpread of(List<ProbeResult> results) {
        if (results.isEmpty()) {
            throw new IllegalArgumentException("no probe results to summarize");
        }
        return new ProbeSpread(results);
    }

    /**
     * Every row, encoders in the order pretrained, random init, raw pixels.
     *
     * @return the spread's own list; not to be changed
     */
    public List<Row> rows() {
        return rows;
    }

    /**
     * The row of an encoder ("pretrained", "random_init", "raw_pixels") and features ("mean", "cls", "cls_mean", "pixels").
     *
     * @param encoder the encoder's name
     * @param features the kind of features
     * @return the row
     * @throws IllegalArgumentException when there is no such row
     */
    public Row row(String encoder, String features) {
        for (Row r : rows) {
            if (r.encoder().equals(encoder) && r.features().equals(features)) {
                return r;
            }
        }
        throw new IllegalArgumentException("no row for " + encoder + " / " + features);
    }

    private void add(String encoder, String features, Function<ProbeResult, ProbeScores> get) {
        for (ProbeResult r : results) {
            if (get.apply(r) == null) {
                return;  // a result read from an older probe.json without these features
            }
        }
        rows.add(new Row(encoder, features, stat(get, ProbeScores::knn), stat(get, ProbeScores::linear)));
    }

    private Stat stat(Function<ProbeResult, ProbeScores> get, ToDoubleFunction<ProbeScores> score) {
        double[] v = new double[results.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = score.applyAsDouble(get.apply(results.get(i)));
        }
        return Stat.of(v);
    }

    /**
     * The spread as {@code probe-seeds.json} holds it (see the class comment).
     *
     * @return a new JSON object
     */
    public ObjectNode toJson() {
        ObjectNode root = JSON.createObjectNode();
        root.put("runs", results.size());
        ArrayNode seeds = root.putArray("random_init_seeds");
        results.forEach(r -> seeds.add(r.randomInitSeed()));
        ArrayNode steps = root.putArray("checkpoint_steps");
        results.forEach(r -> steps.add(r.checkpointStep()));
        for (Row r : rows) {
            ObjectNode enc = root.has(r.encoder()) ? (ObjectNode) root.get(r.encoder()) : root.putObject(r.encoder());
            String suffix = r.features().equals("cls_mean") || r.features().equals("pixels") ? "" : "_" + r.features();
            stat(enc.putObject("knn" + suffix), r.knn());
            stat(enc.putObject("linear" + suffix), r.linear());
        }
        return root;
    }

    private static void stat(ObjectNode o, Stat s) {
        o.put("mean", s.mean());
        o.put("sd", s.sd());
        o.put("min", s.min());
        o.put("max", s.max());
        ArrayNode v = o.putArray("values");
        for (double x : s.values()) {
            v.add(x);
        }
    }

    /**
     * Writes {@link #toJson()} to {@code file} (for instance {@value #FILE}).
     *
     * @param file the file, replaced when it exists; missing parent folders are created
     * @throws IOException when the file cannot be written
     */
    public void write(Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        Files.writeString(file, JSON.writeValueAsString(toJson()) + "\n");
    }

    /**
     * A plain-text table: accuracy in percent, mean ± standard deviation [min, max].
     *
     * @return the table, lines ended by the platform's line separator
     */
    public String toTable() {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "Probe over %d seeds: mean ± sample standard deviation [min, max], test "
                + "accuracy in %%%n", results.size()));
        b.append(String.format(Locale.ROOT, "%-12s %-10s %-28s %-28s%n", "encoder", "features", "k-NN", "linear"));
        for (Row r : rows) {
            b.append(String.format(Locale.ROOT, "%-12s %-10s %-28s %-28s%n", r.encoder().replace('_', ' '),
                    r.features().equals("cls_mean") ? "cls;mean" : r.features(), cell(r.knn()), cell(r.linear())));
        }
        return b.toString();
    }

    private static String cell(Stat s) {
        return String.format(Locale.ROOT, "%.2f ± %.2f [%.2f, %.2f]", 100 * s.mean(), 100 * s.sd(), 100 * s.min(),
                100 * s.max());
    }
}
