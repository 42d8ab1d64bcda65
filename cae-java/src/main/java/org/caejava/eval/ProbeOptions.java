package org.caejava.eval;

import java.util.Objects;
import java.util.function.Consumer;

/**
 * Settings of a {@link ProbeReport}.
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

    public static ProbeOptions defaults() {
        return new ProbeOptions(20, 1e-4, Lbfgs.defaults(), 256, 0, 0, 0, null, null);
    }

    public ProbeOptions withK(int v) {
        return new ProbeOptions(v, l2, optimizer, batchSize, trainLimit, testLimit, subsetSeed, randomInitSeed, log);
    }

    public ProbeOptions withL2(double v) {
        return new ProbeOptions(k, v, optimizer, batchSize, trainLimit, testLimit, subsetSeed, randomInitSeed, log);
    }

    public ProbeOptions withOptimizer(Lbfgs v) {
        return new ProbeOptions(k, l2, v, batchSize, trainLimit, testLimit, subsetSeed, randomInitSeed, log);
    }

    public ProbeOptions withBatchSize(int v) {
        return new ProbeOptions(k, l2, optimizer, v, trainLimit, testLimit, subsetSeed, randomInitSeed, log);
    }

    public ProbeOptions withLimits(long train, long test) {
        return new ProbeOptions(k, l2, optimizer, batchSize, train, test, subsetSeed, randomInitSeed, log);
    }

    public ProbeOptions withSubsetSeed(long v) {
        return new ProbeOptions(k, l2, optimizer, batchSize, trainLimit, testLimit, v, randomInitSeed, log);
    }

    public ProbeOptions withRandomInitSeed(Long v) {
        return new ProbeOptions(k, l2, optimizer, batchSize, trainLimit, testLimit, subsetSeed, v, log);
    }

    public ProbeOptions withLog(Consumer<String> v) {
        return new ProbeOptions(k, l2, optimizer, batchSize, trainLimit, testLimit, subsetSeed, randomInitSeed, v);
    }
}
