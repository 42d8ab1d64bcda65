package org.caejava.mask;

import java.lang.foreign.MemorySegment;

/**
 * Chooses which patches of an image are masked: exactly {@link #numMasked()} of
 * {@link #numPatches()} (row-major over the patch grid), deterministically from (seed, epoch,
 * index) so a run replays.
 */
public interface MaskGenerator {

    int numPatches();

    int numMasked();

    /** Writes the mask of sample {@code index} in {@code epoch}: numPatches bytes, 1 = masked. */
    void generate(long seed, long epoch, long index, MemorySegment out);

    /** The mask as a byte array (1 = masked). */
    default byte[] generate(long seed, long epoch, long index) {
        byte[] b = new byte[numPatches()];
        generate(seed, epoch, index, MemorySegment.ofArray(b));
        return b;
    }
}
