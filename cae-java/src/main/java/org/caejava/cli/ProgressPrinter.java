package org.caejava.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayDeque;
import org.caejava.StepMetrics;
import org.caejava.TrainingListener;
import org.caejava.TrainingState;

/**
 * Shows training progress: on a terminal a live status line redrawn a few times a second (step,
 * epoch, images/s, losses, learning rate, ETA and a bar); otherwise one plain log line per
 * interval, so logs of unattended runs stay readable.
 */
final class ProgressPrinter implements TrainingListener {

    private static final int WINDOW = 50;

    private final PrintWriter out;
    private final boolean live;
    private final double intervalSeconds;
    private final ArrayDeque<double[]> window = new ArrayDeque<>();  // (seconds, images) per step
    private long lastPrint;
    private double windowSeconds;
    private double windowImages;
    private boolean lineOpen;

    ProgressPrinter(PrintWriter out, boolean live, double intervalSeconds) {
        this.out = out;
        this.live = live;
        this.intervalSeconds = intervalSeconds;
    }

    /** Live output only on an interactive terminal (not when piped, not on TERM=dumb). */
    static boolean terminal() {
        String term = System.getenv("TERM");
        return System.console() != null && System.console().isTerminal() && term != null && !term.equals("dumb");
    }

    @Override
    public void onStep(StepMetrics m) {
        double stepSeconds = m.imagesPerSecond() > 0 ? m.batchSize() / m.imagesPerSecond() : 0;
        window.add(new double[] {stepSeconds, m.batchSize()});
        windowSeconds += stepSeconds;
        windowImages += m.batchSize();
        if (window.size() > WINDOW) {
            double[] old = window.poll();
            windowSeconds -= old[0];
            windowImages -= old[1];
        }
        long now = System.nanoTime();
        boolean last = m.step() == m.totalSteps();
        double since = (now - lastPrint) / 1e9;
        if (live ? since < 0.2 && !last : since < intervalSeconds && !last && m.step() > 1) {
            return;
        }
        lastPrint = now;
        double rate = windowSeconds > 0 ? windowImages / windowSeconds : 0;
        double eta = windowSeconds / window.size() * (m.totalSteps() - m.step());
        String text = String.format("step %d/%d  epoch %d  %.0f img/s  loss %.4f (main %.4f, align %.4f)  lr %.2e  ETA %s",
                m.step(), m.totalSteps(), m.epoch() + 1, rate, m.loss(), m.lossMain(), m.lossAlign(), m.lr(),
                duration(eta));
        if (m.skipped()) {
            text += "  [step skipped: non-finite values]";
        }
        if (live) {
            out.print("\r" + bar(m.step(), m.totalSteps()) + " " + text + "\u001b[K");
            lineOpen = true;
            if (last) {
                out.println();
                lineOpen = false;
            }
        } else {
            out.println(text);
        }
        out.flush();
    }

    @Override
    public void onCheckpoint(Path file, TrainingState state) {
        if (!live) {
            out.println("checkpoint at step " + state.step() + " -> " + file);
            out.flush();
        }
    }

    @Override
    public void onDataParallelStart(int ranks, String reduction) {
        finishLine();
        out.println("  gradients of " + ranks + " ranks summed by " + reduction);
        out.flush();
    }

    /** Ends a live line before other output. */
    void finishLine() {
        if (lineOpen) {
            out.println();
            out.flush();
            lineOpen = false;
        }
    }

    private static String bar(long step, long total) {
        int width = 20;
        int filled = (int) (width * step / Math.max(total, 1));
        return "[" + "#".repeat(filled) + ".".repeat(width - filled) + "]";
    }

    static String duration(double seconds) {
        if (!Double.isFinite(seconds) || seconds < 0) {
            return "?";
        }
        long s = Math.round(seconds);
        return s >= 3600 ? String.format("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format("%d:%02d", s / 60, s % 60);
    }
}
