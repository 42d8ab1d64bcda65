package org.caejava.data;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Per-channel mean and standard deviation of pixel / 255 over 8-bit HWC images, accumulated as
 * exact integer sums of v and v^2, so the result does not depend on the order (or threads) in which
 * images are added. Images may be added concurrently, from any thread, and the statistics read
 * at any time. Holds only Java counters: no native memory, files or threads.
 */
public final class PixelStatistics {

    private final int channels;
    private final AtomicLongArray sums;
    private final AtomicLong pixels = new AtomicLong();

    /**
     * Empty statistics.
     *
     * @param channels the channels per pixel, at least 1
     * @throws IllegalArgumentException when {@code channels} is less than 1
     */
    public PixelStatistics(int channels) {
        if (channels < 1) {
            throw new IllegalArgumentException("channels " + channels);
        }
        this.channels = channels;
        this.sums = new AtomicLongArray(2 * channels);
    }

    /**
     * Adds the first {@code bytes} bytes of {@code image} (HWC, {@code channels} per pixel).
     *
     * @param image 8-bit pixels, channels interleaved
     * @param bytes how many bytes to add, a multiple of the channel count
     */
    public void add(MemorySegment image, long bytes) {
        long[] local = new long[2 * channels];
        for (long p = 0; p < bytes; p++) {
            int v = Byte.toUnsignedInt(image.get(ValueLayout.JAVA_BYTE, p));
            int c = (int) (p % channels);
            local[c] += v;
            local[channels + c] += (long) v * v;
        }
        merge(local, bytes / channels);
    }

    /**
     * Adds the first {@code bytes} bytes of {@code image} (HWC, {@code channels} per pixel).
     *
     * @param image 8-bit pixels, channels interleaved
     * @param bytes how many bytes to add, a multiple of the channel count
     */
    public void add(byte[] image, int bytes) {
        long[] local = new long[2 * channels];
        for (int p = 0; p < bytes; p++) {
            int v = image[p] & 0xFF;
            int c = p % channels;
            local[c] += v;
            local[channels + c] += (long) v * v;
        }
        merge(local, bytes / channels);
    }

    private void merge(long[] local, long n) {
        for (int i = 0; i < local.length; i++) {
            sums.addAndGet(i, local[i]);
        }
        pixels.addAndGet(n);
    }

    /**
     * The statistics so far (a channel with no spread gets std 1).
     *
     * @return the mean and standard deviation of pixel / 255, per channel
     * @throws IllegalStateException when no pixel was added
     */
    public Normalization normalization() {
        long n = pixels.get();
        if (n == 0) {
            throw new IllegalStateException("no pixels added");
        }
        float[] mean = new float[channels];
        float[] std = new float[channels];
        for (int c = 0; c < channels; c++) {
            double m = sums.get(c) / (double) n / 255;
            double var = sums.get(channels + c) / (double) n / (255.0 * 255) - m * m;
            double sd = Math.sqrt(Math.max(var, 0));
            mean[c] = (float) m;
            std[c] = sd > 1e-6 ? (float) sd : 1f;
        }
        return new Normalization(mean, std);
    }
}
