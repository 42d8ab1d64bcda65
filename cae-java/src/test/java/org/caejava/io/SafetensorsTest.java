package org.caejava.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {

    @TempDir
    Path dir;

    @Test
    void writesAndReadsBack() throws IOException {
        Path f = dir.resolve("a.safetensors");
        new SafetensorsWriter().metadata("format", "test").metadata("step", "3")
                .addFloats("w", new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6})
                .addFloats("s", new long[] {}, new float[] {7})
                .add("m", "U8", new long[] {3}, dst -> dst.copyFrom(java.lang.foreign.MemorySegment.ofArray(new byte[] {1, 0, 1})))
                .write(f);
        try (SafetensorsFile s = SafetensorsFile.open(f)) {
            assertEquals("3", s.metadata().get("step"));
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, s.floats("w", 2, 3));
            assertArrayEquals(new float[] {7}, s.floats("s"));
            assertEquals(List.of("w", "s", "m"), s.entries().stream().map(SafetensorsFile.Entry::name).toList());
            assertEquals(5.0f, s.tensor("w").getFloat(1, 1));
            assertEquals(1, s.tensor("m").getInt(2));
        }
        long headerLen = ByteBuffer.wrap(Files.readAllBytes(f), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLen % 8, "the data section starts 8-byte aligned");
        try (var files = Files.list(dir)) {
            assertEquals(1, files.count(), "no temporary file is left behind");
        }
    }

    /** A file with the given header JSON and data bytes. */
    private Path file(String name, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path p = dir.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    private void refused(Path p, String expected) {
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(p).close());
        assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expected), "expected \"" + expected + "\" in: " + e.getMessage());
    }

    @Test
    void refusesBrokenFilesNamingTheProblem() throws IOException {
        String ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        SafetensorsFile.open(file("ok", ok, 8)).close();
        refused(file("truncated", ok, 4), "truncated");
        refused(file("trailing", ok, 12), "trailing bytes");
        refused(file("notjson", "{\"a\":", 0), "not valid JSON");
        refused(file("array", "[1,2]", 0), "does not start with a JSON object");
        refused(file("dup", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "not valid JSON");
        refused(file("dtype", ok.replace("F32", "Q7"), 8), "unknown dtype \"Q7\"");
        refused(file("size", ok.replace("[2]", "[3]"), 8), "needs 12");
        refused(file("neg", ok.replace("[2]", "[-2]"), 8), "bad dimension");
        refused(file("hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "(hole)");
        refused(file("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "(overlap)");
        refused(file("meta", "{\"__metadata__\":{\"k\":3}}", 0), "is not a string");
        refused(file("overflow", ok.replace("[2]", "[4611686018427387904,4]"), 8), "overflows");

        Path shortFile = dir.resolve("short");
        Files.write(shortFile, new byte[] {1, 2, 3});
        refused(shortFile, "too short");
        ByteBuffer huge = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(200_000_000L).putLong(0);
        Path hugeHeader = dir.resolve("huge");
        Files.write(hugeHeader, huge.array());
        refused(hugeHeader, "outside [2, 100000000]");
        ByteBuffer past = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1000).putLong(0);
        Path pastEnd = dir.resolve("past");
        Files.write(pastEnd, past.array());
        refused(pastEnd, "runs past the end");
    }
}
