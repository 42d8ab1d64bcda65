package org.caejava.train;

/**
 * The official per-iteration schedule: linear warmup from 0 to {@code base} over
 * {@code warmupSteps} (numpy.linspace, endpoint included), then half a cosine from {@code base}
 * to {@code min} over the remaining steps:
 * {@code min + (base - min) / 2 * (1 + cos(pi * i / (total - warmup)))}.
 */
public record CosineSchedule(double base, double min, long warmupSteps, long totalSteps) {

    public CosineSchedule {
        if (!(base >= 0) || !(min >= 0) || warmupSteps < 0 || totalSteps < 1 || warmupSteps > totalSteps) {
            throw new IllegalArgumentException("schedule: base " + base + ", min " + min + ", warmup " + warmupSteps
                    + " of " + totalSteps + " steps");
        }
    }

    /** The value at 0-based step {@code i} (steps past the end keep the last value). */
    public double at(long i) {
        if (i < 0) {
            throw new IllegalArgumentException("step " + i);
        }
        if (i < warmupSteps) {
            return warmupSteps == 1 ? base : base * i / (warmupSteps - 1);
        }
        long cosineSteps = totalSteps - warmupSteps;
        long k = Math.min(i - warmupSteps, cosineSteps - 1);
        return min + 0.5 * (base - min) * (1 + Math.cos(Math.PI * k / cosineSteps));
    }
}
