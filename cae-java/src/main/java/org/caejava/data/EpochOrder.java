package org.caejava.data;

import java.util.SplittableRandom;
import org.caejava.mask.Seeds;

/** The order in which an epoch visits a dataset: a permutation drawn from (seed, epoch). */
public final class EpochOrder {

    private EpochOrder() {}

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
