package org.caejava.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.caejava.data.shard.Shard;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ShardTest {

    @TempDir
    Path tmp;

    static final int W = 5;
    static final int H = 4;
    static final int C = 3;
    static final List<String> CLASSES = List.of("cat", "dog", "émeu");

    /** Byte k of image i. */
    static byte pixel(long i, long k) {
        return (byte) (i * 31 + k * 7);
    }

    static int label(long i) {
        return (int) (i % 3);
    }

    /** 10 images 5x4x3, shards of at most 3 images. */
    private Path write(String name, List<String> classes) throws IOException {
        Path dir = tmp.resolve(name);
        // Room for 3 images (and labels) beside the writer's 4096 bytes for the table and the names.
        long names = classes.stream().mapToLong(n -> 12 + n.getBytes(java.nio.charset.StandardCharsets.UTF_8).length)
                .sum();
        long shardBytes = 4096 + names + 3L * (W * H * C + (classes.isEmpty() ? 0 : 4)) + 10;
        try (ShardWriter w = ShardWriter.create(dir, W, H, C, classes, shardBytes)) {
            assertEquals(3, w.imagesPerShard());
            w.normalization(new Normalization(new float[] {0.1f, 0.2f, 0.3f}, new float[] {0.4f, 0.5f, 0.6f}));
            w.info("source", "test");
            ShardWriter.SplitSummary s = w.writeSplit("train", 10, (i, dst) -> {
                for (int k = 0; k < W * H * C; k++) {
                    dst.set(ValueLayout.JAVA_BYTE, k, pixel(i, k));
                }
                return classes.isEmpty() ? -1 : label(i);
            }, 3);
            assertEquals(new ShardWriter.SplitSummary("train", 10, 4, s.bytes()), s);
            w.writeSplit("test", 2, (i, dst) -> {
                dst.fill(pixel(100 + i, 0));
                return classes.isEmpty() ? -1 : 1;
            }, 1);
        }
        return dir;
    }

    @Test
    void shardsRoundTrip() throws IOException {
        Path dir = write("ds", CLASSES);
        assertEquals(List.of("train", "test"), ShardSource.splits(dir));
        assertTrue(Files.exists(dir.resolve("shard-00003.fb")) && Files.exists(dir.resolve("shard-00004.fb")));
        try (ShardSource train = ShardSource.open(dir, "train"); ShardSource test = ShardSource.open(dir, "test")) {
            assertEquals(10, train.size());
            assertEquals(4, train.shardCount());
            assertEquals(3, train.channels());
            assertEquals(W, train.width(7));
            assertEquals(H, train.height(7));
            assertEquals(CLASSES, train.classNames());
            assertArrayEquals(new float[] {0.1f, 0.2f, 0.3f}, train.knownNormalization().mean());
            for (long i = 0; i < 10; i++) {
                byte[] expected = new byte[W * H * C];
                for (int k = 0; k < expected.length; k++) {
                    expected[k] = pixel(i, k);
                }
                assertArrayEquals(expected, train.view(i).toArray(ValueLayout.JAVA_BYTE), "image " + i);
                MemorySegment copy = MemorySegment.ofArray(new byte[W * H * C]);
                train.read(i, copy);
                assertArrayEquals(expected, copy.toArray(ValueLayout.JAVA_BYTE));
                assertEquals(label(i), train.label(i));
            }
            assertEquals("image 1 of " + dir.resolve("shard-00002.fb"), train.describe(7));
            assertTrue(train.view(4).isReadOnly(), "a view of the mapped file, not a copy");
            assertEquals(2, test.size());
            assertEquals(1, test.label(1));
            assertEquals(pixel(101, 0), test.view(1).get(ValueLayout.JAVA_BYTE, 59));
            // The files are ordinary FlatBuffers: the generated accessors read them.
            Shard s = Shard.getRootAsShard(ByteBuffer.wrap(Files.readAllBytes(dir.resolve("shard-00001.fb"))));
            assertEquals(3, s.firstIndex());
            assertEquals("émeu", s.classNames(2));
            assertEquals(3 * W * H * C, s.imagesLength());
        }
    }

    @Test
    void unlabeledShardsRoundTrip() throws IOException {
        Path dir = write("plain", List.of());
        try (ShardSource train = ShardSource.open(dir, "train")) {
            assertEquals(-1, train.label(4));
            assertEquals(List.of(), train.classNames());
            assertEquals(pixel(9, 59), train.view(9).get(ValueLayout.JAVA_BYTE, 59));
        }
    }

    @Test
    void writerRefusesBadInput() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("used"));
        Files.writeString(dir.resolve("x"), "x");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ShardWriter.create(dir, W, H, C, CLASSES, 1 << 20));
        assertTrue(e.getMessage().contains("not empty"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> ShardWriter.create(tmp.resolve("big"), 2000, 2000, 3, CLASSES, 1 << 20));
        assertTrue(e.getMessage().contains("does not fit"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> ShardWriter.create(tmp.resolve("huge"), 20, 20, 3, CLASSES, 2L << 30));
        assertTrue(e.getMessage().contains("1 GiB"), e.getMessage());
        // A label outside the classes fails the write, and leaves no shards and no index behind.
        Path bad = tmp.resolve("bad");
        try (ShardWriter w = ShardWriter.create(bad, W, H, C, CLASSES, 1 << 20)) {
            e = assertThrows(IllegalArgumentException.class, () -> w.writeSplit("train", 5, (i, dst) -> 3, 2));
            assertTrue(e.getMessage().contains("label 3, expected 0..2"), e.getMessage());
        }
        try (var files = Files.list(bad)) {
            assertEquals(List.of(), files.toList());
        }
    }

    /** Overwrites {@code bytes} at {@code offset} of a file. */
    private static void patch(Path file, long offset, byte... bytes) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(bytes), offset);
        }
    }

    private static byte[] le32(long v) {
        return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array();
    }

    private ImageDataException refused(Path dir) {
        return assertThrows(ImageDataException.class, () -> ShardSource.open(dir, "train").close());
    }

    private static void assertSays(ImageDataException e, Path file, String phrase) {
        assertTrue(e.getMessage().startsWith(file.toString()), "names " + file + ": " + e.getMessage());
        assertTrue(e.getMessage().contains(phrase), "says \"" + phrase + "\": " + e.getMessage());
    }

    /** Where the images vector's length sits in a shard (the accessor's vector start, minus 4). */
    private static int imagesLengthAt(Path file) throws IOException {
        Shard s = Shard.getRootAsShard(ByteBuffer.wrap(Files.readAllBytes(file)));
        return s.imagesAsByteBuffer().position() - 4;
    }

    private static int labelsAt(Path file) throws IOException {
        Shard s = Shard.getRootAsShard(ByteBuffer.wrap(Files.readAllBytes(file)));
        return s.labelsAsByteBuffer().position();
    }

    @Test
    void corruptShardsAreRefusedNamingTheFile() throws IOException {
        Path dir = write("trunc", CLASSES);
        Path f = dir.resolve("shard-00001.fb");
        byte[] all = Files.readAllBytes(f);
        Files.write(f, Arrays.copyOf(all, all.length - 10));
        assertSays(refused(dir), f, "the index says " + all.length);

        dir = write("ident", CLASSES);
        f = dir.resolve("shard-00000.fb");
        patch(f, 4, (byte) 'X');
        assertSays(refused(dir), f, "file identifier \"XAES\"");

        dir = write("root", CLASSES);
        f = dir.resolve("shard-00000.fb");
        patch(f, 0, le32(Files.size(f) + 100));
        assertSays(refused(dir), f, "the root table");

        dir = write("vector", CLASSES);
        f = dir.resolve("shard-00002.fb");
        patch(f, imagesLengthAt(f), le32(1L << 31));
        assertSays(refused(dir), f, "past the end");

        dir = write("count", CLASSES);
        f = dir.resolve("shard-00002.fb");
        patch(f, imagesLengthAt(f), le32(3 * W * H * C - 1));
        assertSays(refused(dir), f, "the images vector holds 179 bytes, 3 images of 5x4x3 need 180");

        dir = write("label", CLASSES);
        f = dir.resolve("shard-00003.fb");
        patch(f, labelsAt(f), le32(7));
        assertSays(refused(dir), f, "image 9 has label 7");

        dir = write("swap", CLASSES);
        Path a = dir.resolve("shard-00000.fb");
        Path b = dir.resolve("shard-00001.fb");
        Path t = dir.resolve("t");
        Files.move(a, t);
        Files.move(b, a);
        Files.move(t, b);
        assertSays(refused(dir), a, "holds images 3..5 of split \"train\", the index lists it for images 0..2");
    }

    @Test
    void badIndexesAreRefused() throws IOException {
        Path dir = write("idx", CLASSES);
        Path index = dir.resolve("index.json");
        String json = Files.readString(index);
        Files.writeString(index, json.replace("shard-00001.fb", "../../etc/passwd"));
        assertSays(refused(dir), index, "expected shard-NNNNN.fb");
        Files.writeString(index, json.replace("\"version\" : 1", "\"version\" : 2"));
        assertSays(refused(dir), index, "version 2");
        Files.writeString(index, json.substring(0, json.length() / 2));
        assertSays(refused(dir), index, "not valid JSON");
        Files.delete(index);
        ImageDataException e = refused(dir);
        assertTrue(e.getMessage().contains("no index.json"), e.getMessage());
        Files.writeString(index, json);
        Files.delete(dir.resolve("shard-00002.fb"));
        assertSays(refused(dir), dir.resolve("shard-00002.fb"), "missing");
        e = assertThrows(ImageDataException.class, () -> ShardSource.open(write("other", CLASSES), "val"));
        assertTrue(e.getMessage().contains("no split \"val\""), e.getMessage());
    }
}
