package org.caejava.data;

import java.util.Arrays;

/**
 * Per-channel normalization of pixel values in [0, 1]: {@code x' = (x - mean[c]) / std[c]}.
 * Immutable (the arrays are copied in and out), owns nothing, safe to share between threads.
 *
 * @param mean the mean of each channel, in [0, 1] pixel units
 * @param std the standard deviation of each channel, positive
 */
public record Normalization(float[] mean, float[] std) {

    /**
     * Checks and copies the arrays.
     *
     * @throws IllegalArgumentException when the lengths differ, are 0, or a std is not positive
     */
    public Normalization {
        if (mean.length != std.length || mean.length == 0) {
            throw new IllegalArgumentException("mean and std need one value per channel: " + Arrays.toString(mean)
                    + ", " + Arrays.toString(std));
        }
        for (float s : std) {
            if (!(s > 0)) {
                throw new IllegalArgumentException("std must be positive: " + Arrays.toString(std));
            }
        }
        mean = mean.clone();
        std = std.clone();
    }

    /**
     * No change: mean 0, std 1 for each channel (data that is already normalized).
     *
     * @param channels the number of channels
     * @return the identity normalization
     */
    public static Normalization identity(int channels) {
        float[] m = new float[channels];
        float[] s = new float[channels];
        Arrays.fill(s, 1f);
        return new Normalization(m, s);
    }

    /**
     * ImageNet's statistics, the official CAE choice for RGB data.
     *
     * @return mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)
     */
    public static Normalization imagenet() {
        return new Normalization(new float[] {0.485f, 0.456f, 0.406f}, new float[] {0.229f, 0.224f, 0.225f});
    }

    /**
     * The number of channels.
     *
     * @return the length of {@code mean} and {@code std}
     */
    public int channels() {
        return mean.length;
    }

    /**
     * The mean of each channel.
     *
     * @return a copy of the means
     */
    @Override
    public float[] mean() {
        return mean.clone();
    }

    /**
     * The standard deviation of each channel.
     *
     * @return a copy of the standard deviations
     */
    @Override
    public float[] std() {
        return std.clone();
    }

    /**
     * The normalized value of a pixel byte {@code v} (0..255) of channel {@code c}.
     *
     * @param c the channel
     * @param v the pixel byte, 0 to 255
     * @return {@code (v / 255 - mean[c]) / std[c]}
     */
    public float apply(int c, int v) {
        return (v / 255f - mean[c]) / std[c];
    }

    /**
     * The pixel value in [0, 1] of a normalized value of channel {@code c} (not clamped).
     *
     * @param c the channel
     * @param x the normalized value
     * @return {@code x * std[c] + mean[c]}
     */
    public float invert(int c, float x) {
        return x * std[c] + mean[c];
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Normalization n && Arrays.equals(mean, n.mean) && Arrays.equals(std, n.std);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(mean) + Arrays.hashCode(std);
    }

    @Override
    public String toString() {
        return "Normalization[mean=" + Arrays.toString(mean) + ", std=" + Arrays.toString(std) + "]";
    }
}
