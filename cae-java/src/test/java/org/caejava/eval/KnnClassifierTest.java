package org.caejava.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class KnnClassifierTest {

    /** n points per class around random centres (spread `spread`, unit noise) in d dimensions. */
    static FeatureMatrix clusters(int classes, int perClass, int d, double spread, long seed, int[] labelsOut,
            double[][] centres) {
        Random r = new Random(seed);
        float[] x = new float[classes * perClass * d];
        for (int c = 0; c < classes; c++) {
            for (int i = 0; i < perClass; i++) {
                int row = i * classes + c;  // interleave the classes
                labelsOut[row] = c;
                for (int j = 0; j < d; j++) {
                    x[row * d + j] = (float) (centres[c][j] * spread + r.nextGaussian());
                }
            }
        }
        return new FeatureMatrix(classes * perClass, d, x);
    }

    static double[][] centres(int classes, int d, long seed) {
        Random r = new Random(seed);
        double[][] c = new double[classes][d];
        for (double[] row : c) {
            for (int j = 0; j < d; j++) {
                row[j] = r.nextGaussian();
            }
        }
        return c;
    }

    @Test
    void separatedGaussianClustersAreClassifiedAlmostPerfectly() {
        int classes = 6;
        int d = 32;
        double[][] c = centres(classes, d, 1);
        int[] yTrain = new int[classes * 200];
        int[] yTest = new int[classes * 50];
        FeatureMatrix train = clusters(classes, 200, d, 3, 2, yTrain, c);
        FeatureMatrix test = clusters(classes, 50, d, 3, 3, yTest, c);
        double acc = new KnnClassifier(20).accuracy(train, yTrain, classes, test, yTest);
        assertTrue(acc >= 0.99, "accuracy " + acc);
    }

    @Test
    void aHandCheckedCaseIncludingBothTieRules() {
        // 1-D training points 0, 1, 2, 10, 11 with labels 0, 0, 1, 1, 1.
        FeatureMatrix train = new FeatureMatrix(5, 1, new float[] {0, 1, 2, 10, 11});
        int[] y = {0, 0, 1, 1, 1};
        FeatureMatrix test = new FeatureMatrix(2, 1, new float[] {0.25f, 10.5f});
        // k = 3: 0.25 -> {0, 1, 2} = labels 0, 0, 1 -> 0; 10.5 -> {10, 11, 2} -> 1.
        assertArrayEquals(new int[] {0, 1}, new KnnClassifier(3).predict(train, y, 2, test));
        // k = 2, one vote each: the class of the nearest neighbour wins.
        FeatureMatrix tie = new FeatureMatrix(2, 1, new float[] {1.25f, 1.75f});
        assertArrayEquals(new int[] {0, 1}, new KnnClassifier(2).predict(train, y, 2, tie));
        // k = 1 at equal distance 0.5 from points 1 (label 0) and 2 (label 1): the lower index wins.
        FeatureMatrix equal = new FeatureMatrix(1, 1, new float[] {1.5f});
        assertArrayEquals(new int[] {0}, new KnnClassifier(1).predict(train, y, 2, equal));
        // k larger than the training set: all five vote, three for class 1.
        assertArrayEquals(new int[] {1}, new KnnClassifier(20).predict(train, y, 2, equal));
    }

    @Test
    void theBlockedComputationMatchesABruteForceReference() {
        // Sizes that are not multiples of the training block (128), the test tile (64) or the 4-row group.
        int nTrain = 333;
        int nTest = 71;
        int d = 13;
        int classes = 4;
        int k = 7;
        Random r = new Random(5);
        float[] a = new float[nTrain * d];
        float[] b = new float[nTest * d];
        int[] y = new int[nTrain];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < nTrain; i++) {
            y[i] = r.nextInt(classes);
        }
        FeatureMatrix train = new FeatureMatrix(nTrain, d, a);
        FeatureMatrix test = new FeatureMatrix(nTest, d, b);
        int[] got = new KnnClassifier(k).predict(train, y, classes, test);
        for (int t = 0; t < nTest; t++) {
            final int row = t;
            double[] dist = new double[nTrain];
            for (int i = 0; i < nTrain; i++) {
                double s = 0;
                for (int j = 0; j < d; j++) {
                    double diff = a[i * d + j] - b[row * d + j];
                    s += diff * diff;
                }
                dist[i] = s;
            }
            Integer[] order = IntStream.range(0, nTrain).boxed().sorted(Comparator.comparingDouble(i -> dist[i]))
                    .toArray(Integer[]::new);
            int[] counts = new int[classes];
            for (int i = 0; i < k; i++) {
                counts[y[order[i]]]++;
            }
            int best = Arrays.stream(counts).max().getAsInt();
            int expected = -1;
            for (int i = 0; i < k && expected < 0; i++) {
                if (counts[y[order[i]]] == best) {
                    expected = y[order[i]];
                }
            }
            assertEquals(expected, got[t], "test row " + t);
        }
    }

    @Test
    void badInputsAreRefusedByName() {
        FeatureMatrix train = new FeatureMatrix(2, 2, new float[4]);
        FeatureMatrix test = new FeatureMatrix(1, 3, new float[3]);
        var e = assertThrows(IllegalArgumentException.class,
                () -> new KnnClassifier(1).predict(train, new int[] {0, 1}, 2, test));
        assertTrue(e.getMessage().contains("2 dimensions"), e.getMessage());
        var l = assertThrows(IllegalArgumentException.class,
                () -> new KnnClassifier(1).predict(train, new int[] {0, 2}, 2, train));
        assertTrue(l.getMessage().contains("label 2"), l.getMessage());
    }

    @Test
    void standardizationUsesTheTrainingStatistics() {
        FeatureMatrix train = new FeatureMatrix(4, 2, new float[] {1, 5, 3, 5, 5, 5, 7, 5});
        Standardizer s = Standardizer.fit(train);
        assertArrayEquals(new float[] {4, 5}, s.mean());
        assertEquals(Math.sqrt(5), s.std()[0], 1e-6);
        assertEquals(1f, s.std()[1], "a constant dimension is only centred");
        FeatureMatrix test = s.apply(new FeatureMatrix(1, 2, new float[] {4 + (float) Math.sqrt(5), 6}));
        assertEquals(1f, test.get(0, 0), 1e-6);
        assertEquals(1f, test.get(0, 1), 1e-6);
    }
}
