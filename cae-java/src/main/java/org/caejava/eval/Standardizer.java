package org.caejava.eval;

/**
 * Per-dimension standardization {@code x' = (x - mean[d]) / std[d]} with the mean and the
 * (population) standard deviation of the training features, applied alike to train and test
 * features. A dimension that is constant on the training set (std below 1e-6, such as the always-
 * black corner pixels of Fashion-MNIST) is only centred (std taken as 1).
 */
public record Standardizer(float[] mean, float[] std) {

    static final double MIN_STD = 1e-6;

    public Standardizer {
        if (mean.length != std.length) {
            throw new IllegalArgumentException(mean.length + " means, " + std.length + " standard deviations");
        }
        mean = mean.clone();
        std = std.clone();
    }

    /** Statistics of the rows of {@code train} (accumulated in double). */
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

    /** A standardized copy of {@code m}. */
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

    @Override
    public float[] mean() {
        return mean.clone();
    }

    @Override
    public float[] std() {
        return std.clone();
    }
}
