package org.caejava.check;

import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * What the self-check of one CUDA device found: its figures against the CPU, or the error that
 * stopped it, or that it was skipped on request.
 *
 * @param device "CUDA device 0 (NVIDIA H100 80GB HBM3)"
 * @param figures every number compared, in the order computed
 * @param error why the check could not finish (a failed CUDA call), or null
 * @param skipped why the check did not run, or null
 * @param seconds how long it took
 */
public record SelfCheckResult(String device, List<Figure> figures, String error, String skipped, double seconds) {

    public SelfCheckResult {
        figures = List.copyOf(figures);
    }

    public static SelfCheckResult of(String device, List<Figure> figures, double seconds) {
        return new SelfCheckResult(device, figures, null, null, seconds);
    }

    public static SelfCheckResult failed(String device, List<Figure> figuresSoFar, String error, double seconds) {
        return new SelfCheckResult(device, figuresSoFar, error, null, seconds);
    }

    public static SelfCheckResult skipped(String device, String why) {
        return new SelfCheckResult(device, List.of(), null, why, 0);
    }

    /** Every figure within its tolerance and no error (a skipped check passes). */
    public boolean passed() {
        return error == null && figures.stream().allMatch(Figure::passed);
    }

    public List<Figure> mismatches() {
        return figures.stream().filter(f -> !f.passed()).toList();
    }

    /** The figure closest to its tolerance (largest error / tolerance), or null without figures. */
    public Figure worst() {
        Figure worst = null;
        for (Figure f : figures) {
            if (worst == null || !(f.error() / f.tolerance() <= worst.error() / worst.tolerance())) {
                worst = f;
            }
        }
        return worst;
    }

    /**
     * One line: what disagreed (at most three figures, then a count), or the error; for a check that
     * passed, the closest figure.
     */
    public String summary() {
        if (skipped != null) {
            return device + ": self-check skipped (" + skipped + ")";
        }
        if (passed()) {
            Figure w = worst();
            return device + " agrees with the CPU" + (w == null ? "" : "; closest: " + w);
        }
        StringBuilder s = new StringBuilder(device).append(" disagrees with the CPU on a tiny model: ");
        if (error != null) {
            s.append(error);
        } else {
            List<Figure> bad = mismatches();
            s.append(bad.stream().limit(3).map(Figure::toString).collect(Collectors.joining("; ")));
            if (bad.size() > 3) {
                s.append(" and ").append(bad.size() - 3).append(" more figures");
            }
        }
        return s.toString();
    }

    /** The figures as a table, one per line, and the verdict. */
    public String table() {
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "self-check of %s against the CPU (%.1f s)%n", device, seconds));
        if (skipped != null) {
            return s.append("  skipped: ").append(skipped).append(System.lineSeparator()).toString();
        }
        int width = Math.max(6, figures.stream().mapToInt(f -> f.name().length()).max().orElse(0));
        s.append(String.format(Locale.ROOT, "  %-" + width + "s  %14s  %14s  %9s  %9s%n", "figure", "cuda", "cpu",
                "relative", "tolerance"));
        for (Figure f : figures) {
            s.append(String.format(Locale.ROOT, "  %-" + width + "s  %14.8g  %14.8g  %9.1e  %9.0e  %s%n", f.name(),
                    f.cuda(), f.cpu(), f.error(), f.tolerance(), f.passed() ? "ok" : "MISMATCH"));
        }
        if (error != null) {
            s.append("  error: ").append(error).append(System.lineSeparator());
        }
        s.append(passed() ? "  passed" : "  FAILED: " + mismatches().size() + " of " + figures.size()
                + " figures out of tolerance" + (error != null ? ", and the check stopped on an error" : ""));
        return s.append(System.lineSeparator()).toString();
    }
}
