package org.caejava.data;

import java.lang.foreign.MemorySegment;

/**
 * Images for training and evaluation, all of the same shape. A dataset delivers sample
 * {@code index} as normalized F32 [C, H, W] values (with whatever augmentation it applies, drawn
 * from (seed, epoch, index) so a run replays).
 */
public interface Dataset {

    long size();

    int channels();

    int height();

    int width();

    /** Writes sample {@code index} of {@code epoch} as C*H*W floats at the start of {@code dst}. */
    void load(long index, long epoch, long seed, MemorySegment dst);

    /** The class label of sample {@code index}, or -1 when the dataset has no labels. */
    default int label(long index) {
        return -1;
    }

    default long floatsPerSample() {
        return (long) channels() * height() * width();
    }
}
