package org.caejava;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.caejava.api.ModelConfig;

/**
 * Reads and writes a {@link CaeConfig} as a JSON object with the official CAE argument names, the
 * rules described at {@link CaeConfig#fromJson(String, String)}. Each refusal of the text is one
 * line naming the source, the key and the value; the ranges are libcae's, checked by
 * {@link CaeConfig#validate(String)}.
 */
final class CaeConfigJson {

    private enum Kind { INT, REAL, TEXT }

    /** A key, its kind, and whether it may be left out. */
    private record Key(String name, Kind kind, boolean required) {}

    /** Every key in the order of {@link CaeConfig}'s JSON. */
    private static final Map<String, Key> KEYS = new LinkedHashMap<>();

    static {
        for (String k : new String[] {"img_size", "patch_size", "embed_dim", "depth", "num_heads"}) {
            add(k, Kind.INT, true);
        }
        for (String k : new String[] {"in_chans", "regressor_depth", "decoder_depth", "decoder_num_heads",
            "decoder_embed_dim"}) {
            add(k, Kind.INT, false);
        }
        for (String k : new String[] {"mlp_ratio", "layer_scale_init_value", "decoder_layer_scale_init_value",
            "align_loss_weight", "drop_path_rate", "layer_norm_eps", "norm_pix_eps"}) {
            add(k, Kind.REAL, false);
        }
        add("target", Kind.TEXT, false);
    }

    private static final ObjectMapper JSON =
            new ObjectMapper().configure(JsonParser.Feature.STRICT_DUPLICATE_DETECTION, true);

    private final JsonNode object;
    private final String source;

    private CaeConfigJson(JsonNode object, String source) {
        this.object = object;
        this.source = source;
    }

    private static void add(String name, Kind kind, boolean required) {
        KEYS.put(name, new Key(name, kind, required));
    }

    /** The keys a configuration object may have. */
    static Set<String> keys() {
        return KEYS.keySet();
    }

    /** A target's JSON name: its constant's name in lower case ({@code "pixel_norm"}). */
    static String targetName(ModelConfig.Target t) {
        return t.name().toLowerCase(Locale.ROOT);
    }

    /** The JSON object of a configuration, its keys in the order of {@code cae_model_config}. */
    static String write(CaeConfig config) {
        ModelConfig c = config.modelConfig();
        ObjectNode o = JSON.createObjectNode();
        o.put("img_size", c.imgSize());
        o.put("patch_size", c.patchSize());
        o.put("in_chans", c.inChans());
        o.put("embed_dim", c.embedDim());
        o.put("depth", c.depth());
        o.put("num_heads", c.numHeads());
        o.put("mlp_ratio", c.mlpRatio());
        o.put("regressor_depth", c.regressorDepth());
        o.put("decoder_depth", c.decoderDepth());
        o.put("decoder_num_heads", c.decoderNumHeads());
        o.put("decoder_embed_dim", c.decoderEmbedDim());
        o.put("layer_scale_init_value", c.layerScaleInitValue());
        o.put("decoder_layer_scale_init_value", c.decoderLayerScaleInitValue());
        o.put("align_loss_weight", c.alignLossWeight());
        o.put("drop_path_rate", c.dropPathRate());
        o.put("layer_norm_eps", c.layerNormEps());
        o.put("norm_pix_eps", c.normPixEps());
        o.put("target", targetName(c.target()));
        try {
            return JSON.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Parses and validates {@code json}; {@code source} names where it came from in every message. */
    static CaeConfig parse(String json, String source) {
        JsonNode tree;
        try {
            tree = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw refuse(source, "not valid JSON: " + oneLine(e.getOriginalMessage()));
        }
        if (tree == null || tree.isMissingNode()) {
            throw refuse(source, "the JSON text is empty");
        }
        if (!tree.isObject()) {
            throw refuse(source, "expected a JSON object of keys such as \"img_size\", found " + describe(tree));
        }
        return new CaeConfigJson(tree, source).read().validate(source);
    }

    private CaeConfig read() {
        for (Iterator<Map.Entry<String, JsonNode>> it = object.fields(); it.hasNext();) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!KEYS.containsKey(e.getKey())) {
                throw refuse(source, "unknown key \"" + e.getKey() + "\" (value " + describe(e.getValue())
                        + "); the closest known key is \"" + closest(e.getKey()) + "\"");
            }
        }
        for (Key k : KEYS.values()) {
            if (k.required() && !object.has(k.name())) {
                throw refuse(source, "required key \"" + k.name() + "\" is missing (required: img_size, "
                        + "patch_size, embed_dim, depth, num_heads)");
            }
        }
        // Keys left out take libcae's defaults, but the decoder's width and heads follow the encoder's.
        ModelConfig d = ModelConfig.defaults();
        int embedDim = integer("embed_dim", d.embedDim());
        int numHeads = integer("num_heads", d.numHeads());
        return new CaeConfig(new ModelConfig(integer("img_size", d.imgSize()), integer("patch_size", d.patchSize()),
                integer("in_chans", d.inChans()), embedDim, integer("depth", d.depth()), numHeads,
                real("mlp_ratio", d.mlpRatio()), integer("regressor_depth", d.regressorDepth()),
                integer("decoder_depth", d.decoderDepth()), integer("decoder_num_heads", numHeads),
                integer("decoder_embed_dim", embedDim), real("layer_scale_init_value", d.layerScaleInitValue()),
                real("decoder_layer_scale_init_value", d.decoderLayerScaleInitValue()),
                real("align_loss_weight", d.alignLossWeight()), real("drop_path_rate", d.dropPathRate()),
                real("layer_norm_eps", d.layerNormEps()), real("norm_pix_eps", d.normPixEps()),
                target("target", d.target())));
    }

