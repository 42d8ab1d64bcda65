package org.caejava.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class AugmentationTest {

    @Test
    void drawsReplayFromSeedEpochAndIndex() {
        Augmentation a = Augmentation.official();
        Set<Augmentation.Crop> distinct = new HashSet<>();
        for (long i = 0; i < 50; i++) {
            Augmentation.Crop c = a.draw(640, 480, 7, 3, i);
            assertEquals(c, a.draw(640, 480, 7, 3, i), "sample " + i + " replays");
            distinct.add(c);
        }
        assertTrue(distinct.size() > 45, "samples differ: " + distinct.size() + " distinct crops of 50");
        int epochDiffers = 0;
        int seedDiffers = 0;
        for (long i = 0; i < 50; i++) {
            epochDiffers += a.draw(640, 480, 7, 3, i).equals(a.draw(640, 480, 7, 4, i)) ? 0 : 1;
            seedDiffers += a.draw(640, 480, 7, 3, i).equals(a.draw(640, 480, 8, 3, i)) ? 0 : 1;
        }
        assertTrue(epochDiffers > 45 && seedDiffers > 45, epochDiffers + " " + seedDiffers);
    }

    @Test
    void cropsStayInsideTheImageWithinScaleAndRatio() {
        Augmentation a = Augmentation.official();
        SplittableRandom rng = new SplittableRandom(1);
        int[][] sizes = {{224, 224}, {640, 427}, {300, 451}, {28, 28}, {33, 17}};
        int flips = 0;
        int n = 0;
        for (int[] wh : sizes) {
            int w = wh[0];
            int h = wh[1];
            for (int k = 0; k < 4000; k++, n++) {
                Augmentation.Crop c = a.draw(w, h, rng);
                assertTrue(c.x() >= 0 && c.y() >= 0 && c.width() >= 1 && c.height() >= 1
                        && c.x() + c.width() <= w && c.y() + c.height() <= h, c + " inside " + w + "x" + h);
                flips += c.flip() ? 1 : 0;
                double area = (double) c.width() * c.height() / (w * h);
                double ratio = (double) c.width() / c.height();
                // Rounding w and h to whole pixels moves area and ratio by up to a pixel's worth.
                double slackArea = (c.width() + c.height() + 1.0) / (w * h);
                double slackRatio = 1.0 / c.height() + ratio / c.height();
                boolean inRange = area >= 0.08 - slackArea && area <= 1 + 1e-9
                        && ratio >= 0.75 - slackRatio && ratio <= 4.0 / 3 + slackRatio;
                boolean fallback = c.equals(a.fallback(w, h, c.flip()))
                        || c.equals(mirrored(a.fallback(w, h, c.flip()), w));
                assertTrue(inRange || fallback, c + " of " + w + "x" + h + ": area " + area + ", ratio " + ratio);
            }
        }
        // p = 0.5: the count of flips is within 5 standard deviations of n / 2.
        assertTrue(Math.abs(flips - n / 2.0) < 5 * Math.sqrt(n / 4.0), flips + " flips of " + n);
    }

    private static Augmentation.Crop mirrored(Augmentation.Crop c, int w) {
        return new Augmentation.Crop(w - c.x() - c.width(), c.y(), c.width(), c.height(), c.flip());
    }

    @Test
    void fallsBackToTheCentreCropWhenTenTriesFail() {
        // A 1000x10 strip: any crop of >= 90% of the area at ratio 1 is ~95 px tall, never fits.
        Augmentation a = Augmentation.official().withScale(0.9, 1.0).withRatio(1, 1).withFlipProbability(0);
        Augmentation.Crop c = a.draw(1000, 10, 1, 0, 0);
        assertEquals(new Augmentation.Crop(495, 0, 10, 10, false), c);
        // Tall image: the ratio is clamped from below.
        Augmentation b = Augmentation.official().withScale(0.99, 1.0).withRatio(0.5, 2).withFlipProbability(0);
        assertEquals(new Augmentation.Crop(0, 490, 10, 20, false), b.draw(10, 1000, 1, 0, 0));
        // In range: the whole image.
        assertEquals(new Augmentation.Crop(0, 0, 30, 30, false), b.fallback(30, 30, false));
    }

    @Test
    void presetsAreTheDocumentedOnes() {
        Augmentation o = Augmentation.official();
        assertArrayEquals(new double[] {0.08, 1, 0.75, 4.0 / 3, 0.5},
                new double[] {o.scaleMin(), o.scaleMax(), o.ratioMin(), o.ratioMax(), o.flipProbability()});
        assertEquals(Augmentation.Interpolation.BICUBIC, o.interpolation());
        Augmentation s = Augmentation.smallImages();
        assertArrayEquals(new double[] {0.5, 1, 0.75, 4.0 / 3, 0.5},
                new double[] {s.scaleMin(), s.scaleMax(), s.ratioMin(), s.ratioMax(), s.flipProbability()});
        assertEquals(0.08, Augmentation.defaultFor(64).scaleMin());
        assertEquals(0.5, Augmentation.defaultFor(28).scaleMin());
        assertThrows(IllegalArgumentException.class, () -> o.withScale(0, 1));
        assertThrows(IllegalArgumentException.class, () -> o.withRatio(2, 1));
        assertThrows(IllegalArgumentException.class, () -> o.withFlipProbability(1.5));
    }

    @Test
    void plainBoxIsResizeThenCenterCrop() {
        // Same size: the whole image.
        assertEquals(new Augmentation.Box(0, 0, 28, 28), Augmentation.plainBox(28, 28, 28));
        // 100x50 to 32: Resize -> 64x32, CenterCrop at left round(16) = 16 -> x in [25, 75).
        assertEquals(new Augmentation.Box(25, 0, 75, 50), Augmentation.plainBox(100, 50, 32));
        // 50x75 to 20: Resize -> 20x30 (int(20 * 75 / 50)), top = round(5.0) = 5 -> y in [12.5, 62.5).
        assertEquals(new Augmentation.Box(0, 12.5, 50, 62.5), Augmentation.plainBox(50, 75, 20));
        // Shorter side already at the size: no resize, crop only.
        assertEquals(new Augmentation.Box(0, 2, 10, 12), Augmentation.plainBox(10, 15, 10));
    }

    @Test
    void resamplingMatchesPilsConvolution() {
        try (Arena arena = Arena.ofConfined()) {
            // 4x1 -> 2x1 bilinear: scale 2 widens the triangle to support 2; output 0 centres at 1.0
            // and weighs pixels 0, 1, 2 by 0.75, 0.75, 0.25 (normalized: 3/7, 3/7, 1/7).
            MemorySegment src = arena.allocate(4);
            src.copyFrom(MemorySegment.ofArray(new byte[] {0, 70, (byte) 140, (byte) 210}));
            float[] out = new float[2];
            Resampler.resample(src, 4, 1, 0, 0, 4, 1, 0, 0, 4, 1, 2, 1, Resampler.Filter.BILINEAR,
                    new Resampler.Work(), out);
            assertEquals(50f, out[0], 1e-4);
            assertEquals(160f, out[1], 1e-4);
            // A constant image stays constant at any scale, with either filter.
            MemorySegment flat = arena.allocate(37 * 23 * 3);
            flat.fill((byte) 200);
            float[] big = new float[50 * 50 * 3];
            for (Resampler.Filter f : Resampler.Filter.values()) {
                Resampler.resample(flat, 37, 3, 0, 0, 37, 23, 0, 0, 37, 23, 50, 50, f, new Resampler.Work(), big);
                for (float v : big) {
                    assertEquals(200f, v, 1e-3);
                }
                Resampler.resample(flat, 37, 3, 5, 4, 20, 11, 0, 0, 20, 11, 3, 3, f, new Resampler.Work(), big);
                assertEquals(200f, big[0], 1e-3);
            }
            // Same size: the pixels themselves (both filters are 0 at +-1 and +-2).
            MemorySegment ramp = arena.allocate(6 * 5);
            for (int i = 0; i < 30; i++) {
                ramp.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 8));
            }
            float[] same = new float[30];
            Resampler.resample(ramp, 6, 1, 0, 0, 6, 5, 0, 0, 6, 5, 6, 5, Resampler.Filter.BICUBIC,
                    new Resampler.Work(), same);
            for (int i = 0; i < 30; i++) {
                assertEquals(i * 8, same[i], 1e-4);
            }
        }
    }

    @Test
    void downscalingAveragesInsteadOfAliasing() {
        try (Arena arena = Arena.ofConfined()) {
            // A one-pixel checkerboard of 0 and 255 shrunk 8x: a point sampler would give 0 or 255,
            // PIL-style resampling averages to ~127.5.
            int n = 64;
            MemorySegment board = arena.allocate(n * n);
            for (int y = 0; y < n; y++) {
                for (int x = 0; x < n; x++) {
                    board.set(ValueLayout.JAVA_BYTE, y * n + x, (byte) (((x + y) & 1) == 0 ? 0 : 255));
                }
            }
            float[] out = new float[8 * 8];
            Resampler.resample(board, n, 1, 0, 0, n, n, 0, 0, n, n, 8, 8, Resampler.Filter.BILINEAR,
                    new Resampler.Work(), out);
            for (float v : out) {
                assertEquals(127.5, v, 8);
            }
            assertNotEquals(0f, out[27]);
        }
    }
}
