package org.caejava.api;

import java.util.Objects;

/**
 * Options of one training step: this step's learning rate and weight decay, AdamW's betas and
 * eps, the global-norm clip (<= 0: none), the 1-based optimizer step, the run seed, whether
 * stochastic depth is on, and the precision of the linear layers' matrix products. Doubles, as
 * PyTorch's optimizer takes Python floats.
 */
public record StepOptions(double lr, double weightDecay, double beta1, double beta2, double eps, double maxGradNorm,
        long step, long seed, boolean dropPath, Precision precision) {

    public StepOptions {
        Objects.requireNonNull(precision, "precision");
    }

    /** lr 0, weight decay 0.05, betas (0.9, 0.999), eps 1e-8, clip 3.0, step 1, seed 0, drop path on, fp32. */
    public static StepOptions defaults() {
        return new StepOptions(0, 0.05, 0.9, 0.999, 1e-8, 3.0, 1, 0, true, Precision.FP32);
    }

    public StepOptions withLr(double value) {
        return new StepOptions(value, weightDecay, beta1, beta2, eps, maxGradNorm, step, seed, dropPath, precision);
    }

    public StepOptions withWeightDecay(double value) {
        return new StepOptions(lr, value, beta1, beta2, eps, maxGradNorm, step, seed, dropPath, precision);
    }

    public StepOptions withMaxGradNorm(double value) {
        return new StepOptions(lr, weightDecay, beta1, beta2, eps, value, step, seed, dropPath, precision);
    }

    public StepOptions withStep(long value) {
        return new StepOptions(lr, weightDecay, beta1, beta2, eps, maxGradNorm, value, seed, dropPath, precision);
    }

    public StepOptions withSeed(long value) {
        return new StepOptions(lr, weightDecay, beta1, beta2, eps, maxGradNorm, step, value, dropPath, precision);
    }

    public StepOptions withDropPath(boolean value) {
        return new StepOptions(lr, weightDecay, beta1, beta2, eps, maxGradNorm, step, seed, value, precision);
    }

    public StepOptions withBetas(double b1, double b2) {
        return new StepOptions(lr, weightDecay, b1, b2, eps, maxGradNorm, step, seed, dropPath, precision);
    }

    public StepOptions withEps(double value) {
        return new StepOptions(lr, weightDecay, beta1, beta2, value, maxGradNorm, step, seed, dropPath, precision);
    }

    public StepOptions withPrecision(Precision value) {
        return new StepOptions(lr, weightDecay, beta1, beta2, eps, maxGradNorm, step, seed, dropPath, value);
    }
}
