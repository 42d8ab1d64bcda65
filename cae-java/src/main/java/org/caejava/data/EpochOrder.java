package org.caejava.data;

import java.util.SplittableRandom;
import org.caejava.mask.Seeds;

/**
 * The order in which an epoch visits a dataset: a permutation drawn from (seed, epoch). Static
 * methods only: owns nothing, safe to call from any thread.
 */
public final class EpochOrder {

    private EpochOrder() {}

    /**
     * The visiting order of one epoch: a Fisher-Yates shuffle of 0 to size - 1, the same for the
     * same three numbers.
     *
     * @param size the number of samples
     * @param seed the run seed
     * @param epoch the epoch
     * @return a new permutation of the indices 0 to size - 1
     * @throws ArithmeticException when {@code size} does not fit an int
     */
    public static int[] permutation(long size, long seed, long epoch) {
        int n = Math.toIntExact(size);
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        SplittableRandom rng = new SplittableRandom(Seeds.mix(seed, epoch, -1));
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }
}
