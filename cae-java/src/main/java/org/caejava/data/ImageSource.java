package org.caejava.data;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Decoded images as 8-bit pixels, interleaved: image {@code i} is {@code height(i) * width(i) *
 * channels()} bytes, rows top to bottom, the channels of a pixel side by side (HWC). Every image
 * of a source has the same channel count (1 = gray, 3 = RGB); sizes are fixed for IDX files and
 * shards and vary for image folders. All methods may be called concurrently from several loader
 * threads. A source that owns memory or files releases them in {@link #close()}; reading after
 * that throws {@link IllegalStateException}.
 */
public interface ImageSource extends AutoCloseable {

    /**
     * The number of images.
     *
     * @return the image count; indices run from 0 to size - 1
     */
    long size();

    /**
     * The channels of every image.
     *
     * @return 1 for gray, 3 for RGB
     */
    int channels();

    /**
     * The width of image {@code index}.
     *
     * @param index the image, from 0 to {@link #size()} - 1
     * @return the width in pixels
     */
    int width(long index);

    /**
     * The height of image {@code index}.
     *
     * @param index the image, from 0 to {@link #size()} - 1
     * @return the height in pixels
     */
    int height(long index);

    /**
     * Bytes of image {@code index}: {@code height * width * channels}.
     *
     * @param index the image, from 0 to {@link #size()} - 1
     * @return the size of the decoded image, in bytes
     */
    default long byteSize(long index) {
        return (long) height(index) * width(index) * channels();
    }

    /**
     * Writes image {@code index} (HWC, {@link #byteSize} bytes) at the start of {@code dst}.
     *
     * @param index the image, from 0 to {@link #size()} - 1
     * @param dst memory of at least {@link #byteSize} bytes
     * @throws ImageDataException when the image cannot be decoded (the message names it)
     */
    void read(long index, MemorySegment dst);

    /**
     * Image {@code index} in place (HWC, {@link #byteSize} bytes), without a copy, where the source
     * holds its images in memory (IDX files, memory-mapped shards); {@code null} otherwise. The view
     * lives as long as the source is open.
     *
     * @param index the image, from 0 to {@link #size()} - 1
     * @return a view of the image's bytes, or null
     */
    default MemorySegment view(long index) {
        return null;
    }

    /**
     * The class label of image {@code index}, or -1 when the source has no labels.
     *
     * @param index the image, from 0 to {@link #size()} - 1
     * @return the label, an index into {@link #classNames()}; or -1
     */
    int label(long index);

    /**
     * The names of the classes the labels index, empty when unlabeled.
     *
     * @return the class names, in label order
     */
    List<String> classNames();

    /**
     * Pixel statistics known for this source (for instance stored by {@code cae prepare}, or the
     * published ones of a known dataset), or {@code null} when they must be computed.
     *
     * @return the known normalization, or null
     */
    default Normalization knownNormalization() {
        return null;
    }

    /**
     * Where image {@code index} comes from, for messages: a file, or "image 17 of FILE".
     *
     * @param index the image, from 0 to {@link #size()} - 1
     * @return a short description of the image's origin
     */
    String describe(long index);

    /** Releases what the source holds; does nothing by default. */
    @Override
    default void close() {}
}