    private int integer(String key, int fallback) {
        JsonNode v = object.get(key);
        if (v == null) {
            return fallback;
        }
        if (!v.isNumber()) {
            throw wrongType(key, v, "an integer");
        }
        double d = v.doubleValue();
        if (v.isFloatingPointNumber() && !(Double.isFinite(d) && d == Math.rint(d))) {
            throw wrongType(key, v, "an integer");
        }
        if (v.isIntegralNumber() ? !v.canConvertToInt() : Math.abs(d) > Integer.MAX_VALUE) {
            throw refuse(source, "\"" + key + "\" is " + v + ", expected an integer that fits in 32 bits");
        }
        return v.isIntegralNumber() ? v.intValue() : (int) d;
    }

    /** A real value, rounded to the float libcae holds. */
    private float real(String key, float fallback) {
        JsonNode v = object.get(key);
        if (v == null) {
            return fallback;
        }
        if (!v.isNumber()) {
            throw wrongType(key, v, "a number");
        }
        float f = (float) v.doubleValue();
        if (Float.isInfinite(f)) {
            throw refuse(source, "\"" + key + "\" is " + v + ", expected a number that fits in a 32-bit float");
        }
        return f;
    }

    private ModelConfig.Target target(String key, ModelConfig.Target fallback) {
        JsonNode v = object.get(key);
        if (v == null) {
            return fallback;
        }
        if (!v.isTextual()) {
            throw wrongType(key, v, "a string");
        }
        for (ModelConfig.Target t : ModelConfig.Target.values()) {
            if (targetName(t).equals(v.textValue())) {
                return t;
            }
        }
        String[] names = Arrays.stream(ModelConfig.Target.values()).map(t -> "\"" + targetName(t) + "\"")
                .toArray(String[]::new);
        throw refuse(source, "target is \"" + v.textValue() + "\", expected " + String.join(" or ", names));
    }

    private IllegalArgumentException wrongType(String key, JsonNode v, String expected) {
        return refuse(source, "\"" + key + "\" is " + describe(v) + ", expected " + expected);
    }

    /** A JSON value as it reads in a message, with its type where the text alone would mislead. */
    private static String describe(JsonNode v) {
        String text = oneLine(v.toString());
        if (text.length() > 60) {
            text = text.substring(0, 57) + "...";
        }
        if (v.isTextual()) {
            return text + " (a string)";
        }
        if (v.isArray()) {
            return text + " (an array)";
        }
        if (v.isObject()) {
            return text + " (an object)";
        }
        if (v.isFloatingPointNumber() && v.doubleValue() != Math.rint(v.doubleValue())) {
            return text + " (a fraction)";
        }
        return text;
    }

    /**
     * The known key nearest to {@code name} by edit distance; of equally near keys, the one sharing
     * the longest prefix ({@code drop_path}, the official script's option, is {@code drop_path_rate}).
     */
    static String closest(String name) {
        String lower = name.toLowerCase(Locale.ROOT);
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        int bestPrefix = -1;
        for (String k : KEYS.keySet()) {
            int d = editDistance(lower, k);
            int prefix = commonPrefix(lower, k);
            if (d < bestDistance || (d == bestDistance && prefix > bestPrefix)) {
                best = k;
                bestDistance = d;
                bestPrefix = prefix;
            }
        }
        return best;
    }

    private static int commonPrefix(String a, String b) {
        int n = 0;
        while (n < a.length() && n < b.length() && a.charAt(n) == b.charAt(n)) {
            n++;
        }
        return n;
    }

    private static int editDistance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                cur[j] = Math.min(sub, Math.min(prev[j], cur[j - 1]) + 1);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("\\s*\\R\\s*", " ").strip();
    }

    static IllegalArgumentException refuse(String source, String message) {
        return new IllegalArgumentException("model configuration (" + source + "): " + message);
    }
}
