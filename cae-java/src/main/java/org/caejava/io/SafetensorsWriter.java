package org.caejava.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes a safetensors file atomically: everything goes to a temporary file in the target's
 * folder, which is flushed to disk and then renamed over the target, so a reader (or a crash)
 * sees either the old file or the complete new one.
 */
public final class SafetensorsWriter {

    /** Fills {@code dst} (exactly the tensor's byte size) with the tensor's little-endian bytes. */
    @FunctionalInterface
    public interface Source {
        void fill(MemorySegment dst) throws IOException;
    }

    private record Item(String name, String dtype, long[] shape, long bytes, Source source) {}

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Map<String, String> metadata = new LinkedHashMap<>();
    private final List<Item> items = new ArrayList<>();
    private final Set<String> names = new HashSet<>();

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /** Adds a tensor whose bytes {@code source} produces when the file is written. */
    public SafetensorsWriter add(String name, String dtype, long[] shape, Source source) {
        if (name.equals("__metadata__") || !names.add(name)) {
            throw new IllegalArgumentException("tensor name \"" + name + "\" is reserved or already used");
        }
        int size = SafetensorsFile.dtypeSize(dtype);
        if (size < 0) {
            throw new IllegalArgumentException("unknown dtype " + dtype);
        }
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        items.add(new Item(name, dtype, shape.clone(), n * size, source));
        return this;
    }

    /** Adds an F32 tensor holding {@code values}. */
    public SafetensorsWriter addFloats(String name, long[] shape, float[] values) {
        return addFloats(name, shape, () -> values);
    }

    /** Adds an F32 tensor whose values {@code values} gives when the file is written, one tensor at a time. */
    public SafetensorsWriter addFloats(String name, long[] shape, java.util.function.Supplier<float[]> values) {
        return add(name, "F32", shape, dst -> {
            float[] v = values.get();
            MemorySegment.copy(v, 0, dst,
                    java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, v.length);
        });
    }

    /** Writes the file: temporary file, fsync, atomic rename, fsync of the folder. */
    public void write(Path target) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        removeStaleTemporaries(dir, target.getFileName().toString());
        byte[] header = header();
        Path tmp = Files.createTempFile(dir, "." + target.getFileName() + ".", ".tmp");
        boolean done = false;
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).flip();
                writeFully(ch, len);
                writeFully(ch, ByteBuffer.wrap(header));
                for (Item item : items) {
                    if (item.bytes() == 0) {
                        continue;
                    }
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment seg = arena.allocate(item.bytes(), 64);
                        item.source().fill(seg);
                        writeFully(ch, seg.asByteBuffer());
                    }
                }
                ch.force(true);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
            syncDirectory(dir);
        } finally {
            if (!done) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    private byte[] header() throws IOException {
        ObjectNode root = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = root.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long offset = 0;
        for (Item item : items) {
            ObjectNode e = root.putObject(item.name());
            e.put("dtype", item.dtype());
            var shape = e.putArray("shape");
            for (long d : item.shape()) {
                shape.add(d);
            }
            var offsets = e.putArray("data_offsets");
            offsets.add(offset);
            offsets.add(offset + item.bytes());
            offset += item.bytes();
        }
        byte[] json = JSON.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;  // the data section starts 8-byte aligned
        byte[] out = new byte[padded];
        System.arraycopy(json, 0, out, 0, json.length);
        java.util.Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    /** Temporary files a killed writer of the same target left behind ({@code .NAME.*.tmp}). */
    private static void removeStaleTemporaries(Path dir, String name) throws IOException {
        try (var files = Files.newDirectoryStream(dir, "." + name + ".*.tmp")) {
            for (Path p : files) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }

    private static void syncDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            // Some file systems cannot fsync a directory; the rename itself is still atomic.
        }
    }
}
