package org.caejava.report;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * A line chart drawn with java.awt: a title, linear axes with a few round ticks ({@link #ticks}) and
 * horizontal tick labels, light grid lines, the series' lines (optionally with a dot per point),
 * and a legend at the top right when there is more than one series. Each axis spans the range it
 * is given, or the data's; values outside are clipped.
 */
final class LinePlot {

    /** About this many ticks per axis (see {@link #ticks}). */
    static final int TARGET_TICKS = 6;

    private static final int PAD = 12;
    private static final int TICK = 4;
    /**
     * Room kept for the y tick labels even when they are narrower, so that charts of one run shown
     * one below the other (loss, alignment, learning rate, k-NN) start their plots at the same x.
     */
    private static final int MIN_Y_LABEL_WIDTH = 40;
    private static final Color AXIS = new Color(0x99, 0x99, 0x99);
    private static final Color GRID = new Color(0xE6, 0xE6, 0xE6);
    private static final Color TEXT = new Color(0x33, 0x33, 0x33);
    private static final Font TITLE_FONT = new Font(Font.SANS_SERIF, Font.BOLD, 15);
    private static final Font AXIS_FONT = new Font(Font.SANS_SERIF, Font.PLAIN, 13);
    private static final Font TICK_FONT = new Font(Font.SANS_SERIF, Font.PLAIN, 12);
    private static final Font LEGEND_FONT = new Font(Font.SANS_SERIF, Font.PLAIN, 13);

    /** One line: points (x[i], y[i]); non-finite points break the line. */
    record Series(String name, double[] x, double[] y, Color color, float width, boolean dots) {}

    private final int width;
    private final int height;
    private final String title;
    private final String xTitle;
    private final String yTitle;
    private final List<Series> series = new ArrayList<>();
    private double xMin = Double.NaN;
    private double xMax = Double.NaN;
    private double yMin = Double.NaN;
    private double yMax = Double.NaN;

    LinePlot(int width, int height, String title, String xTitle, String yTitle) {
        this.width = width;
        this.height = height;
        this.title = title;
        this.xTitle = xTitle;
        this.yTitle = yTitle;
    }

    LinePlot add(Series s) {
        if (s.x().length != s.y().length) {
            throw new IllegalArgumentException(s.x().length + " x values, " + s.y().length + " y values");
        }
        series.add(s);
        return this;
    }

    /** The x axis from {@code min} to {@code max} (NaN: the data's). */
    LinePlot xRange(double min, double max) {
        xMin = min;
        xMax = max;
        return this;
    }

    /** The y axis from {@code min} to {@code max} (NaN: the data's). */
    LinePlot yRange(double min, double max) {
        yMin = min;
        yMax = max;
        return this;
    }

    /**
     * Round tick values in [lo, hi]: the multiples of a step of 1, 2 or 5 x 10^k, the step whose
     * tick count is nearest {@value #TARGET_TICKS} (on a tie the larger step, so fewer labels). For
     * example 0-800 gives 0, 200, ..., 800 and 0-390 gives 0, 100, 200, 300. Empty when the range
     * is not finite; the single value when lo == hi.
     */
    static double[] ticks(double lo, double hi) {
        if (!Double.isFinite(lo) || !Double.isFinite(hi) || hi < lo) {
            return new double[0];
        }
        if (hi == lo) {
            return new double[] {lo};
        }
        double span = hi - lo;
        int first = (int) Math.floor(Math.log10(span)) - 2;
        long bestFrom = 0;
        long bestTo = -1;
        int bestMantissa = 1;
        int bestExponent = 0;
        int bestScore = Integer.MAX_VALUE;
        for (int e = first; e <= first + 3; e++) {
            for (int m : new int[] {1, 2, 5}) {
                double step = m * Math.pow(10, e);
                long from = (long) Math.ceil(lo / step - 1e-9);
                long to = (long) Math.floor(hi / step + 1e-9);
                int score = (int) Math.abs(to - from + 1 - TARGET_TICKS);
                if (score <= bestScore) {  // steps ascend: a tie goes to the larger step
                    bestScore = score;
                    bestFrom = from;
                    bestTo = to;
                    bestMantissa = m;
                    bestExponent = e;
                }
            }
        }
        double[] out = new double[(int) (bestTo - bestFrom + 1)];
        for (int i = 0; i < out.length; i++) {
            out[i] = value(bestFrom + i, bestMantissa, bestExponent);
        }
        return out;
    }

    /** i * m * 10^e, divided rather than multiplied by a power of ten for e < 0 (0.3, not 0.30000000000000004). */
    private static double value(long i, int m, int e) {
        return e >= 0 ? i * m * Math.pow(10, e) : (double) (i * m) / Math.pow(10, -e);
    }

    /**
     * Labels for ticks {@code t} (from {@link #ticks}): with as many decimals as the step needs and
     * thousands separators ("1,500", "0.25"), or in scientific notation for steps below 0.001 or
     * values of a million and more ("2e-4", "1.5e-4", "1e-3").
     */
    static String[] labels(double[] t) {
        String[] out = new String[t.length];
        if (t.length == 0) {
            return out;
        }
        double step = t.length > 1 ? t[1] - t[0] : Math.abs(t[0]);
        double largest = Math.max(Math.abs(t[0]), Math.abs(t[t.length - 1]));
        int stepExponent = step > 0 ? (int) Math.floor(Math.log10(step) + 1e-9) : 0;
        boolean scientific = (step > 0 && step < 1e-3) || largest >= 1e6;
        for (int i = 0; i < t.length; i++) {
            double v = t[i];
            if (v == 0) {
                out[i] = "0";
            } else if (scientific) {
                int e = (int) Math.floor(Math.log10(Math.abs(v)) + 1e-9);
                int decimals = Math.max(0, e - stepExponent);
                String mantissa = String.format(Locale.ROOT, "%." + decimals + "f", v / Math.pow(10, e));
                if (mantissa.contains(".")) {  // 1.0e-3 -> 1e-3
                    mantissa = mantissa.replaceAll("\\.?0+$", "");
                }
                out[i] = mantissa + "e" + e;
            } else {
                out[i] = String.format(Locale.ROOT, "%,." + Math.max(0, -stepExponent) + "f", v);
            }
        }
        return out;
    }

    BufferedImage render() {
        double[] xr = range(xMin, xMax, true);
        double[] yr = range(yMin, yMax, false);
        double[] xt = ticks(xr[0], xr[1]);
        double[] yt = ticks(yr[0], yr[1]);
        String[] xl = labels(xt);
        String[] yl = labels(yt);

        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_STROKE_CONTROL, RenderingHints.VALUE_STROKE_PURE);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, width, height);
            FontMetrics titleFm = g.getFontMetrics(TITLE_FONT);
            FontMetrics axisFm = g.getFontMetrics(AXIS_FONT);
            FontMetrics tickFm = g.getFontMetrics(TICK_FONT);

            // The plot area: room for the title above, the y title and tick labels to the left,
            // the x tick labels and title below, and half of the last x label to the right.
            int yLabelWidth = MIN_Y_LABEL_WIDTH;
            for (String s : yl) {
                yLabelWidth = Math.max(yLabelWidth, tickFm.stringWidth(s));
            }
            int left = PAD + axisFm.getHeight() + 6 + yLabelWidth + TICK + 4;
            int right = width - PAD - (xl.length > 0 ? tickFm.stringWidth(xl[xl.length - 1]) / 2 : 0);
            int top = PAD + titleFm.getHeight() + 8;
            int bottom = height - PAD - axisFm.getHeight() - 4 - tickFm.getHeight() - TICK - 2;
            int pw = Math.max(1, right - left);
            int ph = Math.max(1, bottom - top);

            g.setColor(TEXT);
            g.setFont(TITLE_FONT);
            g.drawString(title, (width - titleFm.stringWidth(title)) / 2, PAD + titleFm.getAscent());

            // Grid lines and tick labels.
            g.setStroke(new BasicStroke(1f));
            g.setFont(TICK_FONT);
            for (int i = 0; i < yt.length; i++) {
                int y = (int) Math.round(py(yt[i], yr, top, ph));
                g.setColor(GRID);
                g.drawLine(left, y, right, y);
                g.setColor(AXIS);
                g.drawLine(left - TICK, y, left, y);
                g.setColor(TEXT);
                g.drawString(yl[i], left - TICK - 4 - tickFm.stringWidth(yl[i]), y + tickFm.getAscent() / 2 - 1);
            }
            for (int i = 0; i < xt.length; i++) {
                int x = (int) Math.round(px(xt[i], xr, left, pw));
                g.setColor(GRID);
                g.drawLine(x, top, x, bottom);
                g.setColor(AXIS);
                g.drawLine(x, bottom, x, bottom + TICK);
                g.setColor(TEXT);
                g.drawString(xl[i], x - tickFm.stringWidth(xl[i]) / 2, bottom + TICK + 2 + tickFm.getAscent());
            }
            g.setColor(AXIS);
            g.drawLine(left, top, left, bottom);
            g.drawLine(left, bottom, right, bottom);

            // Axis titles: x centred below, y rotated along the left edge.
            g.setColor(TEXT);
            g.setFont(AXIS_FONT);
            g.drawString(xTitle, left + (pw - axisFm.stringWidth(xTitle)) / 2, height - PAD - axisFm.getDescent());
            AffineTransform saved = g.getTransform();
            g.translate(PAD + axisFm.getAscent(), top + (ph + axisFm.stringWidth(yTitle)) / 2.0);
            g.rotate(-Math.PI / 2);
            g.drawString(yTitle, 0, 0);
            g.setTransform(saved);

            // The series, clipped to the plot area (a little wider, for the dots on its right edge).
            g.setClip(left, top, pw + 5, ph + 1);
            for (Series s : series) {
                g.setColor(s.color());
                g.setStroke(new BasicStroke(s.width(), BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
                Path2D.Double path = new Path2D.Double();
                boolean open = false;
                for (int i = 0; i < s.x().length; i++) {
                    if (!Double.isFinite(s.x()[i]) || !Double.isFinite(s.y()[i])) {
                        open = false;
                        continue;
                    }
                    double x = px(s.x()[i], xr, left, pw);
                    double y = py(s.y()[i], yr, top, ph);
                    if (open) {
                        path.lineTo(x, y);
                    } else {
                        path.moveTo(x, y);
                        open = true;
                    }
                    if (s.dots()) {
                        g.fill(new java.awt.geom.Ellipse2D.Double(x - 3.5, y - 3.5, 7, 7));
                    }
                }
                g.draw(path);
            }
            g.setClip(null);
            legend(g, left, right, top);
        } finally {
            g.dispose();
        }
        return img;
    }

    /** The names of the series at the top right of the plot, when there is more than one. */
    private void legend(Graphics2D g, int left, int right, int top) {
        List<Series> shown = series.stream().filter(s -> s.x().length > 0).toList();
        if (shown.size() < 2) {
            return;
        }
        g.setFont(LEGEND_FONT);
        FontMetrics fm = g.getFontMetrics();
        int textWidth = 0;
        for (Series s : shown) {
            textWidth = Math.max(textWidth, fm.stringWidth(s.name()));
        }
        int line = fm.getHeight() + 2;
        int w = 8 + 22 + 6 + textWidth + 8;
        int h = 6 + line * shown.size() + 4;
        int x0 = Math.max(left, right - 10 - w);
        int y0 = top + 10;
        g.setColor(Color.WHITE);
        g.fillRect(x0, y0, w, h);
        g.setColor(new Color(0xDD, 0xDD, 0xDD));
        g.setStroke(new BasicStroke(1f));
        g.drawRect(x0, y0, w, h);
        for (int i = 0; i < shown.size(); i++) {
            Series s = shown.get(i);
            int baseline = y0 + 6 + i * line + fm.getAscent();
            int mid = baseline - fm.getAscent() / 2 + 1;
            g.setColor(s.color());
            g.setStroke(new BasicStroke(Math.max(2f, s.width()), BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
            g.drawLine(x0 + 8, mid, x0 + 30, mid);
            g.setColor(TEXT);
            g.drawString(s.name(), x0 + 36, baseline);
        }
    }

    /** The axis range: the one given, else the data's (an empty or flat range is widened to show it). */
    private double[] range(double min, double max, boolean xAxis) {
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (Series s : series) {
            double[] v = xAxis ? s.x() : s.y();
            for (double d : v) {
                if (Double.isFinite(d)) {
                    lo = Math.min(lo, d);
                    hi = Math.max(hi, d);
                }
            }
        }
        lo = Double.isFinite(min) ? min : lo;
        hi = Double.isFinite(max) ? max : hi;
        if (!Double.isFinite(lo) || !Double.isFinite(hi)) {
            return new double[] {0, 1};
        }
        if (hi <= lo) {
            double pad = lo == 0 ? 1 : Math.abs(lo) * 0.1;
            return new double[] {lo - pad, lo + pad};
        }
        return new double[] {lo, hi};
    }

    private static double px(double v, double[] r, int left, int pw) {
        return left + (v - r[0]) / (r[1] - r[0]) * pw;
    }

    private static double py(double v, double[] r, int top, int ph) {
        return top + ph - (v - r[0]) / (r[1] - r[0]) * ph;
    }

    /** Writes {@code img} to {@code png}, creating its folder; false (and no file) when {@code img} is null. */
    static boolean writePng(BufferedImage img, Path png) throws IOException {
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
}
