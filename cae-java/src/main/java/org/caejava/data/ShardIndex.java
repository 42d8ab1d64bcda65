package org.caejava.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * {@code index.json} of a prepared dataset: the image size, class names, pixel statistics, and
 * each split's shards in order with their image counts and file sizes.
 *
 * <pre>{@code
 * {"format": "cae-java/shards", "version": 1, "width": 64, "height": 64, "channels": 3,
 *  "class_names": ["cat", "dog"], "normalization": {"mean": [..], "std": [..]},
 *  "splits": {"train": [{"file": "shard-00000.fb", "count": 1000, "bytes": 12288512}, ...],
 *             "test": [...]},
 *  "info": {"source": "/data/photos", "interpolation": "bicubic"}}
 * }</pre>
 */
record ShardIndex(int width, int height, int channels, List<String> classNames, Normalization normalization,
        Map<String, List<ShardIndex.Entry>> splits, Map<String, String> info) {

    static final String FILE = "index.json";
    static final String FORMAT = "cae-java/shards";
    static final int VERSION = 1;
    private static final Pattern SHARD_NAME = Pattern.compile("shard-\\d{5,}\\.fb");
    private static final long MAX_INDEX_BYTES = 64L << 20;

    /** One shard file of a split. */
    record Entry(String file, long count, long bytes) {}

    static ShardIndex read(Path dir) throws IOException {
        Path file = dir.resolve(FILE);
        long bytes;
        try {
            bytes = Files.size(file);
        } catch (NoSuchFileException e) {
            throw new ImageDataException(dir + ": no " + FILE + " (not a folder written by cae prepare, or one it "
                    + "did not finish)");
        }
        if (bytes > MAX_INDEX_BYTES) {
            throw new ImageDataException(file + ": " + bytes + " bytes, too large for an index");
        }
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new ImageDataException(file + ": not valid JSON (" + e.getOriginalMessage() + ")", e);
        }
        Reader r = new Reader(file);
        if (root == null || !root.isObject()) {
            throw r.bad("the top level is not an object");
        }
        if (!FORMAT.equals(r.text(root, "format"))) {
            throw r.bad("\"format\" is \"" + root.path("format").asText() + "\", expected \"" + FORMAT + "\"");
        }
        long version = r.number(root, "version", 1, Integer.MAX_VALUE);
        if (version != VERSION) {
            throw r.bad("version " + version + "; this reader knows version " + VERSION);
        }
        int width = (int) r.number(root, "width", 1, 1 << 16);
        int height = (int) r.number(root, "height", 1, 1 << 16);
        int channels = (int) r.number(root, "channels", 1, 3);
        if (channels == 2) {
            throw r.bad("\"channels\" is 2; expected 1 or 3");
        }
        List<String> names = new ArrayList<>();
        for (JsonNode n : r.array(root, "class_names")) {
            if (!n.isTextual()) {
                throw r.bad("\"class_names\" holds " + n + ", not a string");
            }
            names.add(n.asText());
        }
        Normalization norm = null;
        JsonNode nn = root.get("normalization");
        if (nn != null && !nn.isNull()) {
            float[] mean = r.floats(nn, "mean", channels);
            float[] std = r.floats(nn, "std", channels);
            try {
                norm = new Normalization(mean, std);
            } catch (IllegalArgumentException e) {
                throw r.bad("\"normalization\": " + e.getMessage());
            }
        }
        JsonNode sn = root.get("splits");
        if (sn == null || !sn.isObject() || sn.isEmpty()) {
            throw r.bad("\"splits\" is missing or empty");
        }
        Map<String, List<Entry>> splits = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : sn.properties()) {
            if (!e.getValue().isArray()) {
                throw r.bad("split \"" + e.getKey() + "\" is not a list of shards");
            }
            List<Entry> shards = new ArrayList<>();
            for (JsonNode s : e.getValue()) {
                String f = r.text(s, "file");
                if (!SHARD_NAME.matcher(f).matches()) {
                    throw r.bad("split \"" + e.getKey() + "\" names the file \"" + f + "\", expected shard-NNNNN.fb");
                }
                shards.add(new Entry(f, r.number(s, "count", 1, Integer.MAX_VALUE),
                        r.number(s, "bytes", 8, Integer.MAX_VALUE)));
            }
            if (shards.isEmpty()) {
                throw r.bad("split \"" + e.getKey() + "\" has no shards");
            }
            splits.put(e.getKey(), List.copyOf(shards));
        }
        Map<String, String> info = new LinkedHashMap<>();
        JsonNode in = root.get("info");
        if (in != null && in.isObject()) {
            in.properties().forEach(e -> info.put(e.getKey(), e.getValue().asText()));
        }
        return new ShardIndex(width, height, channels, List.copyOf(names), norm, splits, info);
    }

    /** Writes the index to {@code dir} (to a temporary file first, then renamed over). */
    void write(Path dir) throws IOException {
        ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = mapper.createObjectNode();
        root.put("format", FORMAT).put("version", VERSION).put("width", width).put("height", height)
                .put("channels", channels);
        ArrayNode names = root.putArray("class_names");
        classNames.forEach(names::add);
        if (normalization != null) {
            ObjectNode n = root.putObject("normalization");
            ArrayNode mean = n.putArray("mean");
            ArrayNode std = n.putArray("std");
            for (float v : normalization.mean()) {
                mean.add(v);
            }
            for (float v : normalization.std()) {
                std.add(v);
            }
        }
        ObjectNode sn = root.putObject("splits");
        splits.forEach((split, shards) -> {
            ArrayNode a = sn.putArray(split);
            for (Entry e : shards) {
                a.addObject().put("file", e.file()).put("count", e.count()).put("bytes", e.bytes());
            }
        });
        ObjectNode in = root.putObject("info");
        info.forEach(in::put);
        Path tmp = dir.resolve(FILE + ".tmp");
        Files.write(tmp, mapper.writeValueAsBytes(root));
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
        Files.move(tmp, dir.resolve(FILE), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** Typed, checked access to the JSON, with messages that name the file. */
    private record Reader(Path file) {
        ImageDataException bad(String what) {
            return new ImageDataException(file + ": " + what);
        }

        String text(JsonNode n, String key) {
            JsonNode v = n.get(key);
            if (v == null || !v.isTextual()) {
                throw bad("\"" + key + "\" is missing or not a string");
            }
            return v.asText();
        }

        long number(JsonNode n, String key, long min, long max) {
            JsonNode v = n.get(key);
            if (v == null || !v.canConvertToExactIntegral() || !v.canConvertToLong()) {
                throw bad("\"" + key + "\" is missing or not an integer");
            }
            long x = v.asLong();
            if (x < min || x > max) {
                throw bad("\"" + key + "\" is " + x + ", expected " + min + ".." + max);
            }
            return x;
        }

        JsonNode array(JsonNode n, String key) {
            JsonNode v = n.get(key);
            if (v == null || !v.isArray()) {
                throw bad("\"" + key + "\" is missing or not a list");
            }
            return v;
        }

        float[] floats(JsonNode n, String key, int count) {
            JsonNode a = array(n, key);
            if (a.size() != count) {
                throw bad("\"normalization\".\"" + key + "\" has " + a.size() + " values for " + count + " channels");
            }
            float[] out = new float[count];
            for (int i = 0; i < count; i++) {
                if (!a.get(i).isNumber()) {
                    throw bad("\"normalization\".\"" + key + "\" holds " + a.get(i) + ", not a number");
                }
                out[i] = (float) a.get(i).asDouble();
            }
            return out;
        }
    }
}
