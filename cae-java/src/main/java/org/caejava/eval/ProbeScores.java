package org.caejava.eval;

/**
 * The scores of one feature set: test accuracy of the k-NN vote and of the linear probe (both in
 * [0, 1]), the probe's training accuracy, and how its L-BFGS run ended: iterations, whether it
 * converged, the final gradient norm relative to {@code max(1, initial gradient norm)} (the
 * quantity the tolerance bounds) and the final penalized training loss. A plain value: owns
 * nothing, immutable, safe to share between threads.
 *
 * @param dim the dimension of the features
 * @param knn the test accuracy of the k-NN vote
 * @param linear the test accuracy of the linear probe
 * @param linearTrain the training accuracy of the linear probe
 * @param iterations the L-BFGS iterations of the probe's fit
 * @param converged whether the fit reached its tolerance
 * @param relativeGradNorm the final gradient norm over {@code max(1, initial gradient norm)}
 * @param loss the final penalized training loss
 */
public record ProbeScores(int dim, double knn, double linear, double linearTrain, int iterations, boolean converged,
        double relativeGradNorm, double loss) {

    /**
     * Scores of standardized train/test features (the standardization is fitted here on train).
     * The k-NN vote and the fit run in parallel on the common fork-join pool.
     *
     * @param train the training features
     * @param trainLabels the class of each training row
     * @param test the test features, of the same dimension
     * @param testLabels the class of each test row
     * @param classes the number of classes; labels are in [0, classes)
     * @param k the neighbours of the k-NN vote
     * @param l2 the L2 penalty of the linear probe's weights
     * @param optimizer the optimizer that fits the linear probe
     * @return the scores
     * @throws IllegalArgumentException when sizes or labels do not fit
     */
    public static ProbeScores evaluate(FeatureMatrix train, int[] trainLabels, FeatureMatrix test, int[] testLabels,
            int classes, int k, double l2, Lbfgs optimizer) {
        Standardizer s = Standardizer.fit(train);
        FeatureMatrix tr = s.apply(train);
        FeatureMatrix te = s.apply(test);
        double knn = new KnnClassifier(k).accuracy(tr, trainLabels, classes, te, testLabels);
        LogisticRegression.Model m = LogisticRegression.fit(tr, trainLabels, classes, l2, optimizer);
        return new ProbeScores(train.cols(), knn, m.accuracy(te, testLabels), m.accuracy(tr, trainLabels),
                m.fit().iterations(), m.fit().converged(), m.fit().gradNorm() / Math.max(1, m.fit().initialGradNorm()),
                m.fit().value());
    }
}
