package org.caejava.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.caejava.api.DType;
import org.caejava.api.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Generative test of {@link SafetensorsFile}: thousands of mutations of a valid file (see {@link
 * SafetensorsMutator}) either open, and then every tensor is consistent with its header entry, or
 * are refused with a {@link SafetensorsException} naming the file.
 */
class SafetensorsFuzzTest {

    static final int TRIES = 3000;
    static final long SEED = 0x5AFE_7E45L;

    @TempDir
    Path dir;

    /** A valid file with tensors of several dtypes and ranks, an empty one and a scalar. */
    static byte[] base(Path dir) throws IOException {
        Path file = dir.resolve("base.safetensors");
        new SafetensorsWriter().metadata("format", "pt").metadata("note", "fuzz")
                .addFloats("weight", new long[] {3, 4}, new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
                .add("bias", "BF16", new long[] {4}, dst -> dst.fill((byte) 0x3f))
                .add("ids", "I64", new long[] {2}, dst -> dst.fill((byte) 1))
                .add("mask", "U8", new long[] {5}, dst -> dst.fill((byte) 7))
                .add("empty", "F16", new long[] {0, 3}, dst -> {})
                .add("scalar", "F64", new long[] {}, dst -> dst.fill((byte) 0))
                .add("flags", "BOOL", new long[] {1, 3}, dst -> dst.fill((byte) 1))
                .write(file);
        return Files.readAllBytes(file);
    }

    /**
     * What an open file promises: entries cover the data section contiguously, each entry's byte
     * range matches its dtype and shape, and every tensor can be viewed (and read) in full.
     */
    static void checkConsistent(SafetensorsFile f, byte[] input) throws IOException {
        long dataBytes = input.length - 8 - SafetensorsMutator.headerLength(input);
        long expected = 0;
        for (SafetensorsFile.Entry e : f.entries()) {
            assertEquals(expected, e.begin(), "entries in data order without holes");
            int size = SafetensorsFile.dtypeSize(e.dtype());
            assertTrue(size > 0, e.dtype());
            long numel = 1;
            for (long d : e.shape()) {
                assertTrue(d >= 0);
                numel = Math.multiplyExact(numel, d);
            }
            assertEquals(numel, e.numel());
            assertEquals(Math.multiplyExact(numel, size), e.end() - e.begin(), e.name());
            MemorySegment b = f.bytes(e.name());
            assertEquals(e.end() - e.begin(), b.byteSize());
            if (b.byteSize() > 0) {
                byte first = b.get(ValueLayout.JAVA_BYTE, 0);
                assertEquals(input[(int) (8 + SafetensorsMutator.headerLength(input) + e.begin())], first);
                b.get(ValueLayout.JAVA_BYTE, b.byteSize() - 1);
            }
            boolean usable = List.of("F32", "BF16", "U8", "I32").contains(e.dtype());
            if (usable) {
                Tensor t = f.tensor(e.name());
                assertArrayEquals(e.shape(), t.shape());
                assertEquals(DType.fromName(e.dtype()), t.dtype());
                assertEquals(b.byteSize(), t.byteSize());
            } else {
                assertThrows(SafetensorsException.class, () -> f.tensor(e.name()));
            }
            if (e.dtype().equals("F32") && numel <= 1 << 20) {
                assertEquals(numel, f.floats(e.name()).length);
            }
            expected = e.end();
        }
        assertEquals(dataBytes, expected, "the entries cover the data section");
        for (String k : f.metadata().keySet()) {
            assertNotNull(f.metadata().get(k));
        }
    }

    @Test
    void mutatedFilesOpenConsistentlyOrAreRefused() throws IOException {
        byte[] base = base(dir);
        Path file = dir.resolve("fuzz.safetensors");
        try (FuzzCampaign c = new FuzzCampaign("SafetensorsFile.open", SEED, List.of(SafetensorsException.class),
                5_000, 64L << 20, 256L << 20)) {
            Mutator bytes = new Mutator(c.random());
            SafetensorsMutator mutator = new SafetensorsMutator(c.random(), bytes, List.of());
            for (int i = 0; i < TRIES; i++) {
                byte[] input = mutator.mutate(base);
                Files.write(file, input);
                c.attempt(bytes.description(), file, input, () -> {
                    try (SafetensorsFile f = SafetensorsFile.open(file)) {
                        checkConsistent(f, input);
                    }
                });
            }
            c.finish();
        }
    }
}
