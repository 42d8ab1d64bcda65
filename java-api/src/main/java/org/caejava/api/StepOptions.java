package org.caejava.api;

import java.util.Objects;

/**
 * Options of one training step: this step's learning rate and weight decay, AdamW's betas and
 * eps, the global-norm clip ({@code <= 0}: none), the 1-based optimizer step, the run seed, whether
 * stochastic depth is on, and the precision of the linear layers' matrix products. Doubles, as
 * PyTorch's optimizer takes Python floats. A plain value: owns nothing, immutable, safe to share
 * between threads; the {@code with} methods return changed copies.
 *
 * @param lr this step's learning rate
 * @param weightDecay this step's AdamW weight decay, applied to the parameters marked decayed
 * @param beta1 AdamW's decay rate of the first moment
 * @param beta2 AdamW's decay rate of the second moment
 * @param eps AdamW's epsilon, added to the denominator of the update
 * @param maxGradNorm the largest global L2 norm of the gradients; larger gradients are scaled down
 *     to it, and 0 or less turns clipping off
 * @param step the 1-based optimizer step, for AdamW's bias correction and the stochastic-depth draws
 * @param seed the run seed, from which the stochastic-depth draws are made
 * @param dropPath whether stochastic depth (drop path) is on
 * @param precision the arithmetic of the linear layers' matrix products; not null
 */
public record StepOptions(double lr, double weightDecay, double beta1, double beta2, double eps, double maxGradNorm,
        long step, long seed, boolean dropPath, Precision precision) {

    /**
     * Checks that a precision is given.
     *
     * @throws NullPointerException when {@code precision} is null
     */
    public StepOptions {
        Objects.requireNonNull(precision, "precision");
    }

    /**
     * The defaults: lr 0, weight decay 0.05, betas (0.9, 0.999), eps 1e-8, clip 3.0, step 1,
     * seed 0, drop path on, fp32.
     *
     * @return options with those values
     */
    public static StepOptions defaults() {
        return new StepOptions(0, 0.05, 0.9, 0.999, 1e-8, 3.0, 1, 0, true, Precision.FP32);
    }

    /**
     * A copy with another learning rate.
     *
     * @param value the learning rate
     * @return the changed copy
     */
    public StepOptions withLr(double value) {
        return new StepOptions(value, weightDecay, beta1, beta2, eps, maxGradNorm, step, seed, dropPath, precision);
    }

    /**
     * A copy with another weight decay.
     *
     * @param value the weight decay
     * @return the changed copy
     */
    public StepOptions withWeightDecay(double value) {
        return new StepOptions(lr, value, beta1, beta2, eps, maxGradNorm, step, seed, dropPath, precision);
    }

    /**
     * A copy with another gradient-norm clip.
     *
     * @param value the clip; 0 or less turns clipping off
     * @return the changed copy
     */
    public StepOptions withMaxGradNorm(double value) {
        return new StepOptions(lr, weightDecay, beta1, beta2, eps, value, step, seed, dropPath, precision);
    }

    /**
     * A copy with another optimizer step.
     *
     * @param value the 1-based optimizer step
     * @return the changed copy
     */
    public StepOptions withStep(long value) {
        return new StepOptions(lr, weightDecay, beta1, beta2, eps, maxGradNorm, value, seed, dropPath, precision);
    }

    /**
     * A copy with another run seed.
     *
     * @param value the run seed
     * @return the changed copy
     */
    public StepOptions withSeed(long value) {
        return new StepOptions(lr, weightDecay, beta1, beta2, eps, maxGradNorm, step, value, dropPath, precision);
    }

    /**
     * A copy with stochastic depth turned on or off.
     *
     * @param value whether stochastic depth is on
     * @return the changed copy
     */
    public StepOptions withDropPath(boolean value) {
        return new StepOptions(lr, weightDecay, beta1, beta2, eps, maxGradNorm, step, seed, value, precision);
    }

    /**
     * A copy with other AdamW betas.
     *
     * @param b1 the decay rate of the first moment
     * @param b2 the decay rate of the second moment
     * @return the changed copy
     */
    public StepOptions withBetas(double b1, double b2) {
        return new StepOptions(lr, weightDecay, b1, b2, eps, maxGradNorm, step, seed, dropPath, precision);
    }

    /**
     * A copy with another AdamW epsilon.
     *
     * @param value AdamW's epsilon
     * @return the changed copy
     */
    public StepOptions withEps(double value) {
        return new StepOptions(lr, weightDecay, beta1, beta2, value, maxGradNorm, step, seed, dropPath, precision);
    }

    /**
     * A copy with another precision.
     *
     * @param value the precision; not null
     * @return the changed copy
     */
    public StepOptions withPrecision(Precision value) {
        return new StepOptions(lr, weightDecay, beta1, beta2, eps, maxGradNorm, step, seed, dropPath, value);
    }
}
