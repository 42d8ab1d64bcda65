package org.caejava.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.UnaryOperator;

/**
 * Mutations of a valid safetensors file: byte-level ones anywhere or in the header, the 8-byte
 * header length overwritten, and JSON-aware ones that rewrite the header (dtypes, shapes,
 * data_offsets, duplicate keys, non-object JSON, metadata of other types, deep nesting, long
 * numbers, bad UTF-8) and put the file back together with the new header's length.
 */
final class SafetensorsMutator {

    static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final List<String> DTYPES = List.of("F32", "F16", "BF16", "U8", "I8", "I16", "U16", "I32", "U32",
            "I64", "U64", "F64", "BOOL", "F8_E4M3", "F8_E5M2");
    private static final List<String> BAD_DTYPES = List.of("f32", "F32 ", "", "FLOAT", "F4", "Q4_0", "\u0000",
            "F32\u0000", "C64");

    private final Random random;
    private final Mutator bytes;
    /** Extra JSON-aware mutations of the header, for instance of the checkpoint's model configuration. */
    private final List<UnaryOperator<ObjectNode>> extra;

    SafetensorsMutator(Random random, Mutator bytes, List<UnaryOperator<ObjectNode>> extra) {
        this.random = random;
        this.bytes = bytes;
        this.extra = List.copyOf(extra);
    }

