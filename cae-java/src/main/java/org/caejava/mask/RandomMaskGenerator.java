package org.caejava.mask;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/** Masks a uniformly random subset of exactly {@code numMasked} patches. */
public final class RandomMaskGenerator implements MaskGenerator {

    private final int numPatches;
    private final int numMasked;

    public RandomMaskGenerator(int numPatches, int numMasked) {
        if (numPatches < 2 || numMasked < 1 || numMasked >= numPatches) {
            throw new IllegalArgumentException("cannot mask " + numMasked + " of " + numPatches
                    + " patches: at least one must be masked and one visible");
        }
        this.numPatches = numPatches;
        this.numMasked = numMasked;
    }

    @Override
    public int numPatches() {
        return numPatches;
    }

    @Override
    public int numMasked() {
        return numMasked;
    }

    @Override
    public void generate(long seed, long epoch, long index, MemorySegment out) {
        SplittableRandom rng = new SplittableRandom(Seeds.mix(seed, epoch, index));
        int[] order = new int[numPatches];
        for (int i = 0; i < numPatches; i++) {
            order[i] = i;
        }
        out.asSlice(0, numPatches).fill((byte) 0);
        for (int i = 0; i < numMasked; i++) {  // partial Fisher-Yates: the first numMasked of a shuffle
            int j = i + rng.nextInt(numPatches - i);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
            out.set(ValueLayout.JAVA_BYTE, order[i], (byte) 1);
        }
    }
}
