package org.caejava.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.zip.GZIPInputStream;
import org.caejava.io.FuzzCampaign;
import org.caejava.io.Mutator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Generative test of {@link IdxSource}: mutations of a valid images file and labels file, raw or
 * gzipped (byte-level, and of the header's fields: magic, dimensions set to zero, negative, huge or
 * overflowing values, counts that disagree, data cut short or extended, the gzip stream itself
 * corrupted). Each either opens, and then the images and labels are those of the (decompressed)
 * file, or is refused with an {@link ImageDataException} naming the file, before allocating more
 * than the file can hold.
 */
class IdxFuzzTest {

    static final int TRIES = 3000;
    static final long SEED = 0x1D8_0803L;
    static final int COUNT = 6;
    static final int ROWS = 5;
    static final int COLS = 4;

    @TempDir
    Path dir;

    static byte[] images() {
        byte[] pixels = new byte[COUNT * ROWS * COLS];
        for (int i = 0; i < pixels.length; i++) {
            pixels[i] = (byte) (i * 7);
        }
        return IdxSourceTest.idx(IdxSource.IMAGES_MAGIC, new int[] {COUNT, ROWS, COLS}, pixels);
    }

    static byte[] labels() {
        return IdxSourceTest.idx(IdxSource.LABELS_MAGIC, new int[] {COUNT}, new byte[] {3, 0, 1, 2, 3, 1});
    }

    /** A mutation of the header's fields, or of the data's length. */
    static byte[] headerField(byte[] raw, int rank, Random random, Mutator m) {
        int field = random.nextInt(rank + 2);
        if (field == rank + 1) {
            int k = random.nextInt(9) - 4;
            m.note("data " + (k < 0 ? "cut by " + -k : "extended by " + k));
            return Arrays.copyOf(raw, Math.max(0, raw.length + k));
        }
        long v;
        if (field == 0) {
            int[] magics = {IdxSource.IMAGES_MAGIC, IdxSource.LABELS_MAGIC, 0x0808, 0x0804, 0x0D03, 0x0B03, 0x08030000};
            v = random.nextBoolean() ? magics[random.nextInt(magics.length)] : m.edge();
        } else if (random.nextInt(4) == 0) {
            // Every dimension at once: products that overflow 64 bits, or that are huge but fit.
            long d = new long[] {Integer.MAX_VALUE, 1 << 21, 1 << 16, 0x80000000L, 3}[random.nextInt(5)];
            byte[] out = raw;
            for (int i = 1; i <= rank; i++) {
                out = m.integer(out, 4 * i, 4, ByteOrder.BIG_ENDIAN, d);
            }
            return out;
        } else {
            v = random.nextBoolean() ? m.edge() : ByteBuffer.wrap(raw).getInt(4 * field) + random.nextInt(5) - 2;
        }
        return m.integer(raw, 4 * field, 4, ByteOrder.BIG_ENDIAN, v);
    }

