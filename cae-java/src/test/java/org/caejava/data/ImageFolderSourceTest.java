package org.caejava.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.CRC32;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageFolderSourceTest {

    @TempDir
    Path tmp;

    /** Reads image {@code index} of {@code s} into a byte array. */
    static byte[] bytes(ImageSource s, long index) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dst = arena.allocate(s.byteSize(index));
            s.read(index, dst);
            return dst.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    private static BufferedImage decode(Path p) throws IOException {
        return ImageIO.read(p.toFile());
    }

    private static int index(ImageSource s, String fileName) {
        for (int i = 0; i < s.size(); i++) {
            if (s.describe(i).endsWith(fileName)) {
                return i;
            }
        }
        throw new AssertionError(fileName + " not in " + s);
    }

    @Test
    void classSubfoldersGiveSortedClassNamesAndLabels() throws IOException {
        try (ImageFolderSource s = ImageFolderSource.open(Fixtures.images().resolve("photos"), 3)) {
            assertEquals(4, s.size());
            assertEquals(List.of("animals", "people", "things"), s.classNames());
            assertEquals(List.of("chelsea.png", "astronaut.png", "coffee.png", "rocket.jpg"),
                    List.of(0, 1, 2, 3).stream().map(i -> s.file(i).getFileName().toString()).toList());
            assertArrayEquals(new int[] {0, 1, 2, 2}, new int[] {s.label(0), s.label(1), s.label(2), s.label(3)});
            assertEquals(150, s.width(0));
            assertEquals(100, s.height(0));
            assertEquals(128, s.width(1));
            assertEquals(160, s.width(3));
            assertEquals(107, s.height(3));
            assertEquals(3, s.channels());
        }
    }

    @Test
    void aFolderWithoutSubfoldersIsUnlabeled() throws IOException {
        Path d = Fixtures.copy("photos/things", tmp.resolve("things"));
        Files.writeString(d.resolve("notes.txt"), "not an image");
        Files.copy(d.resolve("coffee.png"), d.resolve(".hidden.png"));
        try (ImageFolderSource s = ImageFolderSource.open(d, 3)) {
            assertEquals(2, s.size(), "only the two images, not the text file or the hidden one");
            assertEquals(-1, s.label(0));
            assertEquals(List.of(), s.classNames());
        }
    }

    @Test
    void rgbPixelsAreTheDecodedOnes() throws IOException {
        Path f = Fixtures.images().resolve("photos/animals/chelsea.png");
        BufferedImage img = decode(f);
        try (ImageFolderSource rgb = ImageFolderSource.open(Fixtures.images().resolve("photos"), 3);
                ImageFolderSource gray = ImageFolderSource.open(Fixtures.images().resolve("photos"), 1)) {
            byte[] c3 = bytes(rgb, 0);
            byte[] c1 = bytes(gray, 0);
            assertEquals(150 * 100 * 3, c3.length);
            assertEquals(150 * 100, c1.length);
            for (int y = 0; y < 100; y += 7) {
                for (int x = 0; x < 150; x += 5) {
                    int p = img.getRGB(x, y);
                    int r = (p >> 16) & 0xFF;
                    int g = (p >> 8) & 0xFF;
                    int b = p & 0xFF;
                    int o = (y * 150 + x) * 3;
                    assertEquals(r, c3[o] & 0xFF);
                    assertEquals(g, c3[o + 1] & 0xFF);
                    assertEquals(b, c3[o + 2] & 0xFF);
                    // PIL's convert("L"): (19595 R + 38470 G + 7471 B + 2^15) >> 16
                    assertEquals((r * 19595 + g * 38470 + b * 7471 + 32768) >> 16, c1[y * 150 + x] & 0xFF);
                }
            }
        }
    }

    @Test
    void grayImagesKeepTheirValuesAndRepeatThemForRgb() throws IOException {
        Path d = Fixtures.copy("formats", tmp.resolve("formats"));
        Raster r = decode(d.resolve("camera-gray.png")).getRaster();
        try (ImageFolderSource gray = ImageFolderSource.open(d, 1);
                ImageFolderSource rgb = ImageFolderSource.open(d, 3)) {
            int i = index(gray, "camera-gray.png");
            byte[] c1 = bytes(gray, i);
            byte[] c3 = bytes(rgb, i);
            int[] expected = r.getSamples(0, 0, 64, 64, 0, new int[64 * 64]);
            int distinct = (int) Arrays.stream(expected).distinct().count();
            assertTrue(distinct > 50, "a real gray image, " + distinct + " levels");
            for (int p = 0; p < 64 * 64; p++) {
                assertEquals(expected[p], c1[p] & 0xFF, "pixel " + p + " unchanged (no gamma conversion)");
                for (int k = 0; k < 3; k++) {
                    assertEquals(expected[p], c3[3 * p + k] & 0xFF);
                }
            }
        }
    }

    @Test
    void sixteenBitImagesAreScaledToEightBits() throws IOException {
        Path d = Fixtures.copy("formats", tmp.resolve("formats"));
        BufferedImage img = decode(d.resolve("chessboard-rgb16.png"));
        assertEquals(BufferedImage.TYPE_CUSTOM, img.getType());
        assertEquals(16, img.getColorModel().getComponentSize(0));
        try (ImageFolderSource s = ImageFolderSource.open(d, 3)) {
            int i = index(s, "chessboard-rgb16.png");
            byte[] c3 = bytes(s, i);
            Raster r = img.getRaster();
            for (int y = 0; y < 200; y += 3) {
                for (int x = 0; x < 200; x += 3) {
                    for (int k = 0; k < 3; k++) {
                        int v16 = r.getSample(x, y, k);
                        int expected = (int) ((v16 * 255L + 32767) / 65535);
                        int got = c3[(y * 200 + x) * 3 + k] & 0xFF;
                        assertTrue(Math.abs(got - expected) <= 1, "(" + x + "," + y + ") band " + k + ": " + got
                                + " for 16-bit " + v16);
                    }
                }
            }
        }
    }

    @Test
    void indexedColorsWithAlphaAreLookedUpThenAlphaDroppedOrComposited() throws IOException {
        Path d = Fixtures.copy("formats", tmp.resolve("formats"));
        BufferedImage img = decode(d.resolve("foo3x5x4indexed.png"));
        IndexColorModel icm = (IndexColorModel) img.getColorModel();
        try (ImageFolderSource drop = ImageFolderSource.open(d, 3);
                ImageFolderSource black = ImageFolderSource.open(d, 3, ImageFolderSource.Alpha.BLACK,
                        ImageFolderSource.DEFAULT_MAX_PIXELS)) {
            int i = index(drop, "foo3x5x4indexed.png");
            assertEquals(5, drop.width(i));
            assertEquals(3, drop.height(i));
            byte[] kept = bytes(drop, i);
            byte[] over = bytes(black, i);
            boolean translucent = false;
            for (int y = 0; y < 3; y++) {
                for (int x = 0; x < 5; x++) {
                    int idx = img.getRaster().getSample(x, y, 0);
                    int a = icm.getAlpha(idx);
                    translucent |= a < 255;
                    int[] c = {icm.getRed(idx), icm.getGreen(idx), icm.getBlue(idx)};
                    for (int k = 0; k < 3; k++) {
                        int o = (y * 5 + x) * 3 + k;
                        assertEquals(c[k], kept[o] & 0xFF);
                        assertEquals((c[k] * a + 127) / 255, over[o] & 0xFF);
                    }
                }
            }
            assertTrue(translucent, "the fixture has translucent pixels");
        }
    }

    @Test
    void rgbaImagesDropOrCompositeAlpha() throws IOException {
        Path d = Fixtures.copy("formats", tmp.resolve("formats"));
        Raster r = decode(d.resolve("horse-rgba.png")).getRaster();
        try (ImageFolderSource drop = ImageFolderSource.open(d, 3);
                ImageFolderSource black = ImageFolderSource.open(d, 1, ImageFolderSource.Alpha.BLACK,
                        ImageFolderSource.DEFAULT_MAX_PIXELS)) {
            int i = index(drop, "horse-rgba.png");
            byte[] kept = bytes(drop, i);
            byte[] over = bytes(black, i);
            int transparent = 0;
            for (int y = 0; y < 82; y++) {
                for (int x = 0; x < 100; x++) {
                    int[] c = {r.getSample(x, y, 0), r.getSample(x, y, 1), r.getSample(x, y, 2)};
                    int a = r.getSample(x, y, 3);
                    transparent += a == 0 ? 1 : 0;
                    int o = y * 100 + x;
                    for (int k = 0; k < 3; k++) {
                        assertEquals(c[k], kept[3 * o + k] & 0xFF);
                    }
                    int lr = (c[0] * a + 127) / 255;
                    int lg = (c[1] * a + 127) / 255;
                    int lb = (c[2] * a + 127) / 255;
                    assertEquals((lr * 19595 + lg * 38470 + lb * 7471 + 32768) >> 16, over[o] & 0xFF);
                    if (a == 0) {
                        assertEquals(0, over[o]);
                    }
                }
            }
            assertTrue(transparent > 1000, "the horse has a transparent background: " + transparent);
        }
    }

    @Test
    void bmpAndGifDecode() throws IOException {
        Path d = Fixtures.copy("formats", tmp.resolve("formats"));
        BufferedImage bmp = decode(d.resolve("chelsea.bmp"));
        BufferedImage gif = decode(d.resolve("chelsea.gif"));
        try (ImageFolderSource s = ImageFolderSource.open(d, 3)) {
            byte[] b = bytes(s, index(s, "chelsea.bmp"));
            byte[] g = bytes(s, index(s, "chelsea.gif"));
            assertEquals(40 * 27 * 3, b.length);
            long diff = 0;
            for (int y = 0; y < 27; y++) {
                for (int x = 0; x < 40; x++) {
                    int pb = bmp.getRGB(x, y);
                    int pg = gif.getRGB(x, y);
                    for (int k = 0; k < 3; k++) {
                        int o = (y * 40 + x) * 3 + k;
                        int shift = 16 - 8 * k;
                        assertEquals((pb >> shift) & 0xFF, b[o] & 0xFF);
                        assertEquals((pg >> shift) & 0xFF, g[o] & 0xFF);
                        diff += Math.abs((b[o] & 0xFF) - (g[o] & 0xFF));
                    }
                }
            }
            assertTrue(diff / (40.0 * 27 * 3) < 20, "the GIF is the same picture in fewer colours");
        }
    }

    @Test
    void aTruncatedJpegIsRefusedNamingTheFile() throws IOException {
        Path d = Fixtures.copy("corrupt", tmp.resolve("corrupt"));
        Path cut = d.resolve("rocket-cut.jpg");
        byte[] rocket = Files.readAllBytes(Fixtures.images().resolve("photos/things/rocket.jpg"));
        Files.write(cut, Arrays.copyOf(rocket, rocket.length / 2));
        try (ImageFolderSource s = ImageFolderSource.open(d, 3)) {
            assertEquals(2, s.size());
            ImageDataException bad = assertThrows(ImageDataException.class, () -> bytes(s, index(s, "truncated.jpg")));
            assertTrue(bad.getMessage().startsWith(d.resolve("truncated.jpg").toString()), bad.getMessage());
            assertTrue(bad.getMessage().contains("Bogus Huffman table"), "ImageIO's reason: " + bad.getMessage());
            ImageDataException half = assertThrows(ImageDataException.class,
                    () -> bytes(s, index(s, "rocket-cut.jpg")));
            assertTrue(half.getMessage().startsWith(cut.toString()), half.getMessage());
            assertTrue(half.getMessage().contains("cut short"), half.getMessage());
        }
    }

    /** A PNG that is only a signature and a header chunk claiming {@code w x h} RGB pixels. */
    static byte[] pngHeader(int w, int h) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        DataOutputStream o = new DataOutputStream(out);
        o.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        ByteArrayOutputStream chunk = new ByteArrayOutputStream();
        DataOutputStream c = new DataOutputStream(chunk);
        c.write("IHDR".getBytes(StandardCharsets.US_ASCII));
        c.writeInt(w);
        c.writeInt(h);
        c.write(new byte[] {8, 2, 0, 0, 0});
        byte[] body = chunk.toByteArray();
        CRC32 crc = new CRC32();
        crc.update(body);
        o.writeInt(13);
        o.write(body);
        o.writeInt((int) crc.getValue());
        return out.toByteArray();
    }

    @Test
    void imagesOverThePixelBoundAreRefusedBeforeDecoding() throws IOException {
        Path d = Files.createDirectories(tmp.resolve("huge"));
        Path huge = d.resolve("huge.png");
        Files.write(huge, pngHeader(200_000, 100_000));
        try (ImageFolderSource s = ImageFolderSource.open(d, 3)) {
            ImageDataException e = assertThrows(ImageDataException.class, () -> s.width(0));
            assertTrue(e.getMessage().startsWith(huge.toString()), e.getMessage());
            assertTrue(e.getMessage().contains("200000x100000 is 20000000000 pixels, more than the 100000000"),
                    e.getMessage());
            assertThrows(ImageDataException.class, () -> s.read(0, MemorySegment.NULL));
        }
        // A real image over a lower bound.
        try (ImageFolderSource s = ImageFolderSource.open(Fixtures.images().resolve("photos"), 3,
                ImageFolderSource.Alpha.DROP, 150 * 100)) {
            assertEquals(150, s.width(0), "chelsea is exactly at the bound");
            ImageDataException e = assertThrows(ImageDataException.class, () -> s.width(1));
            assertTrue(e.getMessage().contains("128x128 is 16384 pixels, more than the 15000"), e.getMessage());
        }
    }

    @Test
    void badFolderLayoutsAreRefused() throws IOException {
        Path mixed = Fixtures.copy("photos", tmp.resolve("mixed"));
        Files.copy(mixed.resolve("things/coffee.png"), mixed.resolve("stray.png"));
        ImageDataException e = assertThrows(ImageDataException.class, () -> ImageFolderSource.open(mixed, 3));
        assertTrue(e.getMessage().contains("stray.png") && e.getMessage().contains("class subfolder"), e.getMessage());
        Path empty = Fixtures.copy("photos", tmp.resolve("empty"));
        Files.createDirectories(empty.resolve("zebras"));
        e = assertThrows(ImageDataException.class, () -> ImageFolderSource.open(empty, 3));
        assertTrue(e.getMessage().contains("zebras") && e.getMessage().contains("without images"), e.getMessage());
        Path none = Files.createDirectories(tmp.resolve("none"));
        e = assertThrows(ImageDataException.class, () -> ImageFolderSource.open(none, 3));
        assertTrue(e.getMessage().contains("no images"), e.getMessage());
    }

    @Test
    void concurrentReadsGiveTheSameImages() throws Exception {
        try (ImageFolderSource s = ImageFolderSource.open(Fixtures.images().resolve("photos"), 3)) {
            List<byte[]> expected = new ArrayList<>();
            for (int i = 0; i < s.size(); i++) {
                expected.add(bytes(s, i));
            }
            ExecutorService pool = Executors.newFixedThreadPool(4);
            try {
                List<Future<Boolean>> results = new ArrayList<>();
                for (int t = 0; t < 16; t++) {
                    int i = t % 4;
                    results.add(pool.submit(() -> Arrays.equals(expected.get(i), bytes(s, i))));
                }
                for (Future<Boolean> f : results) {
                    assertTrue(f.get());
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }
}