    static long headerLength(byte[] file) {
        return ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    static ObjectNode header(byte[] file) {
        try {
            return (ObjectNode) JSON.readTree(new String(file, 8, (int) headerLength(file), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static byte[] data(byte[] file) {
        return Arrays.copyOfRange(file, 8 + (int) headerLength(file), file.length);
    }

    /** A safetensors file: the header's length (u64 little-endian), the header, the data. */
    static byte[] assemble(byte[] header, byte[] data) {
        return ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(header.length).put(header).put(data).array();
    }

    /** One mutation of {@code file}, drawn from every family. */
    byte[] mutate(byte[] file) {
        int header = 8 + (int) headerLength(file);
        int family = random.nextInt(20);
        if (family < 3) {
            return bytes.any(file);
        } else if (family < 6) {
            return bytes.within(file, 0, Math.min(file.length, header + 16));
        } else if (family < 8) {
            return headerLengthMutation(file);
        }
        return json(file);
    }

    private byte[] headerLengthMutation(byte[] file) {
        long len = headerLength(file);
        long v = switch (random.nextInt(4)) {
            case 0 -> bytes.edge();
            case 1 -> len + random.nextInt(33) - 16;
            case 2 -> file.length - 8 + random.nextInt(9) - 4;
            default -> -random.nextInt(1 << 20);
        };
        return bytes.integer(file, 0, 8, ByteOrder.LITTLE_ENDIAN, v);
    }

    /** Rewrites the header with a JSON-aware mutation and reassembles the file. */
    byte[] json(byte[] file) {
        ObjectNode root = header(file);
        byte[] data = data(file);
        byte[] header = switch (random.nextInt(10)) {
            case 0, 1, 2, 3 -> text(entryMutation(root));
            case 4 -> text(metadataMutation(root));
            case 5 -> duplicateKey(root);
            case 6 -> notAnObject(root);
            case 7 -> textMutation(root);
            case 8 -> extra.isEmpty() ? text(entryMutation(root))
                    : text(extra.get(random.nextInt(extra.size())).apply(root));
            default -> text(structureMutation(root, data));
        };
        if (random.nextInt(10) == 0) {
            int k = random.nextInt(9) - 4;
            bytes.note("data " + (k < 0 ? "cut by " + -k : "extended by " + k));
            data = Arrays.copyOf(data, Math.max(0, data.length + k));
        }
        byte[] out = assemble(header, data);
        if (random.nextInt(12) == 0) {
            out = headerLengthMutation(out);
        }
        return out;
    }

    private static byte[] text(JsonNode root) {
        try {
            return JSON.writeValueAsBytes(root);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private List<String> tensors(ObjectNode root) {
        List<String> names = new ArrayList<>();
        root.fieldNames().forEachRemaining(n -> {
            if (!n.equals("__metadata__")) {
                names.add(n);
            }
        });
        return names;
    }

    private String anyTensor(ObjectNode root) {
        List<String> names = tensors(root);
        return names.get(random.nextInt(names.size()));
    }

    /** A value for a place that expects a non-negative integer. */
    private JsonNode badNumber() {
        return switch (random.nextInt(12)) {
            case 0 -> NODES.numberNode(-1);
            case 1 -> NODES.numberNode(0);
            case 2, 3 -> NODES.numberNode(bytes.edge());
            case 4 -> NODES.numberNode(new BigInteger("18446744073709551617"));
            case 5 -> NODES.numberNode(1.5);
            case 6 -> NODES.numberNode(1e30);
            case 7 -> NODES.textNode("3");
            case 8 -> NODES.nullNode();
            case 9 -> NODES.booleanNode(true);
            case 10 -> NODES.numberNode(new BigInteger("9".repeat(1 + random.nextInt(40))));
            default -> NODES.numberNode(random.nextInt(1 << 16));
        };
    }

    private JsonNode notAnArray() {
        return switch (random.nextInt(5)) {
            case 0 -> NODES.textNode("[2, 3]");
            case 1 -> NODES.numberNode(6);
            case 2 -> NODES.objectNode().put("0", 2);
            case 3 -> NODES.arrayNode().add(NODES.arrayNode().add(2));
            default -> NODES.nullNode();
        };
    }

    private ObjectNode entryMutation(ObjectNode root) {
        String name = anyTensor(root);
        JsonNode e = root.get(name);
        if (!(e instanceof ObjectNode t)) {
            return root;
        }
        ArrayNode shape = (ArrayNode) t.get("shape");
        ArrayNode offsets = (ArrayNode) t.get("data_offsets");
        long begin = offsets.get(0).asLong();
        long end = offsets.get(1).asLong();
        switch (random.nextInt(16)) {
            case 0 -> {
                String d = random.nextBoolean() ? DTYPES.get(random.nextInt(DTYPES.size()))
                        : BAD_DTYPES.get(random.nextInt(BAD_DTYPES.size()));
                bytes.note(name + ".dtype = \"" + d + "\"");
                t.put("dtype", d);
            }
            case 1 -> {
                JsonNode v = random.nextBoolean() ? NODES.numberNode(4) : notAnArray();
                bytes.note(name + ".dtype = " + v);
                t.set("dtype", v);
            }
            case 2, 3 -> {
                JsonNode v = badNumber();
                int i = shape.isEmpty() ? 0 : random.nextInt(shape.size() + 1);
                if (i < shape.size()) {
                    shape.set(i, v);
                } else {
                    shape.add(v);
                }
                bytes.note(name + ".shape[" + i + "] = " + v);
            }
            case 4 -> {
                long[][] overflowing = {{1L << 32, 1L << 32}, {Integer.MAX_VALUE, Integer.MAX_VALUE, Integer.MAX_VALUE},
                    {Long.MAX_VALUE}, {Long.MAX_VALUE / 2 + 1, 2}, {1L << 61, 0}, {0, 1L << 61, 1L << 61}, {1L << 62}};
                long[] dims = overflowing[random.nextInt(overflowing.length)];
                ArrayNode a = NODES.arrayNode();
                Arrays.stream(dims).forEach(a::add);
                t.set("shape", a);
                bytes.note(name + ".shape = " + a);
            }
            case 5 -> {
                // The same element count in another arrangement: still valid.
                List<JsonNode> dims = new ArrayList<>();
                shape.forEach(dims::add);
                Collections.shuffle(dims, random);
                ArrayNode a = NODES.arrayNode();
                dims.forEach(a::add);
                if (random.nextBoolean()) {
                    a.add(1);
                }
                t.set("shape", a);
                bytes.note(name + ".shape = " + a);
            }
            case 6 -> {
                JsonNode v = notAnArray();
                t.set(random.nextBoolean() ? "shape" : "data_offsets", v);
                bytes.note(name + ".shape or offsets = " + v);
            }
            case 7 -> {
                offsets.set(0, end);
                offsets.set(1, begin);
                bytes.note(name + " offsets reversed");
            }
            case 8 -> {
                long k = new long[] {1, -1, 4, -4, end - begin, begin - end}[random.nextInt(6)];
                offsets.set(0, begin + k);
                offsets.set(1, end + k);
                bytes.note(name + " offsets shifted by " + k);
            }
            case 9 -> {
                // Overlap: start where another tensor starts, keep the length.
                ObjectNode other = (ObjectNode) root.get(anyTensor(root));
                long b = other.get("data_offsets").get(0).asLong() + random.nextInt(3) - 1;
                offsets.set(0, b);
                offsets.set(1, b + end - begin);
                bytes.note(name + " offsets moved to " + b);
            }
            case 10 -> {
                JsonNode v = badNumber();
                int i = random.nextInt(2);
                offsets.set(i, v);
                bytes.note(name + ".data_offsets[" + i + "] = " + v);
            }
            case 11 -> {
                if (random.nextBoolean()) {
                    offsets.add(end);
                } else {
                    offsets.remove(1);
                }
                bytes.note(name + ".data_offsets = " + offsets);
            }
            case 12 -> {
                String f = List.of("dtype", "shape", "data_offsets").get(random.nextInt(3));
                t.remove(f);
                bytes.note(name + " without " + f);
            }
            case 13 -> {
                t.put("extra", 1);
                bytes.note(name + " with an extra field");
            }
            case 14 -> {
                JsonNode v = notAnArray();
                root.set(name, v);
                bytes.note(name + " = " + v);
            }
            default -> {
                String n = switch (random.nextInt(4)) {
                    case 0 -> "";
                    case 1 -> "x".repeat(10_000);
                    case 2 -> "__metadata__";
                    default -> "t\u00e9\uD83D\uDE00";
                };
                root.remove(name);
                root.set(n, t);
                bytes.note("renamed " + name + " to " + (n.length() > 20 ? n.length() + " chars" : "\"" + n + "\""));
            }
        }
        return root;
    }

    private ObjectNode metadataMutation(ObjectNode root) {
        JsonNode meta = root.get("__metadata__");
        if (random.nextInt(3) == 0 || !(meta instanceof ObjectNode m) || m.isEmpty()) {
            JsonNode v = switch (random.nextInt(5)) {
                case 0 -> NODES.textNode("x");
                case 1 -> NODES.arrayNode().add("a");
                case 2 -> NODES.nullNode();
                case 3 -> NODES.numberNode(1);
                default -> NODES.objectNode();
            };
            root.set("__metadata__", v);
            bytes.note("__metadata__ = " + v);
            return root;
        }
        List<String> keys = new ArrayList<>();
        m.fieldNames().forEachRemaining(keys::add);
        String k = keys.get(random.nextInt(keys.size()));
        JsonNode v = switch (random.nextInt(7)) {
            case 0 -> NODES.numberNode(random.nextInt());
            case 1 -> NODES.objectNode().put("a", "b");
            case 2 -> NODES.arrayNode().add("x");
            case 3 -> NODES.nullNode();
            case 4 -> NODES.booleanNode(false);
            case 5 -> NODES.textNode("\uD800 lone surrogate");
            default -> NODES.textNode("x".repeat(random.nextInt(100_000)));
        };
        m.set(k, v);
        bytes.note("__metadata__." + k + " = " + (v.toString().length() > 40 ? v.getNodeType() : v));
        return root;
    }

    /** Removes a tensor, or adds one with its data, or swaps two tensors' offsets. */
    private JsonNode structureMutation(ObjectNode root, byte[] data) {
        switch (random.nextInt(3)) {
            case 0 -> {
                String n = anyTensor(root);
                root.remove(n);
                bytes.note("removed " + n);
            }
            case 1 -> {
                ObjectNode t = root.putObject("added");
                t.put("dtype", "U8");
                t.putArray("shape").add(0);
                t.putArray("data_offsets").add(data.length).add(data.length);
                bytes.note("added an empty tensor at the end");
            }
            default -> {
                List<String> names = tensors(root);
                String a = names.get(random.nextInt(names.size()));
                String b = names.get(random.nextInt(names.size()));
                if (root.get(a) instanceof ObjectNode ta && root.get(b) instanceof ObjectNode tb) {
                    JsonNode o = ta.get("data_offsets");
                    ta.set("data_offsets", tb.get("data_offsets"));
                    tb.set("data_offsets", o);
                }
                bytes.note("swapped the offsets of " + a + " and " + b);
            }
        }
        return root;
    }

    /** A key twice: a tensor, the metadata, or a field inside an entry. */
    private byte[] duplicateKey(ObjectNode root) {
        String s = new String(text(root), StandardCharsets.UTF_8);
        String body = s.substring(1, s.length() - 1);
        String out = switch (random.nextInt(3)) {
            case 0 -> {
                String n = anyTensor(root);
                bytes.note("tensor " + n + " twice");
                yield "{" + body + "," + JSON.valueToTree(n) + ":" + root.get(n) + "}";
            }
            case 1 -> {
                bytes.note("__metadata__ twice");
                yield "{\"__metadata__\":{\"a\":\"b\"}," + body + "}";
            }
            default -> {
                String n = anyTensor(root);
                bytes.note("dtype twice in " + n);
                yield s.replaceFirst("\"dtype\":", "\"dtype\":\"F64\",\"dtype\":");
            }
        };
        return out.getBytes(StandardCharsets.UTF_8);
    }

    private byte[] notAnObject(ObjectNode root) {
        String s = new String(text(root), StandardCharsets.UTF_8);
        String out = switch (random.nextInt(12)) {
            case 0 -> "[" + s + "]";
            case 1 -> "1";
            case 2 -> "\"x\"";
            case 3 -> "null";
            case 4 -> "true";
            case 5 -> " ".repeat(1 + random.nextInt(8));
            case 6 -> s.substring(0, random.nextInt(s.length()));
            case 7 -> s + " trailing";
            case 8 -> s + s;
            case 9 -> "{}";
            case 10 -> "  \n\t" + s;
            default -> "[]";
        };
        bytes.note("header = " + (out.length() > 40 ? out.substring(0, 40) + "..." : out));
        return out.getBytes(StandardCharsets.UTF_8);
    }

    /** Padding, deep nesting, very long numbers, bytes that are not UTF-8. */
    private byte[] textMutation(ObjectNode root) {
        String s = new String(text(root), StandardCharsets.UTF_8);
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        switch (random.nextInt(6)) {
            case 0 -> {
                int n = random.nextInt(64);
                char pad = random.nextBoolean() ? ' ' : (char) new int[] {0, '\t', '\n', 0x7f}[random.nextInt(4)];
                bytes.note(n + " bytes of padding " + (int) pad);
                return (s + String.valueOf(pad).repeat(n)).getBytes(StandardCharsets.UTF_8);
            }
            case 1 -> {
                int depth = random.nextBoolean() ? 2_000 : 200_000;
                bytes.note("metadata nested " + depth + " deep");
                String nested = "[".repeat(depth) + (random.nextBoolean() ? "]".repeat(depth) : "");
                return ("{\"__metadata__\":" + nested + "," + s.substring(1)).getBytes(StandardCharsets.UTF_8);
            }
            case 2 -> {
                String digits = "1" + "0".repeat(random.nextBoolean() ? 400 : 5_000);
                bytes.note("offset of " + digits.length() + " digits");
                return s.replaceFirst("\"data_offsets\":\\[\\d+", "\"data_offsets\":[" + digits)
                        .getBytes(StandardCharsets.UTF_8);
            }
            case 3 -> {
                byte[][] bad = {{(byte) 0xFF}, {(byte) 0xC0, (byte) 0x80}, {(byte) 0xED, (byte) 0xA0, (byte) 0x80},
                    {(byte) 0xE2, (byte) 0x82}};
                byte[] x = bad[random.nextInt(bad.length)];
                int at = 1 + random.nextInt(b.length - 1);
                bytes.note("bad UTF-8 " + Arrays.toString(x) + " at " + at);
                return Mutator.splice(b, at, 0, x);
            }
            case 4 -> {
                bytes.note("offsets as floats");
                return s.replaceAll("\"data_offsets\":\\[(\\d+),(\\d+)\\]", "\"data_offsets\":[$1.0,$2e0]")
                        .getBytes(StandardCharsets.UTF_8);
            }
            default -> {
                bytes.note("escaped key");
                return s.replaceFirst("\"dtype\"", "\"\\\\u0064type\"").getBytes(StandardCharsets.UTF_8);
            }
        }
    }
}
