package org.caejava.data;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBufferByte;
import java.awt.image.PixelInterleavedSampleModel;
import java.awt.image.Raster;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.caejava.data.ImageFolderSource.Alpha;

/**
 * Turns a decoded {@link BufferedImage} of any ImageIO type into interleaved 8-bit gray or RGB.
 *
 * <ul>
 *   <li>8-bit gray or sRGB images with interleaved bytes (what the JPEG, PNG and BMP readers give for
 *       most files) are read straight from the raster.
 *   <li>Gray images of other depths (16-bit PNG) are read as samples and scaled to 8 bits, without
 *       colour management: Java's gray colour space is linear and {@code getRGB} would brighten them.
 *   <li>Everything else (indexed colours, 16-bit RGB, packed pixels, other colour spaces) goes
 *       through {@link BufferedImage#getRGB}, which converts to sRGB.
 * </ul>
 *
 * Gray becomes RGB by repeating the value; RGB becomes gray with the ITU-R 601-2 luma weights in
 * PIL's fixed point ({@code (19595 R + 38470 G + 7471 B + 2^15) >> 16}), as {@code convert("L")}.
 */
final class RasterReader {

    private RasterReader() {}

    /** Writes {@code img} as height * width * channels bytes (HWC) at the start of {@code dst}. */
    static void read(BufferedImage img, int channels, Alpha alpha, MemorySegment dst) {
        if (channels != 1 && channels != 3) {
            throw new IllegalArgumentException("channels must be 1 or 3, not " + channels);
        }
        ColorModel cm = img.getColorModel();
        ColorSpace cs = cm.getColorSpace();
        boolean gray = cs.getType() == ColorSpace.TYPE_GRAY;
        if (cm instanceof ComponentColorModel && (gray || cs.isCS_sRGB()) && !cm.isAlphaPremultiplied()
                && img.getRaster().getSampleModel() instanceof PixelInterleavedSampleModel
                && img.getRaster().getDataBuffer() instanceof DataBufferByte && allBits(cm, 8)) {
            readBytes(img, gray, channels, alpha, dst);
        } else if (cm instanceof ComponentColorModel && gray) {
            readGraySamples(img, channels, alpha, dst);
        } else {
            readRgb(img, channels, alpha, dst);
        }
    }

    private static boolean allBits(ColorModel cm, int bits) {
        for (int s : cm.getComponentSize()) {
            if (s != bits) {
                return false;
            }
        }
        return true;
    }

    private static void readBytes(BufferedImage img, boolean gray, int channels, Alpha alpha, MemorySegment dst) {
        Raster r = img.getRaster();
        PixelInterleavedSampleModel sm = (PixelInterleavedSampleModel) r.getSampleModel();
        byte[] data = ((DataBufferByte) r.getDataBuffer()).getData();
        int w = img.getWidth();
        int h = img.getHeight();
        int pixelStride = sm.getPixelStride();
        int scanline = sm.getScanlineStride();
        int[] offsets = sm.getBandOffsets();
        int base = r.getDataBuffer().getOffset()
                - r.getSampleModelTranslateY() * scanline - r.getSampleModelTranslateX() * pixelStride;
        int colorBands = gray ? 1 : 3;
        boolean hasAlpha = img.getColorModel().hasAlpha();
        boolean blend = hasAlpha && alpha == Alpha.BLACK;
        int oa = hasAlpha ? offsets[colorBands] : 0;
        int o0 = offsets[0];
        int o1 = gray ? o0 : offsets[1];
        int o2 = gray ? o0 : offsets[2];
        byte[] row = new byte[w * channels];
        for (int y = 0; y < h; y++) {
            int p = base + y * scanline;
            for (int x = 0; x < w; x++, p += pixelStride) {
                int c0 = data[p + o0] & 0xFF;
                int c1 = data[p + o1] & 0xFF;
                int c2 = data[p + o2] & 0xFF;
                if (blend) {
                    int a = data[p + oa] & 0xFF;
                    c0 = times(c0, a);
                    c1 = times(c1, a);
                    c2 = times(c2, a);
                }
                put(row, x, channels, gray, c0, c1, c2);
            }
            MemorySegment.copy(row, 0, dst, ValueLayout.JAVA_BYTE, (long) y * row.length, row.length);
        }
    }

    private static void readGraySamples(BufferedImage img, int channels, Alpha alpha, MemorySegment dst) {
        Raster r = img.getRaster();
        ColorModel cm = img.getColorModel();
        int w = img.getWidth();
        int h = img.getHeight();
        int max = (1 << cm.getComponentSize(0)) - 1;
        boolean blend = cm.hasAlpha() && alpha == Alpha.BLACK;
        int amax = cm.hasAlpha() ? (1 << cm.getComponentSize(1)) - 1 : 1;
        int[] g = new int[w];
        int[] a = new int[w];
        byte[] row = new byte[w * channels];
        for (int y = 0; y < h; y++) {
            r.getSamples(r.getMinX(), r.getMinY() + y, w, 1, 0, g);
            if (blend) {
                r.getSamples(r.getMinX(), r.getMinY() + y, w, 1, 1, a);
            }
            for (int x = 0; x < w; x++) {
                int v = scale(g[x], max);
                if (blend) {
                    v = times(v, scale(a[x], amax));
                }
                put(row, x, channels, true, v, v, v);
            }
            MemorySegment.copy(row, 0, dst, ValueLayout.JAVA_BYTE, (long) y * row.length, row.length);
        }
    }

    private static void readRgb(BufferedImage img, int channels, Alpha alpha, MemorySegment dst) {
        int w = img.getWidth();
        int h = img.getHeight();
        boolean blend = img.getColorModel().hasAlpha() && alpha == Alpha.BLACK;
        int[] argb = new int[w];
        byte[] row = new byte[w * channels];
        for (int y = 0; y < h; y++) {
            img.getRGB(0, y, w, 1, argb, 0, w);
            for (int x = 0; x < w; x++) {
                int p = argb[x];
                int cr = (p >>> 16) & 0xFF;
                int cg = (p >>> 8) & 0xFF;
                int cb = p & 0xFF;
                if (blend) {
                    int a = p >>> 24;
                    cr = times(cr, a);
                    cg = times(cg, a);
                    cb = times(cb, a);
                }
                put(row, x, channels, false, cr, cg, cb);
            }
            MemorySegment.copy(row, 0, dst, ValueLayout.JAVA_BYTE, (long) y * row.length, row.length);
        }
    }

    private static void put(byte[] row, int x, int channels, boolean gray, int c0, int c1, int c2) {
        if (channels == 3) {
            row[3 * x] = (byte) c0;
            row[3 * x + 1] = (byte) c1;
            row[3 * x + 2] = (byte) c2;
        } else {
            row[x] = (byte) (gray ? c0 : luma(c0, c1, c2));
        }
    }

    /** ITU-R 601-2 luma in PIL's fixed point. */
    static int luma(int r, int g, int b) {
        return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    }

    /** {@code round(c * a / 255)} for bytes. */
    static int times(int c, int a) {
        return (c * a + 127) / 255;
    }

    /** A sample of {@code max} levels to 8 bits, rounded. */
    private static int scale(int v, int max) {
        return max == 255 ? v : (int) ((v * 255L + max / 2) / max);
    }
}
