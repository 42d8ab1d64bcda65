package org.caejava.report;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.caejava.eval.KnnPoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LossCurvesTest {

    @TempDir
    Path dir;

    static List<MetricsRecord> records(int n, boolean zeroAlign) {
        List<MetricsRecord> r = new ArrayList<>();
        for (int s = 1; s <= n; s++) {
            double main = 1.0 / Math.sqrt(s) + 0.3;
            double align = zeroAlign ? 0 : 0.05 * Math.exp(-s / 300.0) + 0.01;
            double lr = s < n / 30 ? 1e-3 * s / (n / 30.0) : 1e-3 * 0.5 * (1 + Math.cos(Math.PI * s / n));
            r.add(new MetricsRecord(s, n, s / 100, lr, s == 50 ? Double.NaN : main + 2 * align, main, align, 1.2,
                    false, 700, 1, 40, s * 0.05, 0));
        }
        return r;
    }

    @Test
    void theCurvesAreAReadablePngOfThreePanels() throws Exception {
        Path png = dir.resolve("loss.png");
        assertTrue(LossCurves.write(records(3000, false), png));
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(LossCurves.WIDTH, img.getWidth());
        int a = LossCurves.LOSS_HEIGHT;
        int b = a + LossCurves.ALIGN_HEIGHT;
        assertEquals(b + LossCurves.LR_HEIGHT, img.getHeight());
        // Something is drawn in every panel, in the panel's line colour: not a blank image.
        assertTrue(colours(img, 0, a) > 10);
        assertTrue(colours(img, a, b) > 10);
        assertTrue(colours(img, b, img.getHeight()) > 10);
        assertTrue(has(img, 0, a, 0x1F4E9A), "the total loss line");
        assertTrue(has(img, a, b, 0x2E8B57), "the alignment loss line");
        assertTrue(has(img, b, img.getHeight(), 0x7A3E9D), "the learning-rate line");
    }

    @Test
    void axesGetAFewRoundTicks() {
        // Steps: 0 to the last step.
        assertArrayEquals(new double[] {0, 200, 400, 600, 800}, LinePlot.ticks(0, 800));
        assertArrayEquals(new double[] {0, 100, 200, 300}, LinePlot.ticks(0, 390));
        assertArrayEquals(new double[] {0, 2, 4, 6, 8, 10, 12}, LinePlot.ticks(0, 12));
        assertArrayEquals(new double[] {0, 500, 1000, 1500, 2000, 2500, 3000}, LinePlot.ticks(0, 3000));
        assertArrayEquals(new double[] {0, 20_000, 40_000, 60_000, 80_000, 100_000}, LinePlot.ticks(0, 117_000));
        // Losses, learning rates, accuracies: the same rule, any scale, ticks inside the range.
        assertArrayEquals(new double[] {0, 0.2, 0.4, 0.6, 0.8, 1.0}, LinePlot.ticks(0, 1.05), 1e-12);
        assertArrayEquals(new double[] {0.4, 0.6, 0.8, 1.0, 1.2}, LinePlot.ticks(0.31, 1.3), 1e-12);
        assertArrayEquals(new double[] {0, 2e-4, 4e-4, 6e-4, 8e-4, 1e-3}, LinePlot.ticks(0, 1.05e-3), 1e-18);
        assertArrayEquals(new double[] {70, 75, 80, 85}, LinePlot.ticks(68.2, 86.9), 1e-12);
        assertArrayEquals(new double[] {-0.5, 0, 0.5, 1.0}, LinePlot.ticks(-0.6, 1.2), 1e-12);
        assertArrayEquals(new double[] {7}, LinePlot.ticks(7, 7));
        assertEquals(0, LinePlot.ticks(0, Double.NaN).length);
        // Never a crowded or a bare axis, at any scale.
        for (double hi = 1e-4; hi < 1e7; hi *= 1.07) {
            int n = LinePlot.ticks(0, hi).length;
            assertTrue(n >= 4 && n <= 8, n + " ticks for 0-" + hi);
        }
    }

    @Test
    void tickLabelsAreShortAndExact() {
        assertArrayEquals(new String[] {"0", "200", "400", "600", "800"}, LinePlot.labels(LinePlot.ticks(0, 800)));
        assertArrayEquals(new String[] {"0", "500", "1,000", "1,500", "2,000", "2,500", "3,000"},
                LinePlot.labels(LinePlot.ticks(0, 3000)));
        assertArrayEquals(new String[] {"0", "0.2", "0.4", "0.6", "0.8", "1.0"},
                LinePlot.labels(LinePlot.ticks(0, 1.05)));
        assertArrayEquals(new String[] {"0.26", "0.28", "0.30", "0.32"}, LinePlot.labels(LinePlot.ticks(0.255, 0.33)));
        assertArrayEquals(new String[] {"0", "2e-4", "4e-4", "6e-4", "8e-4", "1e-3"},
                LinePlot.labels(LinePlot.ticks(0, 1.05e-3)));
        assertArrayEquals(new String[] {"0", "5e-5", "1e-4", "1.5e-4", "2e-4", "2.5e-4"},
                LinePlot.labels(LinePlot.ticks(0, 2.6e-4)));
    }

    @Test
    void theKnnCurveIsASmallPngOfItsPoints() throws Exception {
        List<KnnPoint> points = List.of(new KnnPoint(156, 1, 0.71, "cls_mean", 20, 2000, 1000, 1.9),
                new KnnPoint(312, 2, 0.7512, "cls_mean", 20, 2000, 1000, 1.8),
                new KnnPoint(400, 2, Double.NaN, "cls_mean", 20, 2000, 1000, 1.8),
                new KnnPoint(468, 3, 0.77, "cls_mean", 20, 2000, 1000, 1.8));
        Path png = dir.resolve("knn.png");
        assertTrue(KnnCurve.write(points, 800, png));
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(KnnCurve.WIDTH, img.getWidth());
        assertEquals(KnnCurve.HEIGHT, img.getHeight());
        assertTrue(has(img, 0, img.getHeight(), 0xC0392B), "the k-NN line");
        assertFalse(KnnCurve.write(List.of(new KnnPoint(5, 0, Double.NaN, "cls_mean", 20, 10, 10, 0)), 10,
                dir.resolve("none.png")));
        assertFalse(Files.exists(dir.resolve("none.png")));
    }

    @Test
    void aConstantZeroSeriesIsDrawnAndEmptyInputDrawsNothing() throws Exception {
        assertTrue(LossCurves.write(records(20, true), dir.resolve("zero.png")));
        assertTrue(Files.size(dir.resolve("zero.png")) > 1000);
        assertFalse(LossCurves.write(List.of(), dir.resolve("none.png")));
        assertFalse(Files.exists(dir.resolve("none.png")));
    }

    private static boolean has(BufferedImage img, int y0, int y1, int rgb) {
        for (int y = y0; y < y1; y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                if ((img.getRGB(x, y) & 0xFFFFFF) == rgb) {
                    return true;
                }
            }
        }
        return false;
    }

    private static int colours(BufferedImage img, int y0, int y1) {
        java.util.Set<Integer> seen = new java.util.HashSet<>();
        for (int y = y0; y < y1; y += 3) {
            for (int x = 0; x < img.getWidth(); x += 3) {
                seen.add(img.getRGB(x, y));
            }
        }
        assertNotEquals(0, seen.size());
        return seen.size();
    }
}
