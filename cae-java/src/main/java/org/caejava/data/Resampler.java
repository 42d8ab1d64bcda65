package org.caejava.data;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Separable convolution resampling of 8-bit interleaved images, as PIL's {@code Image.resize} (which
 * torchvision's transforms call): for output pixel {@code i} of an axis, the source centre is
 * {@code box0 + (i + 0.5) * scale} and the filter's support widens with the scale when shrinking,
 * so a downscale averages every source pixel it covers instead of aliasing. Taps are clamped to a
 * source region (a crop, or the whole image). Values stay in float between the horizontal and
 * the vertical pass (PIL rounds to 8 bits in between) and come out in [0, 255] before rounding:
 * bicubic may overshoot that range, the caller clamps.
 */
final class Resampler {

    enum Filter {
        BILINEAR(1.0) {
            @Override
            double weight(double x) {
                x = Math.abs(x);
                return x < 1 ? 1 - x : 0;
            }
        },
        /** Keys' cubic with a = -0.5, as PIL's BICUBIC. */
        BICUBIC(2.0) {
            @Override
            double weight(double x) {
                final double a = -0.5;
                x = Math.abs(x);
                if (x < 1) {
                    return ((a + 2) * x - (a + 3)) * x * x + 1;
                }
                if (x < 2) {
                    return (((x - 5) * x + 8) * x - 4) * a;
                }
                return 0;
            }
        };

        final double support;

        Filter(double support) {
            this.support = support;
        }

        abstract double weight(double x);
    }

    /** The taps of one axis: output i reads source {@code first[i] .. first[i] + count[i] - 1}. */
    static final class Axis {
        int[] first = new int[0];
        int[] count = new int[0];
        float[] weights = new float[0];
        int taps;

        /**
         * Fills the taps for {@code out} outputs over the source interval [box0, box1) of a region
         * of {@code size} pixels (coordinates relative to the region).
         */
        void fill(double box0, double box1, int size, int out, Filter filter) {
            double scale = (box1 - box0) / out;
            double filterScale = Math.max(scale, 1.0);
            double support = filter.support * filterScale;
            taps = (int) Math.ceil(support) * 2 + 1;
            if (first.length < out) {
                first = new int[out];
                count = new int[out];
            }
            if (weights.length < out * taps) {
                weights = new float[out * taps];
            }
            double inv = 1.0 / filterScale;
            for (int i = 0; i < out; i++) {
                double center = box0 + (i + 0.5) * scale;
                int lo = Math.max((int) (center - support + 0.5), 0);
                int hi = Math.min((int) (center + support + 0.5), size);
                int n = Math.max(hi - lo, 0);
                double total = 0;
                for (int k = 0; k < n; k++) {
                    total += filter.weight((k + lo - center + 0.5) * inv);
                }
                for (int k = 0; k < taps; k++) {
                    double w = k < n ? filter.weight((k + lo - center + 0.5) * inv) : 0;
                    weights[i * taps + k] = (float) (total != 0 ? w / total : 0);
                }
                first[i] = lo;
                count[i] = n;
            }
        }
    }

    /** Reusable buffers of one thread. */
    static final class Work {
        final Axis xs = new Axis();
        final Axis ys = new Axis();
        byte[] row = new byte[0];
        float[] tmp = new float[0];

        byte[] row(int n) {
            if (row.length < n) {
                row = new byte[n];
            }
            return row;
        }

        float[] tmp(int n) {
            if (tmp.length < n) {
                tmp = new float[n];
            }
            return tmp;
        }
    }

    private Resampler() {}

    /**
     * Resamples the region ({@code rx, ry, rw, rh}) of {@code src} (an image {@code srcWidth} wide,
     * {@code c} bytes per pixel, HWC) over the box [x0, x1) x [y0, y1) given in region coordinates, to
     * {@code outW x outH x c} floats (HWC) in {@code out}.
     */
    static void resample(MemorySegment src, int srcWidth, int c, int rx, int ry, int rw, int rh, double x0,
            double y0, double x1, double y1, int outW, int outH, Filter filter, Work work, float[] out) {
        if (c != 1 && c != 3) {
            throw new IllegalArgumentException("1 or 3 channels, not " + c);
        }
        Axis xs = work.xs;
        Axis ys = work.ys;
        xs.fill(x0, x1, rw, outW, filter);
        ys.fill(y0, y1, rh, outH, filter);
        int rowFirst = rh;
        int rowEnd = 0;
        for (int i = 0; i < outH; i++) {
            rowFirst = Math.min(rowFirst, ys.first[i]);
            rowEnd = Math.max(rowEnd, ys.first[i] + ys.count[i]);
        }
        int rows = Math.max(rowEnd - rowFirst, 0);
        int lineOut = outW * c;
        float[] tmp = work.tmp(rows * lineOut);
        byte[] row = work.row(rw * c);
        // Horizontal pass: the region's rows that the vertical taps reach -> tmp [rows, outW, c].
        for (int r = 0; r < rows; r++) {
            long offset = ((long) (ry + rowFirst + r) * srcWidth + rx) * c;
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, offset, row, 0, rw * c);
            int t = r * lineOut;
            for (int i = 0; i < outW; i++) {
                int n = xs.count[i];
                int wBase = i * xs.taps;
                int p0 = xs.first[i] * c;
                if (c == 1) {
                    float acc = 0;
                    for (int k = 0; k < n; k++) {
                        acc += xs.weights[wBase + k] * (row[p0 + k] & 0xFF);
                    }
                    tmp[t + i] = acc;
                } else {
                    // c == 3: the three channels of a tap side by side.
                    float a0 = 0;
                    float a1 = 0;
                    float a2 = 0;
                    for (int k = 0, p = p0; k < n; k++, p += 3) {
                        float w = xs.weights[wBase + k];
                        a0 += w * (row[p] & 0xFF);
                        a1 += w * (row[p + 1] & 0xFF);
                        a2 += w * (row[p + 2] & 0xFF);
                    }
                    int o = t + i * 3;
                    tmp[o] = a0;
                    tmp[o + 1] = a1;
                    tmp[o + 2] = a2;
                }
            }
        }
        // Vertical pass: tmp -> out [outH, outW, c].
        for (int j = 0; j < outH; j++) {
            int o = j * lineOut;
            java.util.Arrays.fill(out, o, o + lineOut, 0f);
            int n = ys.count[j];
            int wBase = j * ys.taps;
            for (int k = 0; k < n; k++) {
                float w = ys.weights[wBase + k];
                int t = (ys.first[j] + k - rowFirst) * lineOut;
                for (int q = 0; q < lineOut; q++) {
                    out[o + q] += w * tmp[t + q];
                }
            }
        }
    }

    /** Copies the region ({@code rx, ry, w, h}) of {@code src} unchanged into {@code out} as floats. */
    static void copy(MemorySegment src, int srcWidth, int c, int rx, int ry, int w, int h, Work work, float[] out) {
        byte[] row = work.row(w * c);
        for (int y = 0; y < h; y++) {
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, ((long) (ry + y) * srcWidth + rx) * c, row, 0, w * c);
            int o = y * w * c;
            for (int q = 0; q < w * c; q++) {
                out[o + q] = row[q] & 0xFF;
            }
        }
    }
}
