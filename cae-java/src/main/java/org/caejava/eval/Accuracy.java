package org.caejava.eval;

/** Classification accuracy. A static method only: owns nothing, safe to call from any thread. */
public final class Accuracy {

    private Accuracy() {}

    /**
     * The share of positions where {@code predicted} equals {@code labels}, in [0, 1].
     *
     * @param predicted the predicted class of each sample
     * @param labels the true class of each sample, as many as predictions
     * @return the share of correct predictions
     * @throws IllegalArgumentException when the lengths differ or are 0
     */
    public static double of(int[] predicted, int[] labels) {
        if (predicted.length != labels.length) {
            throw new IllegalArgumentException(predicted.length + " predictions for " + labels.length + " labels");
        }
        if (labels.length == 0) {
            throw new IllegalArgumentException("accuracy of no samples");
        }
        int ok = 0;
        for (int i = 0; i < labels.length; i++) {
            ok += predicted[i] == labels[i] ? 1 : 0;
        }
        return (double) ok / labels.length;
    }
}
