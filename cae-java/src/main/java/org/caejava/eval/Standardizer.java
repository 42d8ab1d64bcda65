package org.caejava.eval;

/**
 * Per-dimension standardization {@code x' = (x - mean[d]) / std[d]} with the mean and the
 * (population) standard deviation of the training features, applied alike to train and test
 * features. A dimension that is constant on the training set (std below 1e-6, such as the always-
 * black corner pixels of Fashion-MNIST) is only centred (std taken as 1). Immutable (the arrays
 * are copied in and out), owns nothing, safe to share between threads.
 *
 * @param mean the mean of each dimension
 * @param std the standard deviation of each dimension, as applied (1 for a constant dimension)
 */
public record Standardizer(float[] mean, float[] std) {

    static final double MIN_STD = 1e-6;

    /**
     * Checks and copies the arrays.
     *
     * @throws IllegalArgumentException when the lengths differ
     */
    public Standardizer {
        if (mean.length != std.length) {
            throw new IllegalArgumentException(mean.length + " means, " + std.length + " standard deviations");
        }
        mean = mean.clone();
        std = std.clone();
    }

    /**
     * Statistics of the rows of {@code train} (accumulated in double).
     *
     * @param train the training features, at least one row
     * @return the standardizer of those features
     * @throws IllegalArgumentException when {@code train} has no rows
     */
    public static Standardizer fit(FeatureMatrix train) {
        if (train.rows() < 1) {
            throw new IllegalArgumentException("cannot standardize with no training rows");
        }
        int n = train.rows();
        int d = train.cols();
        float[] x = train.data();
        double[] sum = new double[d];
        for (int i = 0; i < n; i++) {
            int o = i * d;
            for (int j = 0; j < d; j++) {
                sum[j] += x[o + j];
            }
        }
        double[] mu = new double[d];
        for (int j = 0; j < d; j++) {
            mu[j] = sum[j] / n;
        }
        double[] sq = new double[d];  // two-pass: no cancellation for large means
        for (int i = 0; i < n; i++) {
            int o = i * d;
            for (int j = 0; j < d; j++) {
                double c = x[o + j] - mu[j];
                sq[j] += c * c;
            }
        }
        float[] mean = new float[d];
        float[] std = new float[d];
        for (int j = 0; j < d; j++) {
            double s = Math.sqrt(sq[j] / n);
            mean[j] = (float) mu[j];
            std[j] = s < MIN_STD ? 1f : (float) s;
        }
        return new Standardizer(mean, std);
    }

    /**
     * A standardized copy of {@code m}.
     *
     * @param m features of as many dimensions as the standardizer
     * @return a new matrix
     * @throws IllegalArgumentException when the dimensions differ
     */
    public FeatureMatrix apply(FeatureMatrix m) {
        if (m.cols() != mean.length) {
            throw new IllegalArgumentException("features have " + m.cols() + " dimensions, the standardizer "
                    + mean.length);
        }
        int d = m.cols();
        float[] src = m.data();
        float[] out = new float[src.length];
        float[] inv = new float[d];
        for (int j = 0; j < d; j++) {
            inv[j] = 1f / std[j];
        }
        for (int i = 0; i < m.rows(); i++) {
            int o = i * d;
            for (int j = 0; j < d; j++) {
                out[o + j] = (src[o + j] - mean[j]) * inv[j];
            }
        }
        return new FeatureMatrix(m.rows(), d, out);
    }

    /**
     * The mean of each dimension.
     *
     * @return a copy of the means
     */
    @Override
    public float[] mean() {
        return mean.clone();
    }

    /**
     * The standard deviation of each dimension, as applied.
     *
     * @return a copy of the standard deviations
     */
    @Override
    public float[] std() {
        return std.clone();
    }
}
