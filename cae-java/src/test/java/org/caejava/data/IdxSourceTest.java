package org.caejava.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IdxSourceTest {

    @TempDir
    Path dir;

    /** An IDX file: magic, then the dimensions, then the payload. */
    static byte[] idx(int magic, int[] dims, byte[] payload) {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * dims.length + payload.length);
        b.putInt(magic);
        for (int d : dims) {
            b.putInt(d);
        }
        b.put(payload);
        return b.array();
    }

    static byte[] gzip(byte[] raw) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream g = new GZIPOutputStream(out)) {
            g.write(raw);
        }
        return out.toByteArray();
    }

    /** Three 2x3 images; pixel p of image i is 10 * i + p. */
    static byte[] pixels() {
        byte[] p = new byte[3 * 6];
        for (int i = 0; i < 3; i++) {
            for (int k = 0; k < 6; k++) {
                p[i * 6 + k] = (byte) (10 * i + k);
            }
        }
        return p;
    }

    static final byte[] LABELS = {4, 0, 7};

    private Path write(String name, byte[] data) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, data);
        return p;
    }

    private void assertContent(IdxSource s) {
        assertEquals(3, s.size());
        assertEquals(1, s.channels());
        assertEquals(3, s.width(0));
        assertEquals(2, s.height(2));
        assertEquals(6, s.byteSize(1));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dst = arena.allocate(6);
            for (int i = 0; i < 3; i++) {
                s.read(i, dst);
                byte[] expected = Arrays.copyOfRange(pixels(), 6 * i, 6 * i + 6);
                assertArrayEquals(expected, dst.toArray(ValueLayout.JAVA_BYTE), "image " + i);
                assertArrayEquals(expected, s.view(i).toArray(ValueLayout.JAVA_BYTE), "view of image " + i);
            }
        }
        assertEquals(4, s.label(0));
        assertEquals(0, s.label(1));
        assertEquals(7, s.label(2));
        assertEquals(List.of("0", "1", "2", "3", "4", "5", "6", "7"), s.classNames());
    }

    @Test
    void readsRawFiles() throws IOException {
        Path images = write("x-images-idx3-ubyte", idx(0x803, new int[] {3, 2, 3}, pixels()));
        Path labels = write("x-labels-idx1-ubyte", idx(0x801, new int[] {3}, LABELS));
        try (IdxSource s = IdxSource.open(images, labels)) {
            assertContent(s);
        }
    }

    @Test
    void readsGzippedFiles() throws IOException {
        Path images = write("x-images-idx3-ubyte.gz", gzip(idx(0x803, new int[] {3, 2, 3}, pixels())));
        Path labels = write("x-labels-idx1-ubyte.gz", gzip(idx(0x801, new int[] {3}, LABELS)));
        try (IdxSource s = IdxSource.open(images, labels)) {
            assertContent(s);
        }
    }

    @Test
    void imagesWithoutLabelsAreUnlabeled() throws IOException {
        Path images = write("x-images-idx3-ubyte", idx(0x803, new int[] {3, 2, 3}, pixels()));
        try (IdxSource s = IdxSource.open(images, null)) {
            assertEquals(-1, s.label(1));
            assertEquals(List.of(), s.classNames());
        }
    }

    @Test
    void closedSourceRefusesReads() throws IOException {
        Path images = write("x-images-idx3-ubyte", idx(0x803, new int[] {3, 2, 3}, pixels()));
        IdxSource s = IdxSource.open(images, null);
        s.close();
        assertThrows(IllegalStateException.class, () -> s.view(0).get(ValueLayout.JAVA_BYTE, 0));
    }

    private ImageDataException refused(Path images, Path labels) {
        return assertThrows(ImageDataException.class, () -> IdxSource.open(images, labels).close());
    }

    private static void assertSays(ImageDataException e, Path file, String... phrases) {
        String m = e.getMessage();
        assertTrue(m.contains(file.toString()), "names " + file + ": " + m);
        for (String p : phrases) {
            assertTrue(m.contains(p), "says \"" + p + "\": " + m);
        }
        assertTrue(!m.contains("\n"), "one line: " + m);
    }

    @Test
    void refusesAWrongImagesMagic() throws IOException {
        Path images = write("a-images-idx3-ubyte", idx(0x801, new int[] {3, 2, 3}, pixels()));
        assertSays(refused(images, null), images, "magic number 0x00000801", "expected 0x00000803");
        Path floats = write("b-images-idx3-ubyte.gz", gzip(idx(0x0D03, new int[] {3, 2, 3}, pixels())));
        assertSays(refused(floats, null), floats, "0x00000D03");
    }

    @Test
    void refusesAWrongLabelsMagic() throws IOException {
        Path images = write("a-images-idx3-ubyte", idx(0x803, new int[] {3, 2, 3}, pixels()));
        Path labels = write("a-labels-idx1-ubyte", idx(0x803, new int[] {3}, LABELS));
        assertSays(refused(images, labels), labels, "magic number 0x00000803", "expected 0x00000801");
    }

    @Test
    void refusesNonPositiveDimensions() throws IOException {
        Path zero = write("z-images-idx3-ubyte", idx(0x803, new int[] {3, 0, 3}, pixels()));
        assertSays(refused(zero, null), zero, "dimension 1 is 0", "positive");
        Path huge = write("h-images-idx3-ubyte.gz", gzip(idx(0x803, new int[] {-1, 2, 3}, pixels())));
        assertSays(refused(huge, null), huge, "dimension 0 is 4294967295");
    }

    @Test
    void refusesAByteCountOtherThanTheHeaders() throws IOException {
        byte[] short1 = Arrays.copyOf(pixels(), 17);
        Path raw = write("s-images-idx3-ubyte", idx(0x803, new int[] {3, 2, 3}, short1));
        assertSays(refused(raw, null), raw, "announces 18 bytes", "has 17");
        Path gz = write("s-images-idx3-ubyte.gz", gzip(idx(0x803, new int[] {3, 2, 3}, short1)));
        assertSays(refused(gz, null), gz, "holds 17 bytes", "announces 18");
        byte[] twenty = Arrays.copyOf(pixels(), 20);
        Path longer = write("l-images-idx3-ubyte.gz", gzip(idx(0x803, new int[] {3, 2, 3}, twenty)));
        assertSays(refused(longer, null), longer, "2 bytes past the 18");
        Path header = write("t-images-idx3-ubyte", Arrays.copyOf(idx(0x803, new int[] {3, 2, 3}, pixels()), 10));
        assertSays(refused(header, null), header, "ends inside its 16-byte IDX header");
        // A tiny gzip file cannot hold a billion pixels: refused before allocating them.
        Path claims = write("c-images-idx3-ubyte.gz", gzip(idx(0x803, new int[] {1000, 1000, 1000}, pixels())));
        assertSays(refused(claims, null), claims, "cannot hold more than");
    }

    @Test
    void refusesCorruptGzip() throws IOException {
        byte[] gz = gzip(idx(0x803, new int[] {3, 2, 3}, pixels()));
        Path cut = write("g-images-idx3-ubyte.gz", Arrays.copyOf(gz, gz.length - 12));
        assertSays(refused(cut, null), cut, "gzip");
    }

    @Test
    void refusesLabelsThatDoNotMatchTheImages() throws IOException {
        Path images = write("m-images-idx3-ubyte", idx(0x803, new int[] {3, 2, 3}, pixels()));
        Path labels = write("m-labels-idx1-ubyte", idx(0x801, new int[] {2}, new byte[] {1, 2}));
        assertSays(refused(images, labels), labels, "2 labels for the 3 images");
        Path ok = write("n-labels-idx1-ubyte", idx(0x801, new int[] {3}, LABELS));
        ImageDataException e = assertThrows(ImageDataException.class,
                () -> IdxSource.open(images, ok, List.of("a", "b"), null).close());
        assertSays(e, ok, "label 7 but only 2 class names");
    }

    @Test
    void fixedSizeViewsAreNotCopies() throws IOException {
        Path images = write("v-images-idx3-ubyte", idx(0x803, new int[] {3, 2, 3}, pixels()));
        try (IdxSource s = IdxSource.open(images, null)) {
            MemorySegment a = s.view(1);
            MemorySegment b = s.view(1);
            assertEquals(a.address(), b.address());
            assertEquals(a.address() + 6, s.view(2).address());
        }
    }
}
