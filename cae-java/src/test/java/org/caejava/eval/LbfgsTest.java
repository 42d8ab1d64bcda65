package org.caejava.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class LbfgsTest {

    @Test
    void rosenbrockReachesItsMinimum() {
        Lbfgs.Objective rosen = (x, g) -> {
            double a = 1 - x[0];
            double b = x[1] - x[0] * x[0];
            g[0] = -2 * a - 400 * x[0] * b;
            g[1] = 200 * b;
            return a * a + 100 * b * b;
        };
        Lbfgs.Result r = new Lbfgs(10, 1e-10, 1000).minimize(rosen, new double[] {-1.2, 1});
        assertTrue(r.converged(), r.stopReason());
        assertEquals(1, r.x()[0], 1e-8);
        assertEquals(1, r.x()[1], 1e-8);
        assertTrue(r.iterations() < 100, r.iterations() + " iterations");
    }

    @Test
    void anIllConditionedQuadraticIsSolved() {
        int n = 50;
        double[] h = new double[n];
        double[] c = new double[n];
        for (int i = 0; i < n; i++) {
            h[i] = Math.pow(1e4, i / (n - 1.0));  // condition number 1e4
            c[i] = Math.sin(i);
        }
        Lbfgs.Objective q = (x, g) -> {
            double f = 0;
            for (int i = 0; i < n; i++) {
                double d = x[i] - c[i];
                f += 0.5 * h[i] * d * d;
                g[i] = h[i] * d;
            }
            return f;
        };
        Lbfgs.Result r = new Lbfgs(30, 1e-5, 3000).minimize(q, new double[n]);
        assertTrue(r.converged(), r.stopReason());
        assertTrue(r.gradNorm() <= 1e-5 * r.initialGradNorm());
        for (int i = 0; i < n; i++) {
            assertEquals(c[i], r.x()[i], 1e-5 * Math.max(1, r.initialGradNorm()) / h[i] + 1e-9, "x[" + i + "]");
        }
    }

    @Test
    void theIterationLimitIsReportedAsNotConverged() {
        Lbfgs.Objective rosen = (x, g) -> {
            double a = 1 - x[0];
            double b = x[1] - x[0] * x[0];
            g[0] = -2 * a - 400 * x[0] * b;
            g[1] = 200 * b;
            return a * a + 100 * b * b;
        };
        Lbfgs.Result r = new Lbfgs(5, 1e-12, 3).minimize(rosen, new double[] {-1.2, 1});
        assertFalse(r.converged());
        assertEquals(3, r.iterations());
        assertEquals("iteration limit reached", r.stopReason());
        assertTrue(r.value() < 24.2, "each step decreased the function from 24.2: " + r.value());
    }

    @Test
    void theCubicInterpolantFindsAQuadraticsMinimum() {
        // f(a) = (a - 0.3)^2: f(0) = 0.09, f'(0) = -0.6, f(1) = 0.49, f'(1) = 1.4
        assertEquals(0.3, Lbfgs.cubicMinimizer(0, 0.09, -0.6, 1, 0.49, 1.4), 1e-12);
    }
}
