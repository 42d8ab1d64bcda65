package org.caejava.report;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.ToDoubleFunction;
import javax.imageio.ImageIO;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The loss curves of a run as one PNG of three panels sharing the step axis: the total and main
 * (reconstruction) losses, the alignment loss on its own scale (it is often ten times smaller),
 * and the learning rate. The axes are linear, from 0 to a little above the largest value after
 * the first 5% of the points, so the first steps' large losses do not flatten the rest (the
 * panel's title says when they are cut off). Long runs are averaged in bins to at most
 * {@value #MAX_POINTS} points per curve (the title says so too); steps whose values are not
 * finite are left out.
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
        BufferedImage img = render(records);
        if (img == null) {
            return false;
        }
        Path parent = png.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        ImageIO.write(img, "png", png.toFile());
        return true;
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

        XYChart losses = chart(LOSS_HEIGHT, "Loss: total and main (reconstruction)", "loss");
        losses.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        add(losses, "total", total, TOTAL, 2.0f);
        add(losses, "main (reconstruction)", main, MAIN, 1.6f);
        limit(losses, "Loss: total and main (reconstruction)" + binNote, total, main);

        XYChart alignment = chart(ALIGN_HEIGHT, "Alignment loss", "loss");
        alignment.getStyler().setLegendVisible(false);
        add(alignment, "align", align, ALIGN, 1.6f);
        limit(alignment, "Alignment loss" + binNote, align);

        XYChart rate = chart(LR_HEIGHT, "Learning rate", "lr");
        rate.getStyler().setLegendVisible(false);
        rate.getStyler().setYAxisDecimalPattern("0.0E0");
        add(rate, "lr", lr, LR, 1.6f);
        rate.getStyler().setYAxisMin(0.0);

        BufferedImage[] panels = {BitmapEncoder.getBufferedImage(losses), BitmapEncoder.getBufferedImage(alignment),
            BitmapEncoder.getBufferedImage(rate)};
        int height = 0;
        for (BufferedImage p : panels) {
            height += p.getHeight();
        }
        BufferedImage out = new BufferedImage(WIDTH, height, BufferedImage.TYPE_INT_RGB);
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

    private static XYChart chart(int height, String title, String yTitle) {
        XYChart c = new XYChartBuilder().width(WIDTH).height(height).title(title).xAxisTitle("step").yAxisTitle(yTitle)
                .build();
        style(c);
        return c;
    }

    /**
     * The y axis from 0 (or the smallest value, when negative) to 5% above the largest value after
     * the first 5% of the points; the title notes the cut when earlier points go above it.
     */
    private static void limit(XYChart c, String title, Curve... curves) {
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
            c.setTitle(title);
            return;
        }
        double max = top > low ? top + 0.05 * (top - low) : low + 1;
        c.getStyler().setYAxisMin(low);
        c.getStyler().setYAxisMax(max);
        c.setTitle(peak > max ? title + "; first steps cut off at the top" : title);
    }

    private static void style(XYChart c) {
        Styler s = c.getStyler();
        s.setChartBackgroundColor(Color.WHITE);
        s.setPlotBackgroundColor(Color.WHITE);
        s.setPlotBorderVisible(false);
        s.setChartTitleBoxVisible(false);
        s.setLegendBorderColor(new Color(0xDD, 0xDD, 0xDD));
        s.setChartTitleFont(new Font(Font.SANS_SERIF, Font.BOLD, 15));
        s.setLegendFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
        s.setAntiAlias(true);
        c.getStyler().setPlotGridLinesColor(new Color(0xE6, 0xE6, 0xE6));
        c.getStyler().setAxisTitleFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
        c.getStyler().setAxisTickLabelsFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        // XChart 3.8 puts x ticks at data values and underestimates horizontal labels' width
        // (step labels overlapped); slanted labels are spaced correctly.
        c.getStyler().setXAxisDecimalPattern("#,##0");
        c.getStyler().setXAxisLabelRotation(45);
        c.getStyler().setChartPadding(12);
    }

    private static void add(XYChart chart, String name, Curve c, Color color, float width) {
        if (c.x.isEmpty()) {
            return;
        }
        XYSeries s = chart.addSeries(name, c.xs(), c.ys());
        s.setMarker(SeriesMarkers.NONE);
        s.setLineColor(color);
        s.setLineWidth(width);
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

        boolean allPositive() {
            return y.stream().allMatch(v -> v > 0);
        }

        double[] xs() {
            return x.stream().mapToDouble(Double::doubleValue).toArray();
        }

        double[] ys() {
            return y.stream().mapToDouble(Double::doubleValue).toArray();
        }
    }
}
