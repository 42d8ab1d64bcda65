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

    long size();

    int channels();

    int width(long index);

    int height(long index);

    /** Bytes of image {@code index}: {@code height * width * channels}. */
    default long byteSize(long index) {
        return (long) height(index) * width(index) * channels();
    }

    /**
     * Writes image {@code index} (HWC, {@link #byteSize} bytes) at the start of {@code dst}.
     *
     * @throws ImageDataException when the image cannot be decoded (the message names it)
     */
    void read(long index, MemorySegment dst);

    /**
     * Image {@code index} in place (HWC, {@link #byteSize} bytes), without a copy, where the source
     * holds its images in memory (IDX files, memory-mapped shards); {@code null} otherwise. The view
     * lives as long as the source is open.
     */
    default MemorySegment view(long index) {
        return null;
    }

    /** The class label of image {@code index}, or -1 when the source has no labels. */
    int label(long index);

    /** The names of the classes the labels index, empty when unlabeled. */
    List<String> classNames();

    /**
     * Pixel statistics known for this source (for instance stored by {@code cae prepare}, or the
     * published ones of a known dataset), or {@code null} when they must be computed.
     */
    default Normalization knownNormalization() {
        return null;
    }

    /** Where image {@code index} comes from, for messages: a file, or "image 17 of FILE". */
    String describe(long index);

    @Override
    default void close() {}
}
