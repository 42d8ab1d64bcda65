package org.caejava.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Transparency;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.awt.image.WritableRaster;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;
import java.util.zip.CRC32;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;
import org.caejava.io.FuzzCampaign;
import org.caejava.io.Mutator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Generative test of {@link ImageFolderSource} and {@link RasterReader}: mutations of PNG, JPEG,
 * BMP and GIF files of many kinds (the fixtures, and images written here: gray and RGB JPEG,
 * progressive JPEG, CMYK JPEG, 1-, 8- and 16-bit gray PNG, gray with alpha, 16-bit RGBA, indexed
 * with transparency, interlaced; BMP of 1, 8, 16 and 24 bits and RLE8; GIF, animated GIF),
 * byte-level and in the headers: PNG IHDR sizes, depth and colour type (with the CRC fixed up),
 * chunk lengths; BMP sizes, depth, compression, palette size and data offset; GIF screen and
 * frame sizes; JPEG frame sizes, component count and sampling factors. Each either reads, as an
 * image of the size its header declares, or is refused with an {@link ImageDataException} naming
 * the file.
 */
class ImageFuzzTest {

    static final int TRIES = 3000;
    static final long SEED = 0x1AA6E_F022L;
    /** The default pixel bound: what a small file with a lying header may make the reader allocate. */
    static final long MAX_PIXELS = ImageFolderSource.DEFAULT_MAX_PIXELS;

    @TempDir
    Path tmp;

    private record Base(String name, byte[] bytes) {}

