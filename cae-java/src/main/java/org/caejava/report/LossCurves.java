package org.caejava.report;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.ToDoubleFunction;

/**
 * The loss curves of a run as one PNG of three panels sharing the step axis: the total and main
 * (reconstruction) losses, the alignment loss on its own scale (it is often ten times smaller),
 * and the learning rate. The axes are linear, from 0 to a little above the largest value after
 * the first 5% of the points, so the first steps' large losses do not flatten the rest (the
 * panel's title says when they are cut off). Long runs are averaged in bins to at most
 * {@value #MAX_POINTS} points per curve (the title says so too); steps whose values are not
 * finite are left out. The step axis runs from 0 to the last logged step; both axes carry a few
 * round ticks with horizontal labels ({@link LinePlot#ticks}).
 */
public final class LossCurves {

    public static final int WIDTH = 900;
    static final int LOSS_HEIGHT = 360;
    static final int ALIGN_HEIGHT = 220;
    static final int LR_HEIGHT = 200;
    static final int MAX_POINTS = 1000;

    private static final Color TOTAL = new Color(0x1F, 0x4E, 0x9A);
    private static final Color MAIN = new Color(0xE0, 0x7B, 0x16);
    private static final Color ALIGN = new Color(0x2E, 0x8B, 0x57);
    private static final Color LR = new Color(0x7A, 0x3E, 0x9D);

    private LossCurves() {}

    /** Draws {@code records} into {@code png}; false (and no file) when there is nothing to draw. */
    public static boolean write(List<MetricsRecord> records, Path png) throws IOException {
        return LinePlot.writePng(render(records), png);
    }

    /** The three panels as one image, or null when no record has a finite loss. */
    public static BufferedImage render(List<MetricsRecord> records) {
        int bin = Math.max(1, (records.size() + MAX_POINTS - 1) / MAX_POINTS);
        Curve total = curve(records, MetricsRecord::loss, bin);
        Curve main = curve(records, MetricsRecord::lossMain, bin);
        Curve align = curve(records, MetricsRecord::lossAlign, bin);
        Curve lr = curve(records, MetricsRecord::lr, bin);
        if (total.x.isEmpty()) {
            return null;
        }
        String binNote = bin > 1 ? ", mean of every " + bin + " logged steps" : "";
        double lastStep = records.get(records.size() - 1).step();

        String lossTitle = "Loss: total and main (reconstruction)" + binNote;
        double[] lossRange = limit(total, main);
        LinePlot losses = new LinePlot(WIDTH, LOSS_HEIGHT, cutNote(lossTitle, lossRange), "step", "loss")
                .xRange(0, lastStep).yRange(lossRange[0], lossRange[1]);
        add(losses, "total", total, TOTAL, 2.0f);
        add(losses, "main (reconstruction)", main, MAIN, 1.6f);

        double[] alignRange = limit(align);
        LinePlot alignment = new LinePlot(WIDTH, ALIGN_HEIGHT, cutNote("Alignment loss" + binNote, alignRange),
                "step", "loss").xRange(0, lastStep).yRange(alignRange[0], alignRange[1]);
        add(alignment, "align", align, ALIGN, 1.6f);

        double lrMax = lr.y.stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN);
        LinePlot rate = new LinePlot(WIDTH, LR_HEIGHT, "Learning rate", "step", "lr").xRange(0, lastStep)
                .yRange(0, lrMax > 0 ? 1.05 * lrMax : Double.NaN);
        add(rate, "lr", lr, LR, 1.6f);

        return stack(losses.render(), alignment.render(), rate.render());
    }

    /** The panels one below the other. */
    static BufferedImage stack(BufferedImage... panels) {
        int height = 0;
        int width = 0;
        for (BufferedImage p : panels) {
            height += p.getHeight();
            width = Math.max(width, p.getWidth());
        }
        BufferedImage out = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, out.getWidth(), out.getHeight());
            int y = 0;
            for (BufferedImage p : panels) {
                g.drawImage(p, 0, y, null);
                y += p.getHeight();
            }
        } finally {
            g.dispose();
        }
        return out;
    }

    /**
     * The y range {min, max, peak}: from 0 (or the smallest value, when negative) to 5% above the
     * largest value after the first 5% of the points; peak is the largest value of all, so a title
     * can note the cut when earlier points go above max. NaN bounds (the data's) when there is no
     * value.
     */
    private static double[] limit(Curve... curves) {
        double top = Double.NEGATIVE_INFINITY;
        double peak = Double.NEGATIVE_INFINITY;
        double low = 0;
        for (Curve cu : curves) {
            int skip = cu.y.size() >= 20 ? cu.y.size() / 20 : 0;
            for (int i = 0; i < cu.y.size(); i++) {
                double v = cu.y.get(i);
                peak = Math.max(peak, v);
                low = Math.min(low, v);
                if (i >= skip) {
                    top = Math.max(top, v);
                }
            }
        }
        if (!Double.isFinite(top)) {
            return new double[] {Double.NaN, Double.NaN, Double.NaN};
        }
        double max = top > low ? top + 0.05 * (top - low) : low + 1;
        return new double[] {low, max, peak};
    }

    private static String cutNote(String title, double[] range) {
        return range[2] > range[1] ? title + "; first steps cut off at the top" : title;
    }

    private static void add(LinePlot plot, String name, Curve c, Color color, float width) {
        if (c.x.isEmpty()) {
            return;
        }
        plot.add(new LinePlot.Series(name, c.xs(), c.ys(), color, width, false));
    }

    /** Finite values averaged over bins of {@code bin} records (x: the mean step of the bin). */
    private static Curve curve(List<MetricsRecord> records, ToDoubleFunction<MetricsRecord> f, int bin) {
        Curve c = new Curve();
        for (int from = 0; from < records.size(); from += bin) {
            double sx = 0;
            double sy = 0;
            int n = 0;
            for (int i = from; i < Math.min(records.size(), from + bin); i++) {
                double v = f.applyAsDouble(records.get(i));
                if (Double.isFinite(v)) {
                    sx += records.get(i).step();
                    sy += v;
                    n++;
                }
            }
            if (n > 0) {
                c.x.add(sx / n);
                c.y.add(sy / n);
            }
        }
        return c;
    }

    private static final class Curve {
        final List<Double> x = new ArrayList<>();
        final List<Double> y = new ArrayList<>();

        double[] xs() {
            return x.stream().mapToDouble(Double::doubleValue).toArray();
        }

        double[] ys() {
            return y.stream().mapToDouble(Double::doubleValue).toArray();
        }
    }
}
