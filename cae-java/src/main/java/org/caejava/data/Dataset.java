package org.caejava.data;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Images for training and evaluation, all delivered at the same shape as normalized F32
 * [C, H, W] values. {@link #load} applies the dataset's training augmentation, drawn from (seed,
 * epoch, index) so a run replays; {@link #loadPlain} delivers the image without augmentation
 * (for evaluation and pictures). Implementations must allow concurrent calls from several
 * loader threads (or say otherwise through {@link #isAccessibleBy}). The interface itself owns
 * nothing; an implementation that holds memory or files says so.
 */
public interface Dataset {

    /**
     * The number of samples.
     *
     * @return the sample count; indices run from 0 to size - 1
     */
    long size();

    /**
     * The channels of every sample.
     *
     * @return C: 1 for gray, 3 for RGB
     */
    int channels();

    /**
     * The height of every sample.
     *
     * @return H, in pixels
     */
    int height();

    /**
     * The width of every sample.
     *
     * @return W, in pixels
     */
    int width();

    /**
     * Writes sample {@code index} of {@code epoch}, augmented, as C*H*W floats at the start of {@code dst}.
     *
     * @param index the sample, from 0 to {@link #size()} - 1
     * @param epoch the epoch, one of the three numbers the augmentation is drawn from
     * @param seed the run seed, one of the three numbers the augmentation is drawn from
     * @param dst host memory of at least {@link #floatsPerSample()} floats
     * @throws ImageDataException when the image cannot be read (an implementation over files)
     */
    void load(long index, long epoch, long seed, MemorySegment dst);

    /**
     * Writes sample {@code index} without augmentation as C*H*W floats at the start of {@code dst}.
     *
     * @param index the sample, from 0 to {@link #size()} - 1
     * @param dst host memory of at least {@link #floatsPerSample()} floats
     * @throws ImageDataException when the image cannot be read (an implementation over files)
     */
    default void loadPlain(long index, MemorySegment dst) {
        load(index, 0, 0, dst);
    }

    /**
     * The class label of sample {@code index}, or -1 when the dataset has no labels.
     *
     * @param index the sample, from 0 to {@link #size()} - 1
     * @return the label, an index into {@link #classNames()}; or -1
     */
    default int label(long index) {
        return -1;
    }

    /**
     * The names of the classes the labels index, empty when unlabeled.
     *
     * @return the class names, in label order
     */
    default List<String> classNames() {
        return List.of();
    }

    /**
     * How pixel values were normalized (to turn model values back into pixels).
     *
     * @return the normalization; by default the identity
     */
    default Normalization normalization() {
        return Normalization.identity(channels());
    }

    /**
     * Whether thread {@code t} may load samples. False for data in memory confined to another
     * thread (for instance a tensor of a confined arena): loaders then load on the caller's thread.
     *
     * @param t a thread
     * @return whether {@code t} may call {@link #load} and {@link #loadPlain}; true by default
     */
    default boolean isAccessibleBy(Thread t) {
        return true;
    }

    /**
     * The floats of one sample.
     *
     * @return C * H * W
     */
    default long floatsPerSample() {
        return (long) channels() * height() * width();
    }
}