    private static byte[] encode(BufferedImage img, String format, Consumer<ImageWriteParam> configure)
            throws IOException {
        ImageWriter w = ImageIO.getImageWritersByFormatName(format).next();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ImageOutputStream ios = ImageIO.createImageOutputStream(out)) {
            w.setOutput(ios);
            ImageWriteParam p = w.getDefaultWriteParam();
            configure.accept(p);
            w.write(null, new IIOImage(img, null, null), p);
        } finally {
            w.dispose();
        }
        return out.toByteArray();
    }

    private static BufferedImage image(int type, int w, int h) {
        BufferedImage img = new BufferedImage(w, h, type);
        fill(img.getRaster());
        return img;
    }

    private static BufferedImage image(ColorModel cm, int w, int h) {
        WritableRaster r = cm.createCompatibleWritableRaster(w, h);
        fill(r);
        return new BufferedImage(cm, r, false, null);
    }

    private static void fill(WritableRaster r) {
        int max = (1 << r.getSampleModel().getSampleSize(0)) - 1;
        for (int y = 0; y < r.getHeight(); y++) {
            for (int x = 0; x < r.getWidth(); x++) {
                for (int b = 0; b < r.getNumBands(); b++) {
                    r.setSample(x, y, b, (x * 37 + y * 11 + b * 101) % (max + 1));
                }
            }
        }
    }

    /** The fixtures and images of further kinds, each small. */
    private static List<Base> bases() throws IOException {
        List<Base> out = new ArrayList<>();
        for (String f : List.of("formats/camera-gray.png", "formats/horse-rgba.png", "formats/foo3x5x4indexed.png",
                "formats/chelsea.bmp", "formats/chelsea.gif", "formats/chessboard-rgb16.png",
                "photos/things/rocket.jpg", "corrupt/truncated.jpg")) {
            Path p = Fixtures.images().resolve(f);
            out.add(new Base(p.getFileName().toString(), Files.readAllBytes(p)));
        }
        Consumer<ImageWriteParam> plain = p -> {};
        Consumer<ImageWriteParam> progressive = p -> p.setProgressiveMode(ImageWriteParam.MODE_DEFAULT);
        out.add(new Base("gray.jpg", encode(image(BufferedImage.TYPE_BYTE_GRAY, 17, 9), "jpeg", plain)));
        out.add(new Base("rgb.jpg", encode(image(BufferedImage.TYPE_3BYTE_BGR, 20, 12), "jpeg", plain)));
        out.add(new Base("progressive.jpg", encode(image(BufferedImage.TYPE_3BYTE_BGR, 20, 12), "jpeg", progressive)));
        out.add(new Base("cmyk.jpg", cmykJpeg(12, 9)));
        out.add(new Base("gray16.png", encode(image(BufferedImage.TYPE_USHORT_GRAY, 11, 7), "png", plain)));
        out.add(new Base("binary.png", encode(image(BufferedImage.TYPE_BYTE_BINARY, 13, 5), "png", plain)));
        ColorSpace gray = ColorSpace.getInstance(ColorSpace.CS_GRAY);
        ColorSpace srgb = ColorSpace.getInstance(ColorSpace.CS_sRGB);
        out.add(new Base("gray-alpha.png", encode(image(new ComponentColorModel(gray, true, false,
                Transparency.TRANSLUCENT, DataBuffer.TYPE_BYTE), 9, 6), "png", plain)));
        out.add(new Base("rgba16.png", encode(image(new ComponentColorModel(srgb, true, false,
                Transparency.TRANSLUCENT, DataBuffer.TYPE_USHORT), 8, 6), "png", plain)));
        byte[] ramp = new byte[16];
        for (int i = 0; i < 16; i++) {
            ramp[i] = (byte) (i * 17);
        }
        IndexColorModel palette = new IndexColorModel(4, 16, ramp, ramp, ramp, ramp);
        out.add(new Base("indexed-alpha.png", encode(image(palette, 10, 7), "png", plain)));
        out.add(new Base("interlaced.png", encode(image(BufferedImage.TYPE_3BYTE_BGR, 15, 10), "png", progressive)));
        out.add(new Base("rgb24.bmp", encode(image(BufferedImage.TYPE_3BYTE_BGR, 7, 5), "bmp", plain)));
        out.add(new Base("indexed8.bmp", encode(image(BufferedImage.TYPE_BYTE_INDEXED, 9, 4), "bmp", plain)));
        out.add(new Base("rgb565.bmp", encode(image(BufferedImage.TYPE_USHORT_565_RGB, 6, 6), "bmp", plain)));
        out.add(new Base("binary.bmp", encode(image(BufferedImage.TYPE_BYTE_BINARY, 19, 3), "bmp", plain)));
        out.add(new Base("rle8.bmp", encode(image(BufferedImage.TYPE_BYTE_INDEXED, 16, 8), "bmp", p -> {
            p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
            p.setCompressionType("BI_RLE8");
        })));
        out.add(new Base("small.gif", encode(image(BufferedImage.TYPE_BYTE_INDEXED, 12, 10), "gif", plain)));
        out.add(new Base("animated.gif", animatedGif()));
        return out;
    }

    /** A 4-component (CMYK, no Adobe marker) JPEG, written from a raster. */
    private static byte[] cmykJpeg(int w, int h) throws IOException {
        WritableRaster r = Raster.createInterleavedRaster(DataBuffer.TYPE_BYTE, w, h, 4, null);
        fill(r);
        ImageWriter writer = ImageIO.getImageWritersByFormatName("jpeg").next();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ImageOutputStream ios = ImageIO.createImageOutputStream(out)) {
            writer.setOutput(ios);
            writer.write(null, new IIOImage(r, null, null), writer.getDefaultWriteParam());
        } finally {
            writer.dispose();
        }
        return out.toByteArray();
    }

    private static byte[] animatedGif() throws IOException {
        ImageWriter writer = ImageIO.getImageWritersByFormatName("gif").next();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ImageOutputStream ios = ImageIO.createImageOutputStream(out)) {
            writer.setOutput(ios);
            writer.prepareWriteSequence(null);
            writer.writeToSequence(new IIOImage(image(BufferedImage.TYPE_BYTE_INDEXED, 8, 8), null, null), null);
            writer.writeToSequence(new IIOImage(image(BufferedImage.TYPE_BYTE_INDEXED, 8, 8), null, null), null);
            writer.endWriteSequence();
        } finally {
            writer.dispose();
        }
        return out.toByteArray();
    }

    // ---------------------------------------------------------------- header-aware mutations

    private static int u8(byte[] b, int at) {
        return b[at] & 0xFF;
    }

    /** A mutation of a field of the image's header, by format (any mutation when the header is too cut to parse). */
    static byte[] headerField(byte[] in, Random random, Mutator m) {
        try {
            return headerFieldOf(in, random, m);
        } catch (IndexOutOfBoundsException e) {
            return m.note("(header unparsable)").any(in);
        }
    }

    private static byte[] headerFieldOf(byte[] in, Random random, Mutator m) {
        if (in.length > 33 && u8(in, 0) == 0x89 && in[1] == 'P') {
            return png(in, random, m);
        } else if (in.length > 54 && in[0] == 'B' && in[1] == 'M') {
            return bmp(in, random, m);
        } else if (in.length > 13 && in[0] == 'G' && in[1] == 'I') {
            return gif(in, random, m);
        } else if (in.length > 4 && u8(in, 0) == 0xFF && u8(in, 1) == 0xD8) {
            return jpeg(in, random, m);
        }
        return m.any(in);
    }

    /** A size: zero, one, larger by a little, huge, at a sign boundary. */
    private static long size(long old, Random random, Mutator m) {
        return switch (random.nextInt(6)) {
            case 0 -> 0;
            case 1 -> old + 1 + random.nextInt(4);
            case 2 -> new long[] {1000, 1024, 5000, 10_000, 46_341, 65_535, 100_000}[random.nextInt(7)];
            case 3 -> old * (2 + random.nextInt(8));
            default -> m.edge();
        };
    }

    private static byte[] png(byte[] in, Random random, Mutator m) {
        byte[] out;
        if (random.nextInt(4) == 0) {
            // A chunk's length field, for a chunk after IHDR.
            List<Integer> chunks = new ArrayList<>();
            for (int at = 8; at + 8 <= in.length; ) {
                chunks.add(at);
                long len = ByteBuffer.wrap(in, at, 4).getInt() & 0xFFFFFFFFL;
                if (len > in.length) {
                    break;
                }
                at += 12 + (int) len;
            }
            int at = chunks.get(random.nextInt(chunks.size()));
            m.note("PNG chunk " + new String(in, at + 4, 4, StandardCharsets.ISO_8859_1) + " length");
            return m.integer(in, at, 4, ByteOrder.BIG_ENDIAN, size(ByteBuffer.wrap(in, at, 4).getInt(), random, m));
        }
        switch (random.nextInt(5)) {
            case 0, 1 -> {
                int at = random.nextBoolean() ? 16 : 20;
                m.note("PNG " + (at == 16 ? "width" : "height"));
                out = m.integer(in, at, 4, ByteOrder.BIG_ENDIAN, size(ByteBuffer.wrap(in, at, 4).getInt(), random, m));
            }
            case 2 -> {
                out = in.clone();
                out[24] = (byte) new int[] {1, 2, 4, 8, 16, 0, 3, 32, 255}[random.nextInt(9)];
                m.note("PNG bit depth " + u8(out, 24));
            }
            case 3 -> {
                out = in.clone();
                out[25] = (byte) new int[] {0, 2, 3, 4, 6, 1, 5, 7, 255}[random.nextInt(9)];
                m.note("PNG colour type " + u8(out, 25));
            }
            default -> {
                out = in.clone();
                int at = 26 + random.nextInt(3);
                out[at] = (byte) random.nextInt(4);
                m.note("PNG IHDR byte " + at + " = " + u8(out, at));
            }
        }
        if (random.nextInt(4) != 0) {
            CRC32 crc = new CRC32();
            crc.update(out, 12, 17);
            ByteBuffer.wrap(out, 29, 4).putInt((int) crc.getValue());
            m.note("(CRC fixed)");
        }
        return out;
    }

    private static byte[] bmp(byte[] in, Random random, Mutator m) {
        ByteBuffer b = ByteBuffer.wrap(in).order(ByteOrder.LITTLE_ENDIAN);
        return switch (random.nextInt(9)) {
            case 0 -> m.note("BMP width").integer(in, 18, 4, ByteOrder.LITTLE_ENDIAN, size(b.getInt(18), random, m));
            case 1 -> m.note("BMP height").integer(in, 22, 4, ByteOrder.LITTLE_ENDIAN,
                    random.nextBoolean() ? -b.getInt(22) : size(b.getInt(22), random, m));
            case 2 -> m.note("BMP bits per pixel").integer(in, 28, 2, ByteOrder.LITTLE_ENDIAN,
                    new int[] {0, 1, 2, 4, 8, 16, 24, 32, 64, 65535}[random.nextInt(10)]);
            case 3 -> m.note("BMP compression").integer(in, 30, 4, ByteOrder.LITTLE_ENDIAN, random.nextInt(8));
            case 4 -> m.note("BMP colours used").integer(in, 46, 4, ByteOrder.LITTLE_ENDIAN,
                    size(b.getInt(46), random, m));
            case 5 -> m.note("BMP data offset").integer(in, 10, 4, ByteOrder.LITTLE_ENDIAN,
                    random.nextBoolean() ? m.edge() : random.nextInt(in.length + 16));
            case 6 -> m.note("BMP info header size").integer(in, 14, 4, ByteOrder.LITTLE_ENDIAN,
                    new long[] {0, 12, 16, 40, 52, 56, 64, 108, 124, 200, 0xFFFFFFFFL}[random.nextInt(11)]);
            case 7 -> m.note("BMP image size").integer(in, 34, 4, ByteOrder.LITTLE_ENDIAN, m.edge());
            default -> m.note("BMP planes").integer(in, 26, 2, ByteOrder.LITTLE_ENDIAN, random.nextInt(3));
        };
    }

    private static byte[] gif(byte[] in, Random random, Mutator m) {
        ByteBuffer b = ByteBuffer.wrap(in).order(ByteOrder.LITTLE_ENDIAN);
        int descriptor = -1;
        int table = (u8(in, 10) & 0x80) != 0 ? 3 << ((u8(in, 10) & 7) + 1) : 0;
        for (int at = 13 + table; at < in.length - 10; at++) {
            if (u8(in, at) == 0x2C) {
                descriptor = at;
                break;
            }
        }
        int field = random.nextInt(descriptor < 0 ? 3 : 8);
        return switch (field) {
            case 0 -> m.note("GIF screen width").integer(in, 6, 2, ByteOrder.LITTLE_ENDIAN,
                    size(b.getShort(6), random, m));
            case 1 -> m.note("GIF screen height").integer(in, 8, 2, ByteOrder.LITTLE_ENDIAN,
                    size(b.getShort(8), random, m));
            case 2 -> {
                byte[] out = in.clone();
                out[10] = (byte) random.nextInt(256);
                m.note("GIF screen flags " + u8(out, 10));
                yield out;
            }
            case 3 -> m.note("GIF frame left").integer(in, descriptor + 1, 2, ByteOrder.LITTLE_ENDIAN,
                    size(b.getShort(descriptor + 1), random, m));
            case 4 -> m.note("GIF frame top").integer(in, descriptor + 3, 2, ByteOrder.LITTLE_ENDIAN,
                    size(b.getShort(descriptor + 3), random, m));
            case 5 -> m.note("GIF frame width").integer(in, descriptor + 5, 2, ByteOrder.LITTLE_ENDIAN,
                    size(b.getShort(descriptor + 5), random, m));
            case 6 -> m.note("GIF frame height").integer(in, descriptor + 7, 2, ByteOrder.LITTLE_ENDIAN,
                    size(b.getShort(descriptor + 7), random, m));
            default -> {
                // The LZW minimum code size after the frame's descriptor (and its local colour table).
                int flags = u8(in, descriptor + 9);
                int at = descriptor + 10 + ((flags & 0x80) != 0 ? 3 << ((flags & 7) + 1) : 0);
                byte[] out = in.clone();
                if (at < out.length) {
                    out[at] = (byte) new int[] {0, 1, 2, 8, 11, 12, 13, 255}[random.nextInt(8)];
                }
                m.note("GIF LZW code size at " + at);
                yield out;
            }
        };
    }

    private static byte[] jpeg(byte[] in, Random random, Mutator m) {
        List<Integer> segments = new ArrayList<>();
        int sof = -1;
        for (int at = 2; at + 4 <= in.length && u8(in, at) == 0xFF; ) {
            int marker = u8(in, at + 1);
            segments.add(at);
            if (marker >= 0xC0 && marker <= 0xC2 && sof < 0) {
                sof = at;
            }
            if (marker == 0xDA) {
                break;
            }
            at += 2 + ((u8(in, at + 2) << 8) | u8(in, at + 3));
        }
        int choice = random.nextInt(sof < 0 ? 1 : 6);
        if (choice == 0) {
            int at = segments.isEmpty() ? 2 : segments.get(random.nextInt(segments.size()));
            m.note("JPEG segment length at " + at);
            return m.integer(in, at + 2, 2, ByteOrder.BIG_ENDIAN,
                    size((u8(in, at + 2) << 8) | u8(in, at + 3), random, m));
        }
        int s = sof;
        return switch (choice) {
            case 1 -> m.note("JPEG height").integer(in, s + 5, 2, ByteOrder.BIG_ENDIAN,
                    size((u8(in, s + 5) << 8) | u8(in, s + 6), random, m));
            case 2 -> m.note("JPEG width").integer(in, s + 7, 2, ByteOrder.BIG_ENDIAN,
                    size((u8(in, s + 7) << 8) | u8(in, s + 8), random, m));
            case 3 -> {
                byte[] out = in.clone();
                out[s + 9] = (byte) random.nextInt(6);
                m.note("JPEG components " + out[s + 9]);
                yield out;
            }
            case 4 -> {
                byte[] out = in.clone();
                int c = random.nextInt(Math.max(1, u8(in, s + 9)));
                out[s + 11 + 3 * c] = (byte) new int[] {0x11, 0x22, 0x44, 0x00, 0xFF, 0x12, 0x41}[random.nextInt(7)];
                m.note("JPEG sampling of component " + c + " = " + Integer.toHexString(u8(out, s + 11 + 3 * c)));
                yield out;
            }
            default -> {
                byte[] out = in.clone();
                out[s + 4] = (byte) new int[] {8, 12, 16, 0, 255}[random.nextInt(5)];
                m.note("JPEG precision " + u8(out, s + 4));
                yield out;
            }
        };
    }

    // ---------------------------------------------------------------- the campaign

    @Test
    void mutatedImagesReadAtTheirDeclaredSizeOrAreRefused() throws IOException {
        List<Base> bases = bases();
        try (FuzzCampaign c = new FuzzCampaign("ImageFolderSource.read", SEED, List.of(ImageDataException.class),
                5_000, 32L << 20, 64L << 20)) {
            Random random = c.random();
            Mutator m = new Mutator(random);
            for (int i = 0; i < TRIES; i++) {
                Base base = bases.get(random.nextInt(bases.size()));
                byte[] input = switch (random.nextInt(3)) {
                    case 0 -> m.any(base.bytes());
                    case 1 -> m.within(base.bytes(), 0, Math.min(base.bytes().length, 64));
                    default -> headerField(base.bytes(), random, m);
                };
                if (random.nextInt(8) == 0) {
                    input = headerField(input, random, m);
                }
                Path dir = Files.createDirectories(tmp.resolve("try" + i));
                Path file = dir.resolve(base.name());
                Files.write(file, input);
                int channels = random.nextBoolean() ? 3 : 1;
                ImageFolderSource.Alpha alpha = random.nextBoolean() ? ImageFolderSource.Alpha.DROP
                        : ImageFolderSource.Alpha.BLACK;
                c.attempt(m.description() + " of " + base.name() + " as " + channels + " channels, alpha " + alpha,
                        file, input, () -> {
                            try (ImageFolderSource s = ImageFolderSource.open(dir, channels, alpha, MAX_PIXELS)) {
                                checkConsistent(s, channels);
                            }
                        });
                Files.delete(file);
                Files.delete(dir);
            }
            c.finish();
        }
    }

    /** A 33-byte PNG (signature and header) claiming 10000x10000 RGBA of 16 bits: 800 MB decoded. */
    @Test
    void aSmallFileClaimingAHugeImageIsRefusedFromItsHeader() throws IOException {
        byte[] png = ImageFolderSourceTest.pngHeader(10_000, 10_000);
        png[24] = 16;
        png[25] = 6;
        CRC32 crc = new CRC32();
        crc.update(png, 12, 17);
        ByteBuffer.wrap(png, 29, 4).putInt((int) crc.getValue());
        Path dir = Files.createDirectories(tmp.resolve("lying"));
        Path f = dir.resolve("lying.png");
        Files.write(f, png);
        try (ImageFolderSource s = ImageFolderSource.open(dir, 3)) {
            ImageDataException e = assertThrows(ImageDataException.class, () -> s.width(0));
            assertEquals(f + ": 10000x10000 pixels of 64 bits decode to 800000000 bytes, more than its 33 bytes can "
                    + "encode (at most 4096:1)", e.getMessage());
        }
    }

    /**
     * Solid images, as compressed as each format's writer makes them, expand far less than the bound
     * and read: the bound refuses lying headers, not real images.
     */
    @Test
    void highlyCompressibleImagesStayWellUnderTheExpansionBound() throws IOException {
        int n = 2000;
        Path dir = Files.createDirectories(tmp.resolve("solid"));
        List<String> ratios = new ArrayList<>();
        for (String name : List.of("gray.png", "binary.png", "rgb.png", "rgb.jpg", "gray.jpg", "indexed.gif")) {
            int type = name.startsWith("gray") ? BufferedImage.TYPE_BYTE_GRAY
                    : name.startsWith("binary") ? BufferedImage.TYPE_BYTE_BINARY
                    : name.startsWith("indexed") ? BufferedImage.TYPE_BYTE_INDEXED : BufferedImage.TYPE_3BYTE_BGR;
            BufferedImage img = new BufferedImage(n, n, type);
            Path f = dir.resolve(name);
            Files.write(f, encode(img, name.substring(name.indexOf('.') + 1).replace("jpg", "jpeg"), p -> {}));
            long decoded = (long) n * n * img.getColorModel().getPixelSize() / 8;
            long ratio = decoded / Files.size(f);
            ratios.add(name + " " + ratio + ":1");
            assertTrue(ratio < ImageFolderSource.MAX_EXPANSION / 2, name + " expands " + ratio + ":1");
        }
        System.out.println("solid " + n + "x" + n + " images expand " + ratios);
        try (ImageFolderSource s = ImageFolderSource.open(dir, 3)) {
            for (int i = 0; i < s.size(); i++) {
                assertEquals(n, s.width(i));
                try (Arena arena = Arena.ofConfined()) {
                    s.read(i, arena.allocate(s.byteSize(i)));
                }
            }
        }
    }

    /** A read image has the size its header declares, within the pixel bound; reading is repeatable. */
    private static void checkConsistent(ImageFolderSource s, int channels) {
        assertEquals(1, s.size());
        int w = s.width(0);
        int h = s.height(0);
        assertTrue(w > 0 && h > 0 && (long) w * h <= MAX_PIXELS, w + "x" + h);
        assertEquals((long) w * h * channels, s.byteSize(0));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocate(s.byteSize(0));
            MemorySegment b = arena.allocate(s.byteSize(0));
            b.fill((byte) 0x5A);
            s.read(0, a);
            s.read(0, b);
            assertArrayEquals(a.toArray(ValueLayout.JAVA_BYTE), b.toArray(ValueLayout.JAVA_BYTE));
        }
    }
}
