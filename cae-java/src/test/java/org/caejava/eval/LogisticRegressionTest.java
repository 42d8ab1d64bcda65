package org.caejava.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class LogisticRegressionTest {

    @Test
    void theGradientMatchesCentralDifferences() {
        int n = 37;
        int d = 5;
        int classes = 4;
        Random r = new Random(11);
        float[] x = new float[n * d];
        int[] y = new int[n];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < n; i++) {
            y[i] = r.nextInt(classes);
        }
        LogisticRegression.Loss loss = new LogisticRegression.Loss(new FeatureMatrix(n, d, x), y, classes, 0.3);
        double[] theta = new double[loss.size()];
        for (int i = 0; i < theta.length; i++) {
            theta[i] = r.nextGaussian();
        }
        double[] g = new double[theta.length];
        loss.evaluate(theta, g);
        double[] scratch = new double[theta.length];
        double h = 1e-5;
        for (int i = 0; i < theta.length; i++) {
            double[] p = theta.clone();
            double[] m = theta.clone();
            p[i] += h;
            m[i] -= h;
            double numeric = (loss.evaluate(p, scratch) - loss.evaluate(m, scratch)) / (2 * h);
            assertEquals(numeric, g[i], 1e-7 * Math.max(1, Math.abs(numeric)), "d loss / d theta[" + i + "]");
        }
    }

    @Test
    void theLossOfZeroWeightsIsLogC() {
        FeatureMatrix x = new FeatureMatrix(3, 2, new float[] {1, 2, 3, 4, 5, 6});
        double v = new LogisticRegression.Loss(x, new int[] {0, 1, 2}, 3, 1e-4).evaluate(new double[9], new double[9]);
        assertEquals(Math.log(3), v, 1e-12);
    }

    /**
     * Two classes on a line: at x = +1, a samples of class 1 and b of class 0; at x = -1 the
     * mirror image. By symmetry the optimum has w1 = -w0 = u (and equal biases), where u solves
     * the 1-D stationarity condition
     * [-2a sigmoid(-2u) + 2b sigmoid(2u)] / (a + b) + 2 l2 u = 0,
     * found here by bisection: an optimum known independently of L-BFGS.
     */
    @Test
    void overlappingClassesConvergeToTheKnownOptimum() {
        for (double l2 : new double[] {1e-2, 1e-4}) {
            int a = 30;
            int b = 10;
            int n = 2 * (a + b);
            float[] x = new float[n];
            int[] y = new int[n];
            int i = 0;
            for (int s = 0; s < a; s++, i++) { x[i] = 1; y[i] = 1; }
            for (int s = 0; s < b; s++, i++) { x[i] = 1; y[i] = 0; }
            for (int s = 0; s < a; s++, i++) { x[i] = -1; y[i] = 0; }
            for (int s = 0; s < b; s++, i++) { x[i] = -1; y[i] = 1; }
            double lo = 0;
            double hi = 20;
            for (int it = 0; it < 200; it++) {
                double u = (lo + hi) / 2;
                double grad = (-2 * a * sigmoid(-2 * u) + 2 * b * sigmoid(2 * u)) / (a + b) + 2 * l2 * u;
                if (grad > 0) {
                    hi = u;
                } else {
                    lo = u;
                }
            }
            double u = (lo + hi) / 2;
            LogisticRegression.Model m = LogisticRegression.fit(new FeatureMatrix(n, 1, x), y, 2, l2,
                    new Lbfgs(10, 1e-10, 1000));
            assertTrue(m.fit().converged(), m.fit().stopReason());
            assertEquals(-u, m.weights()[0], 1e-7 * Math.max(1, u), "w0 at l2 " + l2);
            assertEquals(u, m.weights()[1], 1e-7 * Math.max(1, u), "w1 at l2 " + l2);
            assertEquals(m.bias()[0], m.bias()[1], 1e-7, "equal biases");
            assertEquals(0.75, m.accuracy(new FeatureMatrix(n, 1, x), y), 1e-12, "the majority side is right");
        }
    }

    @Test
    void separableClassesAreFittedExactlyAndConverge() {
        int classes = 3;
        int d = 8;
        double[][] c = KnnClassifierTest.centres(classes, d, 21);
        int[] y = new int[classes * 100];
        FeatureMatrix x = KnnClassifierTest.clusters(classes, 100, d, 12, 22, y, c);
        LogisticRegression.Model m = LogisticRegression.fit(x, y, classes, 1e-4, Lbfgs.defaults());
        assertTrue(m.fit().converged(), m.fit().stopReason() + " after " + m.fit().iterations());
        assertEquals(1.0, m.accuracy(x, y));
    }

    @Test
    void anEasyProblemGeneralizes() {
        int classes = 5;
        int d = 20;
        double[][] c = KnnClassifierTest.centres(classes, d, 31);
        int[] yTrain = new int[classes * 300];
        int[] yTest = new int[classes * 100];
        FeatureMatrix train = KnnClassifierTest.clusters(classes, 300, d, 1.5, 32, yTrain, c);
        FeatureMatrix test = KnnClassifierTest.clusters(classes, 100, d, 1.5, 33, yTest, c);
        ProbeScores s = ProbeScores.evaluate(train, yTrain, test, yTest, classes, 20, 1e-4, Lbfgs.defaults());
        assertTrue(s.converged());
        assertTrue(s.relativeGradNorm() <= Lbfgs.defaults().tolerance());
        assertTrue(s.linear() > 0.95, "linear accuracy " + s.linear());
        assertTrue(s.knn() > 0.9, "k-NN accuracy " + s.knn());
        assertTrue(s.linearTrain() >= s.linear() - 0.05);
    }

    private static double sigmoid(double v) {
        return 1 / (1 + Math.exp(-v));
    }
}
