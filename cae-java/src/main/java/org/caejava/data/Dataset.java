package org.caejava.data;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Images for training and evaluation, all delivered at the same shape as normalized F32
 * [C, H, W] values. {@link #load} applies the dataset's training augmentation, drawn from (seed,
 * epoch, index) so a run replays; {@link #loadPlain} delivers the image without augmentation
 * (for evaluation and pictures). Implementations must allow concurrent calls from several
 * loader threads.
 */
public interface Dataset {

    long size();

    int channels();

    int height();

    int width();

    /** Writes sample {@code index} of {@code epoch}, augmented, as C*H*W floats at the start of {@code dst}. */
    void load(long index, long epoch, long seed, MemorySegment dst);

    /** Writes sample {@code index} without augmentation as C*H*W floats at the start of {@code dst}. */
    default void loadPlain(long index, MemorySegment dst) {
        load(index, 0, 0, dst);
    }

    /** The class label of sample {@code index}, or -1 when the dataset has no labels. */
    default int label(long index) {
        return -1;
    }

    /** The names of the classes the labels index, empty when unlabeled. */
    default List<String> classNames() {
        return List.of();
    }

    /** How pixel values were normalized (to turn model values back into pixels). */
    default Normalization normalization() {
        return Normalization.identity(channels());
    }

    /**
     * Whether thread {@code t} may load samples. False for data in memory confined to another
     * thread (for instance a tensor of a confined arena): loaders then load on the caller's thread.
     */
    default boolean isAccessibleBy(Thread t) {
        return true;
    }

    default long floatsPerSample() {
        return (long) channels() * height() * width();
    }
}
