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
 * freshly initialized, and raw pixels. The headline features of the model encoders are the mean
 * patch tokens after the encoder's final LayerNorm ({@link #FEATURES}); the cls-token scores are
 * kept alongside ({@code pretrainedCls}, {@code randomInitCls}).
 *
 * <p>{@link #toJson()} is the {@code probe.json} schema:
 * <pre>{@code
 * {"pretrained":  {"knn": 0.83, "linear": 0.85, "dim": 128, "linear_train": 0.88,
 *                  "linear_iterations": 312, "linear_converged": true, "linear_grad_norm_rel": 9e-6,
 *                  "linear_loss": 0.41, "knn_cls": 0.80, "linear_cls": 0.84, "linear_cls_iterations": 280,
 *                  "linear_cls_converged": true},
 *  "random_init": {... the same ..., "seed": 0},
 *  "raw_pixels":  {"knn": ..., "linear": ..., "dim": 784, "shape": "1x28x28", ...},
 *  "features": "mean", "standardized": true, "k": 20, "distance": "euclidean",
 *  "knn_tie_break": "nearest_neighbour", "optimizer": "L-BFGS", "l2": 1e-4, "tolerance": 1e-5,
 *  "max_iterations": 3000, "train_size": 10000, "test_size": 2000, "num_classes": 10,
 *  "checkpoint_step": 9360, "seconds": 42.1}
 * }</pre>
 */
public record ProbeResult(ProbeScores pretrained, ProbeScores pretrainedCls, ProbeScores randomInit,
        ProbeScores randomInitCls, ProbeScores rawPixels, String rawPixelShape, long randomInitSeed, int k, double l2,
        double tolerance, int maxIterations, int trainSize, int testSize, int numClasses, long checkpointStep,
        double seconds) {

    /** Which encoder output the headline numbers use: the mean patch token. */
    public static final String FEATURES = "mean";

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public ObjectNode toJson() {
        ObjectNode root = JSON.createObjectNode();
        scores(root.putObject("pretrained"), pretrained, pretrainedCls);
        scores(root.putObject("random_init"), randomInit, randomInitCls).put("seed", randomInitSeed);
        scores(root.putObject("raw_pixels"), rawPixels, null).put("shape", rawPixelShape);
        root.put("features", FEATURES);
        root.put("features_note", "mean patch token after the encoder's final LayerNorm; *_cls: the cls token");
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

    private static ObjectNode scores(ObjectNode o, ProbeScores s, ProbeScores cls) {
        o.put("knn", s.knn());
        o.put("linear", s.linear());
        o.put("dim", s.dim());
        o.put("linear_train", s.linearTrain());
        o.put("linear_iterations", s.iterations());
        o.put("linear_converged", s.converged());
        o.put("linear_grad_norm_rel", s.relativeGradNorm());
        o.put("linear_loss", s.loss());
        if (cls != null) {
            o.put("knn_cls", cls.knn());
            o.put("linear_cls", cls.linear());
            o.put("linear_cls_train", cls.linearTrain());
            o.put("linear_cls_iterations", cls.iterations());
            o.put("linear_cls_converged", cls.converged());
            o.put("linear_cls_grad_norm_rel", cls.relativeGradNorm());
            o.put("linear_cls_loss", cls.loss());
        }
        return o;
    }

    /** Writes {@link #toJson()} to {@code file} (for instance {@code probe.json}). */
    public void write(Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        Files.writeString(file, JSON.writeValueAsString(toJson()) + "\n");
    }

    /** Reads a {@code probe.json} written by {@link #write}. */
    public static ProbeResult read(Path file) throws IOException {
        JsonNode r = JSON.readTree(file.toFile());
        try {
            return new ProbeResult(scores(r, "pretrained", ""), scores(r, "pretrained", "_cls"),
                    scores(r, "random_init", ""), scores(r, "random_init", "_cls"), scores(r, "raw_pixels", ""),
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
        return new ProbeScores(o.path("dim").asInt(), o.path("knn" + suffix).asDouble(), o.path(lin).asDouble(),
                o.path(lin + "_train").asDouble(), o.path(lin + "_iterations").asInt(),
                o.path(lin + "_converged").asBoolean(), o.path(lin + "_grad_norm_rel").asDouble(),
                o.path(lin + "_loss").asDouble());
    }

    /** A plain-text table for the terminal. */
    public String toTable() {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "Probe on %d train / %d test images, %d classes; features: mean patch "
                + "token (standardized)%n", trainSize, testSize, numClasses));
        b.append(String.format(Locale.ROOT, "%-12s %11s %10s %6s %9s %11s%n", "encoder", "k-NN (k=" + k + ")",
                "linear", "dim", "cls k-NN", "cls linear"));
        row(b, "pretrained", pretrained, pretrainedCls);
        row(b, "random init", randomInit, randomInitCls);
        row(b, "raw pixels", rawPixels, null);
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

    private static void row(StringBuilder b, String name, ProbeScores s, ProbeScores cls) {
        b.append(String.format(Locale.ROOT, "%-12s %11s %10s %6d %9s %11s%n", name, pct(s.knn()), pct(s.linear()),
                s.dim(), cls == null ? "-" : pct(cls.knn()), cls == null ? "-" : pct(cls.linear())));
    }

    static String pct(double v) {
        return String.format(Locale.ROOT, "%.2f%%", 100 * v);
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, "%.0e", v).replace("e-0", "e-");
    }
}
