package org.caejava.report;

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
                    false, 700, 1, 40, s * 0.05));
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
