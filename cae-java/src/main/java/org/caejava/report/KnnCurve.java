package org.caejava.report;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.caejava.eval.KnnPoint;

/**
 * The k-NN probes taken during training ({@code metrics.jsonl}'s probe lines) as one small PNG:
 * test accuracy in percent by step, a dot per probe. The step axis runs from 0 to the given last
 * step, as in {@link LossCurves}, so the two pictures line up; the accuracy axis spans the points
 * with some room (at least 2 points either side), within 0-100%.
 */
public final class KnnCurve {

    public static final int WIDTH = LossCurves.WIDTH;
    static final int HEIGHT = 260;

    private static final Color KNN = new Color(0xC0, 0x39, 0x2B);

    private KnnCurve() {}

    /**
     * Draws {@code points} into {@code png} with the step axis up to {@code lastStep} (or the last
     * point's step, when larger); false (and no file) when no point has a finite accuracy.
     */
    public static boolean write(List<KnnPoint> points, long lastStep, Path png) throws IOException {
        return LinePlot.writePng(render(points, lastStep), png);
    }

    /** The chart, or null when no point has a finite accuracy. */
    public static BufferedImage render(List<KnnPoint> points, long lastStep) {
        List<KnnPoint> finite = points.stream().filter(p -> Double.isFinite(p.accuracy())).toList();
        if (finite.isEmpty()) {
            return null;
        }
        double[] x = finite.stream().mapToDouble(KnnPoint::step).toArray();
        double[] y = finite.stream().mapToDouble(p -> 100 * p.accuracy()).toArray();
        double lo = Arrays.stream(y).min().orElseThrow();
        double hi = Arrays.stream(y).max().orElseThrow();
        double pad = Math.max(2, 0.1 * (hi - lo));
        double xMax = Math.max(lastStep, x[x.length - 1]);
        KnnPoint last = finite.get(finite.size() - 1);
        String title = String.format(Locale.ROOT, "k-NN test accuracy during training (k = %d, %d train / %d test "
                + "images)", last.k(), last.trainSize(), last.testSize());
        LinePlot plot = new LinePlot(WIDTH, HEIGHT, title, "step", "accuracy (%)")
                .xRange(0, xMax > 0 ? xMax : 1).yRange(Math.max(0, lo - pad), Math.min(100, hi + pad));
        plot.add(new LinePlot.Series("k-NN", x, y, KNN, 1.8f, true));
        return plot.render();
    }
}
