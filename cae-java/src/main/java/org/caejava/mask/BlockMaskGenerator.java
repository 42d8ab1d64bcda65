package org.caejava.mask;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * BEiT's block-wise masking as CAE uses it: rectangles of random area and aspect ratio are added
 * until exactly {@code numMasked} patches are masked.
 *
 * <p>Each attempt draws a target area uniformly in [min block, remaining budget] and an aspect
 * ratio log-uniformly in [0.3, 1/0.3], rounds to a rectangle strictly smaller than the grid, places
 * it uniformly, and accepts it when it adds between 1 and the remaining budget new patches; up to
 * 10 attempts per block. The minimum block is 16 patches for a 14x14 grid, scaled to other grids
 * (16 * N / 196, at least 1). Should the remaining budget become unreachable by rectangles (many
 * rounds without progress on a tiny grid), the last patches are taken at random, so the count is
 * always exact.
 */
public final class BlockMaskGenerator implements MaskGenerator {

    private static final double LOG_ASPECT_MIN = Math.log(0.3);
    private static final double LOG_ASPECT_MAX = Math.log(1 / 0.3);
    private static final int MAX_ROUNDS_WITHOUT_PROGRESS = 100;

    private final int grid;
    private final int numMasked;
    private final int minBlock;

    public BlockMaskGenerator(int grid, int numMasked) {
        this(grid, numMasked, Math.max(1, (int) Math.round(16.0 * grid * grid / 196.0)));
    }

    public BlockMaskGenerator(int grid, int numMasked, int minBlock) {
        int n = grid * grid;
        if (grid < 2 || numMasked < 1 || numMasked >= n) {
            throw new IllegalArgumentException("cannot mask " + numMasked + " of " + n
                    + " patches: at least one must be masked and one visible");
        }
        if (minBlock < 1) {
            throw new IllegalArgumentException("minimum block of " + minBlock + " patches");
        }
        this.grid = grid;
        this.numMasked = numMasked;
        this.minBlock = minBlock;
    }

    @Override
    public int numPatches() {
        return grid * grid;
    }

    @Override
    public int numMasked() {
        return numMasked;
    }

    public int minBlock() {
        return minBlock;
    }

    @Override
    public void generate(long seed, long epoch, long index, MemorySegment out) {
        SplittableRandom rng = new SplittableRandom(Seeds.mix(seed, epoch, index));
        boolean[] mask = new boolean[grid * grid];
        int count = 0;
        int stalled = 0;
        while (count != numMasked) {
            int delta = addBlock(mask, numMasked - count, rng);
            count += delta;
            stalled = delta == 0 ? stalled + 1 : 0;
            if (stalled >= MAX_ROUNDS_WITHOUT_PROGRESS) {
                count += fillRandomly(mask, numMasked - count, rng);
            }
        }
        for (int i = 0; i < mask.length; i++) {
            out.set(ValueLayout.JAVA_BYTE, i, (byte) (mask[i] ? 1 : 0));
        }
    }

    /** One block of at most {@code budget} new patches, or 0 after 10 failed attempts. */
    private int addBlock(boolean[] mask, int budget, SplittableRandom rng) {
        for (int attempt = 0; attempt < 10; attempt++) {
            double area = uniform(rng, minBlock, budget);
            double aspect = Math.exp(uniform(rng, LOG_ASPECT_MIN, LOG_ASPECT_MAX));
            int h = (int) Math.round(Math.sqrt(area * aspect));
            int w = (int) Math.round(Math.sqrt(area / aspect));
            if (w >= grid || h >= grid) {
                continue;
            }
            int top = rng.nextInt(grid - h + 1);
            int left = rng.nextInt(grid - w + 1);
            int already = 0;
            for (int i = top; i < top + h; i++) {
                for (int j = left; j < left + w; j++) {
                    already += mask[i * grid + j] ? 1 : 0;
                }
            }
            int added = h * w - already;
            if (added > 0 && added <= budget) {
                for (int i = top; i < top + h; i++) {
                    for (int j = left; j < left + w; j++) {
                        mask[i * grid + j] = true;
                    }
                }
                return added;
            }
        }
        return 0;
    }

    private static int fillRandomly(boolean[] mask, int budget, SplittableRandom rng) {
        int added = 0;
        while (added < budget) {
            int i = rng.nextInt(mask.length);
            if (!mask[i]) {
                mask[i] = true;
                added++;
            }
        }
        return added;
    }

    /** Python's random.uniform(a, b): a + (b - a) * U[0, 1), also when b < a. */
    private static double uniform(SplittableRandom rng, double a, double b) {
        return a + (b - a) * rng.nextDouble();
    }
}
