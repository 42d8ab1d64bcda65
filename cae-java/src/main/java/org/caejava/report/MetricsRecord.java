package org.caejava.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One step line of {@code metrics.jsonl}: what a training step measured, with the seconds since
 * the run started ({@code elapsed_s}, continued across resumes), and in data-parallel runs the
 * milliseconds of the step spent averaging over the ranks ({@code reduce_ms}). Non-finite values are written as
 * JSON null and read back as NaN. (The file's k-NN probe lines, which have no "loss", are read by
 * {@link MetricsLog#readKnn}.)
 */
public record MetricsRecord(long step, long totalSteps, long epoch, double lr, double loss, double lossMain,
        double lossAlign, double gradNorm, boolean skipped, double imagesPerSecond, double dataWaitMs,
        double computeMs, double elapsedSeconds, double reduceMs) {

    static ObjectNode toJson(ObjectMapper json, MetricsRecord r) {
        ObjectNode o = json.createObjectNode();
        o.put("step", r.step);
        o.put("total_steps", r.totalSteps);
        o.put("epoch", r.epoch);
        number(o, "lr", r.lr);
        number(o, "loss", r.loss);
        number(o, "loss_main", r.lossMain);
        number(o, "loss_align", r.lossAlign);
        number(o, "grad_norm", r.gradNorm);
        o.put("skipped", r.skipped);
        number(o, "img_per_s", r.imagesPerSecond);
        number(o, "data_wait_ms", r.dataWaitMs);
        number(o, "compute_ms", r.computeMs);
        number(o, "elapsed_s", r.elapsedSeconds);
        if (r.reduceMs > 0) {
            number(o, "reduce_ms", r.reduceMs);  // data-parallel runs only
        }
        return o;
    }

    /** Parses one record; throws IllegalArgumentException when it has no integral "step". */
    static MetricsRecord fromJson(JsonNode o) {
        JsonNode step = o == null ? null : o.get("step");
        if (step == null || !step.isIntegralNumber()) {
            throw new IllegalArgumentException("a metrics record without an integer \"step\"");
        }
        return new MetricsRecord(step.asLong(), o.path("total_steps").asLong(0), o.path("epoch").asLong(0),
                number(o, "lr"), number(o, "loss"), number(o, "loss_main"), number(o, "loss_align"),
                number(o, "grad_norm"), o.path("skipped").asBoolean(false), number(o, "img_per_s"),
                number(o, "data_wait_ms"), number(o, "compute_ms"), number(o, "elapsed_s"), o.path("reduce_ms").asDouble(0));
    }

    private static void number(ObjectNode o, String key, double v) {
        if (Double.isFinite(v)) {
            o.put(key, v);
        } else {
            o.putNull(key);
        }
    }

    private static double number(JsonNode o, String key) {
        JsonNode v = o.get(key);
        return v != null && v.isNumber() ? v.asDouble() : Double.NaN;
    }
}