    /** The file's bytes after gunzip when gzipped (null when that fails), else themselves. */
    static byte[] decompressed(byte[] file) {
        if (file.length < 2 || (file[0] & 0xFF) != 0x1f || (file[1] & 0xFF) != 0x8b) {
            return file;
        }
        try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(file))) {
            return in.readAllBytes();
        } catch (IOException e) {
            return null;
        }
    }

    @Test
    void mutatedIdxFilesOpenConsistentlyOrAreRefused() throws IOException {
        byte[] images = images();
        byte[] labels = labels();
        Path imagesFile = dir.resolve("fuzz-images-idx3-ubyte");
        Path labelsFile = dir.resolve("fuzz-labels-idx1-ubyte");
        try (FuzzCampaign c = new FuzzCampaign("IdxSource.open", SEED, List.of(ImageDataException.class), 5_000,
                16L << 20, 256L << 20)) {
            Random random = c.random();
            Mutator m = new Mutator(random);
            for (int i = 0; i < TRIES; i++) {
                boolean mutateLabels = random.nextInt(3) == 0;
                boolean withLabels = mutateLabels || random.nextInt(4) != 0;
                boolean gzip = random.nextBoolean();
                byte[] target = mutateLabels ? labels : images;
                int rank = mutateLabels ? 1 : 3;
                byte[] mutated = switch (random.nextInt(gzip ? 4 : 3)) {
                    case 0 -> m.any(target);
                    case 1 -> m.within(target, 0, 4 + 4 * rank);
                    case 2 -> headerField(target, rank, random, m);
                    default -> m.note("(in the gzip stream)").any(IdxSourceTest.gzip(target));
                };
                if (gzip && decompressed(mutated) == mutated) {
                    mutated = IdxSourceTest.gzip(mutated);
                    m.note("gzipped");
                }
                byte[] other = mutateLabels ? images : labels;
                if (gzip && random.nextBoolean()) {
                    other = IdxSourceTest.gzip(other);
                }
                byte[] im = mutateLabels ? other : mutated;
                byte[] lb = mutateLabels ? mutated : other;
                Files.write(imagesFile, im);
                Files.write(labelsFile, lb);
                Path named = mutateLabels ? labelsFile : imagesFile;
                c.attempt(m.description() + (mutateLabels ? " of the labels" : " of the images")
                        + (withLabels ? "" : ", without labels"), named, mutated, () -> {
                            try (IdxSource s = IdxSource.open(imagesFile, withLabels ? labelsFile : null)) {
                                checkConsistent(s, decompressed(im), withLabels ? decompressed(lb) : null);
                            }
                        });
            }
            c.finish();
        }
    }

    /**
     * The reliability goal's example (a 1 KB file claiming 2^31 - 1 images), dimensions whose
     * product overflows 64 bits (an ArithmeticException before the fix), and a gzipped file claiming
     * more than deflate can expand to: each refused from the header, before allocating.
     */
    @Test
    void headersPromisingMoreThanTheFileHoldsAreRefusedBeforeAllocating() throws IOException {
        Path lying = dir.resolve("lying-images-idx3-ubyte");
        Files.write(lying, IdxSourceTest.idx(IdxSource.IMAGES_MAGIC, new int[] {Integer.MAX_VALUE, 28, 28},
                new byte[1008]));
        ImageDataException e = assertThrows(ImageDataException.class, () -> IdxSource.open(lying, null));
        assertEquals(lying + ": the header 2147483647x28x28 announces 1683627179248 bytes of data, but the file has "
                + "1008", e.getMessage());
        int max = Integer.MAX_VALUE;
        Files.write(lying, IdxSourceTest.idx(IdxSource.IMAGES_MAGIC, new int[] {max, max, max}, new byte[8]));
        e = assertThrows(ImageDataException.class, () -> IdxSource.open(lying, null));
        assertEquals(lying + ": the header 2147483647x2147483647x2147483647 announces "
                + "9903520300447984150353281023 bytes of data, but the file has 8", e.getMessage());
        byte[] gz = IdxSourceTest.gzip(IdxSourceTest.idx(IdxSource.IMAGES_MAGIC, new int[] {1 << 20, 28, 28},
                new byte[1000]));
        Files.write(lying, gz);
        e = assertThrows(ImageDataException.class, () -> IdxSource.open(lying, null));
        assertEquals(lying + ": the header 1048576x28x28 announces 822083584 bytes of data, but the file cannot hold "
                + "more than " + 1032L * gz.length + " (gzipped)", e.getMessage());
    }

    /** An open source holds the file's images (and labels), with the header's sizes. */
    private static void checkConsistent(IdxSource s, byte[] images, byte[] labels) {
        assertTrue(images != null && images.length >= 16, "opened, but the test cannot decompress the file");
        ByteBuffer h = ByteBuffer.wrap(images);
        assertEquals(IdxSource.IMAGES_MAGIC, h.getInt());
        int count = h.getInt();
        int rows = h.getInt();
        int cols = h.getInt();
        assertEquals(count, s.size());
        assertEquals(16 + (long) count * rows * cols, images.length);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dst = arena.allocate((long) rows * cols);
            for (int i = 0; i < count; i++) {
                assertEquals(cols, s.width(i));
                assertEquals(rows, s.height(i));
                assertEquals((long) rows * cols, s.byteSize(i));
                s.read(i, dst);
                byte[] expected = Arrays.copyOfRange(images, 16 + i * rows * cols, 16 + (i + 1) * rows * cols);
                assertArrayEquals(expected, dst.toArray(ValueLayout.JAVA_BYTE), "image " + i);
                assertArrayEquals(expected, s.view(i).toArray(ValueLayout.JAVA_BYTE), "view of image " + i);
                if (labels == null) {
                    assertEquals(-1, s.label(i));
                } else {
                    int label = labels[8 + i] & 0xFF;
                    assertEquals(label, s.label(i));
                    assertTrue(label < s.classNames().size());
                }
            }
        }
    }
}
