package org.caejava.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The probe of three encoders on one labeled split: the pretrained model, the same configuration
 * freshly initialized, and raw pixels. The headline features of the model encoders ({@link
 * #features()}, {@link #FEATURES} for new results) are the cls token and the mean patch token side
 * by side, [cls ; mean], both after the encoder's final LayerNorm; the scores of each alone are kept
 * alongside ({@code *Cls}, {@code *Mean}).
 *
 * <p>{@link #toJson()} is the {@code probe.json} schema:
 * <pre>{@code
 * {"pretrained":  {"knn": 0.83, "linear": 0.85, "dim": 256, "linear_train": 0.88,
 *                  "linear_iterations": 312, "linear_converged": true, "linear_grad_norm_rel": 9e-6,
 *                  "linear_loss": 0.41,
 *                  "knn_cls": 0.80, "linear_cls": 0.84, "dim_cls": 128, ... the same per variant,
 *                  "knn_mean": 0.80, "linear_mean": 0.83, "dim_mean": 128, ...},
 *  "random_init": {... the same ..., "seed": 0},
 *  "raw_pixels":  {"knn": ..., "linear": ..., "dim": 784, "shape": "1x28x28", ...},
 *  "features": "cls_mean", "standardized": true, "k": 20, "distance": "euclidean",
 *  "knn_tie_break": "nearest_neighbour", "optimizer": "L-BFGS", "l2": 1e-4, "tolerance": 1e-5,
 *  "max_iterations": 3000, "train_size": 10000, "test_size": 2000, "num_classes": 10,
 *  "checkpoint_step": 9360, "seconds": 42.1}
 * }</pre>
 * Files written before the [cls ; mean] headline ({@code "features": "mean"}) read back with the
 * mean patch token as headline and no {@code *Mean} variant.
 *
 * <p>A plain value: owns nothing, immutable, safe to share between threads.
 *
 * @param pretrained     the pretrained encoder on the headline features
 * @param pretrainedCls  ... on the cls token alone (null when not measured)
 * @param pretrainedMean ... on the mean patch token alone (null when not measured)
 * @param randomInit     the randomly initialized encoder on the headline features
 * @param randomInitCls  ... on the cls token alone (null when not measured)
 * @param randomInitMean ... on the mean patch token alone (null when not measured)
 * @param rawPixels      the raw normalized pixels
 * @param features       the headline features: {@code "cls_mean"}, or {@code "mean"} in older files
 * @param rawPixelShape  the shape of the raw-pixel features, e.g. "1x28x28", noting any pooling
 * @param randomInitSeed the seed of the randomly initialized encoder
 * @param k              neighbours of the k-NN vote
 * @param l2             L2 penalty of the linear probe's weights
 * @param tolerance      the relative gradient norm at which the linear probe's fit stops
 * @param maxIterations  the iteration limit of that fit
 * @param trainSize      training images scored
 * @param testSize       test images scored
 * @param numClasses     classes of the labels
 * @param checkpointStep training steps of the pretrained model
 * @param seconds        wall time of the whole probe
 */
public record ProbeResult(ProbeScores pretrained, ProbeScores pretrainedCls, ProbeScores pretrainedMean,
        ProbeScores randomInit, ProbeScores randomInitCls, ProbeScores randomInitMean, ProbeScores rawPixels,
        String features, String rawPixelShape, long randomInitSeed, int k, double l2, double tolerance,
        int maxIterations, int trainSize, int testSize, int numClasses, long checkpointStep, double seconds) {

    /** The headline features of new results: [cls ; mean patch token]. */
    public static final String FEATURES = "cls_mean";

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /**
     * What {@link #features()} means, in words.
     *
     * @return "[cls ; mean patch token]" or "mean patch token"
     */
    public String featuresDescription() {
        return FEATURES.equals(features) ? "[cls ; mean patch token]" : "mean patch token";
    }

    /**
     * The result as {@code probe.json} holds it (see the class comment).
     *
     * @return a new JSON object
     */
    public ObjectNode toJson() {
        ObjectNode root = JSON.createObjectNode();
        scores(root.putObject("pretrained"), pretrained, pretrainedCls, pretrainedMean);
        scores(root.putObject("random_init"), randomInit, randomInitCls, randomInitMean).put("seed", randomInitSeed);
        scores(root.putObject("raw_pixels"), rawPixels, null, null).put("shape", rawPixelShape);
        root.put("features", features);
        root.put("features_note", FEATURES.equals(features)
                ? "[cls ; mean patch token] after the encoder's final LayerNorm; *_cls: the cls token; *_mean: the "
                        + "mean patch token"
                : "mean patch token after the encoder's final LayerNorm; *_cls: the cls token");
        root.put("standardized", true);
        root.put("k", k);
        root.put("distance", "euclidean");
        root.put("knn_tie_break", "nearest_neighbour");
        root.put("optimizer", "L-BFGS");
        root.put("l2", l2);
        root.put("tolerance", tolerance);
        root.put("max_iterations", maxIterations);
        root.put("train_size", trainSize);
        root.put("test_size", testSize);
        root.put("num_classes", numClasses);
        root.put("checkpoint_step", checkpointStep);
        root.put("seconds", seconds);
        return root;
    }

    private static ObjectNode scores(ObjectNode o, ProbeScores s, ProbeScores cls, ProbeScores mean) {
        o.put("knn", s.knn());
        o.put("linear", s.linear());
        o.put("dim", s.dim());
        o.put("linear_train", s.linearTrain());
        o.put("linear_iterations", s.iterations());
        o.put("linear_converged", s.converged());
        o.put("linear_grad_norm_rel", s.relativeGradNorm());
        o.put("linear_loss", s.loss());
        variant(o, "_cls", cls);
        variant(o, "_mean", mean);
        return o;
    }

    private static void variant(ObjectNode o, String suffix, ProbeScores s) {
        if (s == null) {
            return;
        }
        o.put("knn" + suffix, s.knn());
        o.put("linear" + suffix, s.linear());
        o.put("dim" + suffix, s.dim());
        o.put("linear" + suffix + "_train", s.linearTrain());
        o.put("linear" + suffix + "_iterations", s.iterations());
        o.put("linear" + suffix + "_converged", s.converged());
        o.put("linear" + suffix + "_grad_norm_rel", s.relativeGradNorm());
        o.put("linear" + suffix + "_loss", s.loss());
    }

    /**
     * Writes {@link #toJson()} to {@code file} (for instance {@code probe.json}).
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
     * Reads a {@code probe.json} written by {@link #write}.
     *
     * @param file the file
     * @return the result it holds
     * @throws IOException when the file cannot be read, is not JSON, or lacks an encoder's scores
     */
    public static ProbeResult read(Path file) throws IOException {
        JsonNode r = JSON.readTree(file.toFile());
        try {
            String features = r.path("features").asText("mean");
            return new ProbeResult(scores(r, "pretrained", ""), scores(r, "pretrained", "_cls"),
                    scores(r, "pretrained", "_mean"), scores(r, "random_init", ""), scores(r, "random_init", "_cls"),
                    scores(r, "random_init", "_mean"), scores(r, "raw_pixels", ""), features,
                    r.path("raw_pixels").path("shape").asText(""), r.path("random_init").path("seed").asLong(),
                    r.path("k").asInt(), r.path("l2").asDouble(), r.path("tolerance").asDouble(),
                    r.path("max_iterations").asInt(), r.path("train_size").asInt(), r.path("test_size").asInt(),
                    r.path("num_classes").asInt(), r.path("checkpoint_step").asLong(), r.path("seconds").asDouble());
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    private static ProbeScores scores(JsonNode root, String encoder, String suffix) {
        JsonNode o = root.get(encoder);
        if (o == null || !o.isObject()) {
            throw new IllegalArgumentException("no \"" + encoder + "\" object");
        }
        if (!o.has("knn" + suffix)) {
            if (suffix.isEmpty()) {
                throw new IllegalArgumentException("\"" + encoder + "\" has no \"knn\"");
            }
            return null;
        }
        String lin = "linear" + suffix;
        int dim = o.has("dim" + suffix) ? o.path("dim" + suffix).asInt() : o.path("dim").asInt();
        return new ProbeScores(dim, o.path("knn" + suffix).asDouble(), o.path(lin).asDouble(),
                o.path(lin + "_train").asDouble(), o.path(lin + "_iterations").asInt(),
                o.path(lin + "_converged").asBoolean(), o.path(lin + "_grad_norm_rel").asDouble(),
                o.path(lin + "_loss").asDouble());
    }

    /**
     * A plain-text table for the terminal.
     *
     * @return the table, lines ended by the platform's line separator
     */
    public String toTable() {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "Probe on %d train / %d test images, %d classes; features: %s "
                + "(standardized)%n", trainSize, testSize, numClasses, featuresDescription()));
        boolean both = FEATURES.equals(features);
        b.append(String.format(Locale.ROOT, "%-12s %11s %10s %6s %9s %11s %10s %12s%n", "encoder",
                "k-NN (k=" + k + ")", "linear", "dim", "cls k-NN", "cls linear", both ? "mean k-NN" : "",
                both ? "mean linear" : ""));
        row(b, "pretrained", pretrained, pretrainedCls, pretrainedMean);
        row(b, "random init", randomInit, randomInitCls, randomInitMean);
        row(b, "raw pixels", rawPixels, null, null);
        b.append(String.format(Locale.ROOT, "linear probe: softmax regression, L-BFGS, L2 %s; iterations %s "
                + "(stop: gradient norm < %s x max(1, initial) or %d iterations)%n", fmt(l2),
                iterations(), fmt(tolerance), maxIterations));
        b.append(String.format(Locale.ROOT, "random init: the same configuration created with seed %d; raw pixels: "
                + "%s normalized values%n", randomInitSeed, rawPixelShape));
        return b.toString();
    }

    private String iterations() {
        StringBuilder s = new StringBuilder();
        ProbeScores[] all = {pretrained, randomInit, rawPixels};
        for (int i = 0; i < all.length; i++) {
            s.append(i == 0 ? "" : " / ").append(all[i].iterations()).append(all[i].converged() ? "" : " (not converged)");
        }
        return s.toString();
    }

    private static void row(StringBuilder b, String name, ProbeScores s, ProbeScores cls, ProbeScores mean) {
        b.append(String.format(Locale.ROOT, "%-12s %11s %10s %6d %9s %11s %10s %12s%n", name, pct(s.knn()),
                pct(s.linear()), s.dim(), cls == null ? "-" : pct(cls.knn()), cls == null ? "-" : pct(cls.linear()),
                mean == null ? "-" : pct(mean.knn()), mean == null ? "-" : pct(mean.linear())));
    }

    static String pct(double v) {
        return String.format(Locale.ROOT, "%.2f%%", 100 * v);
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, "%.0e", v).replace("e-0", "e-");
    }
}
