package org.caejava.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.caejava.api.DType;
import org.caejava.api.Tensor;

/**
 * A safetensors file, memory-mapped and validated before any tensor is used: the header length
 * (at most 100 MB and inside the file), a JSON object without duplicate keys, known dtypes,
 * non-negative shapes whose sizes match their byte ranges, and byte ranges that cover the data
 * section contiguously from 0 without holes or overlaps. Tensors are views of the mapping; they
 * live until {@link #close()}.
 */
public final class SafetensorsFile implements AutoCloseable {

    /** Largest header accepted, as the reference implementation. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final ObjectMapper JSON = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One tensor's header entry; {@code begin} and {@code end} are relative to the data section. */
    public record Entry(String name, String dtype, long[] shape, long begin, long end) {
        public Entry {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        public long numel() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    private final Path path;
    private final Arena arena;
    private final MemorySegment data;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Arena arena, MemorySegment data, Map<String, Entry> entries,
            Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.data = data;
        this.entries = entries;
        this.metadata = metadata;
    }

    /** Maps and validates {@code path}. */
    public static SafetensorsFile open(Path path) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw new SafetensorsException(path, "file of " + size + " bytes is too short for a safetensors header");
            }
            MemorySegment file = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long headerLen = file.get(U64_LE, 0);
            if (headerLen < 2 || headerLen > MAX_HEADER_BYTES) {
                throw new SafetensorsException(path, "header length " + Long.toUnsignedString(headerLen)
                        + " is outside [2, " + MAX_HEADER_BYTES + "]");
            }
            if (headerLen > size - 8) {
                throw new SafetensorsException(path, "header length " + headerLen + " runs past the end of the file ("
                        + size + " bytes)");
            }
            String header = decodeUtf8(path, file.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE));
            MemorySegment dataSection = file.asSlice(8 + headerLen);
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, Entry> entries = parseHeader(path, header, dataSection.byteSize(), metadata);
            return new SafetensorsFile(path, arena, dataSection, entries, Collections.unmodifiableMap(metadata));
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    /** The {@code __metadata__} map (string to string), empty when absent. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** The entries in data order. */
    public List<Entry> entries() {
        return List.copyOf(entries.values());
    }

    public boolean contains(String name) {
        return entries.containsKey(name);
    }

    public Entry entry(String name) throws SafetensorsException {
        Entry e = entries.get(name);
        if (e == null) {
            throw new SafetensorsException(path, "has no tensor \"" + name + "\"");
        }
        return e;
    }

    /** The bytes of tensor {@code name} (a view of the mapping). */
    public MemorySegment bytes(String name) throws SafetensorsException {
        Entry e = entry(name);
        return data.asSlice(e.begin(), e.end() - e.begin());
    }

    /** Tensor {@code name} as a view of the mapping (dtypes F32, BF16, U8, I32). */
    public Tensor tensor(String name) throws SafetensorsException {
        Entry e = entry(name);
        DType dtype;
        try {
            dtype = DType.fromName(e.dtype());
        } catch (IllegalArgumentException ex) {
            throw new SafetensorsException(path, "tensor \"" + name + "\" has dtype " + e.dtype()
                    + ", which cannot be used here (F32, BF16, U8 or I32)");
        }
        return Tensor.wrap(bytes(name), dtype, e.shape());
    }

    /** A copy of F32 tensor {@code name} with the given shape, checked. */
    public float[] floats(String name, long... expectedShape) throws SafetensorsException {
        Entry e = entry(name);
        if (!e.dtype().equals("F32")) {
            throw new SafetensorsException(path, "tensor \"" + name + "\" has dtype " + e.dtype() + ", expected F32");
        }
        if (expectedShape.length > 0 && !Arrays.equals(e.shape(), expectedShape)) {
            throw new SafetensorsException(path, "tensor \"" + name + "\" has shape " + Arrays.toString(e.shape())
                    + ", expected " + Arrays.toString(expectedShape));
        }
        MemorySegment b = bytes(name);
        float[] out = new float[Math.toIntExact(e.numel())];
        MemorySegment.copy(b, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, out, 0, out.length);
        return out;
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    // ---------------------------------------------------------------- validation

    /** Bytes per element of every safetensors dtype. */
    static int dtypeSize(String dtype) {
        return switch (dtype) {
            case "BOOL", "U8", "I8", "F8_E4M3", "F8_E5M2" -> 1;
            case "I16", "U16", "F16", "BF16" -> 2;
            case "I32", "U32", "F32" -> 4;
            case "I64", "U64", "F64" -> 8;
            default -> -1;
        };
    }

    private static String decodeUtf8(Path path, byte[] bytes) throws SafetensorsException {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new SafetensorsException(path, "header is not valid UTF-8");
        }
    }

    private static Map<String, Entry> parseHeader(Path path, String header, long dataBytes,
            Map<String, String> metadata) throws SafetensorsException {
        if (!header.stripLeading().startsWith("{")) {
            throw new SafetensorsException(path, "header does not start with a JSON object");
        }
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (JsonProcessingException e) {
            throw new SafetensorsException(path, "header is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw new SafetensorsException(path, "header is not a JSON object");
        }
        List<Entry> list = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext();) {
            Map.Entry<String, JsonNode> f = it.next();
            String name = f.getKey();
            JsonNode v = f.getValue();
            if (name.equals("__metadata__")) {
                if (!v.isObject()) {
                    throw new SafetensorsException(path, "__metadata__ is not an object");
                }
                for (Iterator<Map.Entry<String, JsonNode>> m = v.fields(); m.hasNext();) {
                    Map.Entry<String, JsonNode> kv = m.next();
                    if (!kv.getValue().isTextual()) {
                        throw new SafetensorsException(path, "__metadata__ value of \"" + kv.getKey()
                                + "\" is not a string");
                    }
                    metadata.put(kv.getKey(), kv.getValue().asText());
                }
                continue;
            }
            list.add(parseEntry(path, name, v));
        }
        list.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long expected = 0;
        for (Entry e : list) {
            if (e.begin() != expected) {
                throw new SafetensorsException(path, "tensor \"" + e.name() + "\" starts at byte " + e.begin()
                        + " of the data, expected " + expected + (e.begin() < expected ? " (overlap)" : " (hole)"));
            }
            expected = e.end();
        }
        if (expected != dataBytes) {
            throw new SafetensorsException(path, "the tensors cover " + expected + " bytes but the data section has "
                    + dataBytes + (expected > dataBytes ? " (truncated file)" : " (trailing bytes)"));
        }
        Map<String, Entry> byName = new LinkedHashMap<>();
        for (Entry e : list) {
            byName.put(e.name(), e);
        }
        return byName;
    }

    private static Entry parseEntry(Path path, String name, JsonNode v) throws SafetensorsException {
        String where = "tensor \"" + name + "\"";
        if (!v.isObject()) {
            throw new SafetensorsException(path, where + " is not an object");
        }
        JsonNode dtype = v.get("dtype");
        JsonNode shape = v.get("shape");
        JsonNode offsets = v.get("data_offsets");
        if (dtype == null || !dtype.isTextual()) {
            throw new SafetensorsException(path, where + " has no string \"dtype\"");
        }
        int size = dtypeSize(dtype.asText());
        if (size < 0) {
            throw new SafetensorsException(path, where + " has unknown dtype \"" + dtype.asText() + "\"");
        }
        if (shape == null || !shape.isArray()) {
            throw new SafetensorsException(path, where + " has no \"shape\" array");
        }
        if (offsets == null || !offsets.isArray() || offsets.size() != 2) {
            throw new SafetensorsException(path, where + " has no \"data_offsets\" pair");
        }
        if (v.size() != 3) {
            throw new SafetensorsException(path, where + " has fields other than dtype, shape and data_offsets");
        }
        long[] dims = new long[shape.size()];
        long numel = 1;
        for (int i = 0; i < dims.length; i++) {
            JsonNode d = shape.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToLong() || d.asLong() < 0) {
                throw new SafetensorsException(path, where + " has a bad dimension " + d + " in its shape");
            }
            dims[i] = d.asLong();
            try {
                numel = Math.multiplyExact(numel, dims[i]);
            } catch (ArithmeticException e) {
                throw new SafetensorsException(path, where + " has a shape whose size overflows");
            }
        }
        long[] range = new long[2];
        for (int i = 0; i < 2; i++) {
            JsonNode o = offsets.get(i);
            if (!o.isIntegralNumber() || !o.canConvertToLong() || o.asLong() < 0) {
                throw new SafetensorsException(path, where + " has a bad data offset " + o);
            }
            range[i] = o.asLong();
        }
        if (range[1] < range[0]) {
            throw new SafetensorsException(path, where + " ends (" + range[1] + ") before it begins (" + range[0] + ")");
        }
        long bytes;
        try {
            bytes = Math.multiplyExact(numel, size);
        } catch (ArithmeticException e) {
            throw new SafetensorsException(path, where + " is too large");
        }
        if (range[1] - range[0] != bytes) {
            throw new SafetensorsException(path, where + " spans " + (range[1] - range[0]) + " bytes but "
                    + dtype.asText() + " " + Arrays.toString(dims) + " needs " + bytes);
        }
        return new Entry(name, dtype.asText(), dims, range[0], range[1]);
    }
}
