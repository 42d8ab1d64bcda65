package org.caejava.eval;

import java.util.Objects;
import java.util.function.Consumer;

/**
 * Settings of a {@link ProbeReport}. Immutable and owns nothing; the {@code with} methods return
 * changed copies. The {@code log} consumer is called on the thread that runs the probe.
 *
 * @param k              neighbours of the k-NN vote (default 20)
 * @param l2             L2 penalty of the linear probe on its weights (default 1e-4)
 * @param optimizer      the linear probe's L-BFGS (default {@link Lbfgs#defaults()}: memory 30, gradient
 *                       norm below 1e-4 x max(1, initial), at most 3,000 iterations)
 * @param batchSize      images per encoder call (default 256)
 * @param trainLimit     use a seeded random subset of this many training images (0: all)
 * @param testLimit      the same for the test images (0: all)
 * @param subsetSeed     seed of those subsets (default 0)
 * @param randomInitSeed seed of the randomly initialized encoder, or null for the pretrained
 *                       model's run seed, so that baseline is the very initialization the
 *                       pretraining started from
 * @param log            receives progress lines (default: none)
 */
public record ProbeOptions(int k, double l2, Lbfgs optimizer, int batchSize, long trainLimit, long testLimit,
        long subsetSeed, Long randomInitSeed, Consumer<String> log) {

    /**
     * Checks the settings; a null {@code log} becomes one that drops the lines.
     *
     * @throws IllegalArgumentException when k, l2, the batch size or a limit is out of range
     * @throws NullPointerException when {@code optimizer} is null
     */
    public ProbeOptions {
        if (k < 1) {
            throw new IllegalArgumentException("k = " + k + ", expected >= 1");
        }
        if (!(l2 >= 0)) {
            throw new IllegalArgumentException("L2 penalty " + l2 + ", expected >= 0");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size " + batchSize + ", expected >= 1");
        }
        if (trainLimit < 0 || testLimit < 0) {
            throw new IllegalArgumentException("limits must be >= 0 (0: all), got " + trainLimit + " and " + testLimit);
        }
        Objects.requireNonNull(optimizer, "optimizer");
        log = log == null ? line -> {} : log;
    }

    /**
     * The defaults: k 20, l2 1e-4, {@link Lbfgs#defaults()}, batches of 256, every image, subset
     * seed 0, the model's run seed for the random encoder, no log.
     *
     * @return options with those values
     */
    public static ProbeOptions defaults() {
        return new ProbeOptions(20, 1e-4, Lbfgs.defaults(), 256, 0, 0, 0, null, null);
    }

    /**
     * A copy with another k.
     *
     * @param v the neighbours of the k-NN vote, at least 1
     * @return the changed copy
     * @throws IllegalArgumentException when the value is out of range
     */
    public ProbeOptions withK(int v) {
        return new ProbeOptions(v, l2, optimizer, batchSize, trainLimit, testLimit, subsetSeed, randomInitSeed, log);
    }

    /**
     * A copy with another L2 penalty.
     *
     * @param v the penalty of the linear probe's weights, 0 or more
     * @return the changed copy
     * @throws IllegalArgumentException when the value is out of range
     */
    public ProbeOptions withL2(double v) {
        return new ProbeOptions(k, v, optimizer, batchSize, trainLimit, testLimit, subsetSeed, randomInitSeed, log);
    }

    /**
     * A copy with another optimizer.
     *
     * @param v the linear probe's optimizer; not null
     * @return the changed copy
     * @throws NullPointerException when {@code v} is null
     */
    public ProbeOptions withOptimizer(Lbfgs v) {
        return new ProbeOptions(k, l2, v, batchSize, trainLimit, testLimit, subsetSeed, randomInitSeed, log);
    }

    /**
     * A copy with another batch size.
     *
     * @param v the images per encoder call, at least 1
     * @return the changed copy
     * @throws IllegalArgumentException when the value is out of range
     */
    public ProbeOptions withBatchSize(int v) {
        return new ProbeOptions(k, l2, optimizer, v, trainLimit, testLimit, subsetSeed, randomInitSeed, log);
    }

    /**
     * A copy with other subset sizes.
     *
     * @param train the training images to use, 0 for all
     * @param test the test images to use, 0 for all
     * @return the changed copy
     * @throws IllegalArgumentException when a limit is negative
     */
    public ProbeOptions withLimits(long train, long test) {
        return new ProbeOptions(k, l2, optimizer, batchSize, train, test, subsetSeed, randomInitSeed, log);
    }

    /**
     * A copy with another subset seed.
     *
     * @param v the seed of the train and test subsets
     * @return the changed copy
     */
    public ProbeOptions withSubsetSeed(long v) {
        return new ProbeOptions(k, l2, optimizer, batchSize, trainLimit, testLimit, v, randomInitSeed, log);
    }

    /**
     * A copy with another seed of the random encoder.
     *
     * @param v the seed, or null for the model's run seed
     * @return the changed copy
     */
    public ProbeOptions withRandomInitSeed(Long v) {
        return new ProbeOptions(k, l2, optimizer, batchSize, trainLimit, testLimit, subsetSeed, v, log);
    }

    /**
     * A copy with another log.
     *
     * @param v receives progress lines; null for none
     * @return the changed copy
     */
    public ProbeOptions withLog(Consumer<String> v) {
        return new ProbeOptions(k, l2, optimizer, batchSize, trainLimit, testLimit, subsetSeed, randomInitSeed, v);
    }
}
