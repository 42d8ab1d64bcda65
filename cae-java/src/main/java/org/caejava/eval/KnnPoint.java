package org.caejava.eval;

/**
 * One k-NN probe of the encoder during training ({@link TrainingProbe}): the test accuracy after
 * {@code step} steps ({@code epoch} whole epochs), with the features, k, subset sizes and the
 * seconds it took. A plain value: owns nothing, immutable, safe to share between threads.
 *
 * @param step      training steps done
 * @param epoch     whole epochs done (step / steps per epoch)
 * @param accuracy  share of the test images whose k-NN vote is their label, in [0, 1]
 * @param features  which encoder features were compared ({@value TrainingProbe#FEATURES}: [cls ; mean patch token])
 * @param k         neighbours of the vote
 * @param trainSize labeled training images the neighbours come from
 * @param testSize  test images scored
 * @param seconds   wall time of the probe (encoding and the vote)
 */
public record KnnPoint(long step, long epoch, double accuracy, String features, int k, int trainSize, int testSize,
        double seconds) {}
