package org.caejava.report;

import java.awt.image.BufferedImage;
import org.caejava.data.Normalization;

/**
 * The geometry of the reconstruction picture, for one image [C, H, W] (H = W = size) cut into
 * p x p patches (patch {@code gy * (size/p) + gx} is row gy, column gx of the grid).
 *
 * <p>The decoder predicts each masked patch in the per-patch normalized space of the target: the
 * patch's values of the normalized model input in (py, px, c) order, standardized by their own
 * mean and unbiased variance ({@code (x - mean) / sqrt(var + eps)}). A prediction is pasted back
 * with the statistics of the original patch, exactly as MAE visualizes its norm_pix_loss models:
 * {@code x = pred * sqrt(var + eps) + mean}.
 */
public final class Reconstruction {

    private Reconstruction() {}

    /**
     * The image with its masked patches replaced by the de-normalized predictions.
     *
     * @param image normalized input, C*H*W values
     * @param mask  one byte per patch, 1 = masked
     * @param pred  the predictions for the masked patches in ascending patch order, Nm * p*p*C
     *              values in (py, px, c) order
     */
    public static float[] compose(float[] image, byte[] mask, float[] pred, int channels, int size, int patch,
            double eps) {
        int g = checkGeometry(image, mask, channels, size, patch);
        int pd = patch * patch * channels;
        int masked = 0;
        for (byte b : mask) {
            masked += b != 0 ? 1 : 0;
        }
        if (pred.length != masked * pd) {
            throw new IllegalArgumentException(pred.length + " predicted values for " + masked + " masked patches of "
                    + pd + " values");
        }
        float[] out = image.clone();
        float[] v = new float[pd];
        int m = 0;
        for (int pi = 0; pi < mask.length; pi++) {
            if (mask[pi] == 0) {
                continue;
            }
            int y0 = (pi / g) * patch;
            int x0 = (pi % g) * patch;
            for (int py = 0; py < patch; py++) {
                for (int px = 0; px < patch; px++) {
                    for (int c = 0; c < channels; c++) {
                        v[(py * patch + px) * channels + c] = image[(c * size + y0 + py) * size + x0 + px];
                    }
                }
            }
            double sum = 0;
            for (float x : v) {
                sum += x;
            }
            double mean = sum / pd;
            double sq = 0;
            for (float x : v) {
                sq += (x - mean) * (x - mean);
            }
            double var = pd > 1 ? sq / (pd - 1) : 0;
            double scale = Math.sqrt(var + eps);
            int po = m * pd;
            for (int py = 0; py < patch; py++) {
                for (int px = 0; px < patch; px++) {
                    for (int c = 0; c < channels; c++) {
                        double x = pred[po + (py * patch + px) * channels + c] * scale + mean;
                        out[(c * size + y0 + py) * size + x0 + px] = (float) x;
                    }
                }
            }
            m++;
        }
        return out;
    }

    /**
     * The per-patch normalized target of the masked patches (what the decoder regresses), in the
     * layout of the predictions: a reference for tests and for checking a prediction's scale.
     */
    public static float[] target(float[] image, byte[] mask, int channels, int size, int patch, double eps) {
        int g = checkGeometry(image, mask, channels, size, patch);
        int pd = patch * patch * channels;
        int masked = 0;
        for (byte b : mask) {
            masked += b != 0 ? 1 : 0;
        }
        float[] out = new float[masked * pd];
        int m = 0;
        for (int pi = 0; pi < mask.length; pi++) {
            if (mask[pi] == 0) {
                continue;
            }
            int y0 = (pi / g) * patch;
            int x0 = (pi % g) * patch;
            int po = m * pd;
            for (int py = 0; py < patch; py++) {
                for (int px = 0; px < patch; px++) {
                    for (int c = 0; c < channels; c++) {
                        out[po + (py * patch + px) * channels + c] = image[(c * size + y0 + py) * size + x0 + px];
                    }
                }
            }
            double sum = 0;
            for (int i = 0; i < pd; i++) {
                sum += out[po + i];
            }
            double mean = sum / pd;
            double sq = 0;
            for (int i = 0; i < pd; i++) {
                sq += (out[po + i] - mean) * (out[po + i] - mean);
            }
            double inv = 1 / Math.sqrt((pd > 1 ? sq / (pd - 1) : 0) + eps);
            for (int i = 0; i < pd; i++) {
                out[po + i] = (float) ((out[po + i] - mean) * inv);
            }
            m++;
        }
        return out;
    }

    /**
     * An RGB picture of a normalized image: the normalization inverted, values scaled to [0, 255]
     * and clamped, each pixel drawn as a {@code scale x scale} square (nearest neighbour). Gray
     * images (C = 1) become gray RGB; patches with {@code grey[patch]} set are filled with
     * {@code greyRgb} instead.
     */
    public static BufferedImage toImage(float[] chw, int channels, int size, Normalization norm, int scale,
            int patch, byte[] grey, int greyRgb) {
        if (channels != 1 && channels != 3) {
            throw new IllegalArgumentException("pictures of " + channels + " channels: expected 1 (gray) or 3 (RGB)");
        }
        if (norm.channels() != channels) {
            throw new IllegalArgumentException("the normalization has " + norm.channels() + " channels, the image "
                    + channels);
        }
        int g = size / patch;
        BufferedImage img = new BufferedImage(size * scale, size * scale, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < size; y++) {
            for (int x = 0; x < size; x++) {
                int rgb;
                if (grey != null && grey[(y / patch) * g + x / patch] != 0) {
                    rgb = greyRgb;
                } else {
                    int[] v = new int[3];
                    for (int c = 0; c < 3; c++) {
                        int ch = channels == 1 ? 0 : c;
                        v[c] = toByte(norm.invert(ch, chw[(ch * size + y) * size + x]));
                    }
                    rgb = (v[0] << 16) | (v[1] << 8) | v[2];
                }
                for (int dy = 0; dy < scale; dy++) {
                    for (int dx = 0; dx < scale; dx++) {
                        img.setRGB(x * scale + dx, y * scale + dy, rgb);
                    }
                }
            }
        }
        return img;
    }

    /** A pixel value in [0, 1] as a byte 0..255, rounded and clamped (NaN becomes 0). */
    public static int toByte(float v) {
        if (!(v > 0)) {
            return 0;
        }
        return (int) Math.min(255, Math.round(v * 255f));
    }

    private static int checkGeometry(float[] image, byte[] mask, int channels, int size, int patch) {
        if (patch < 1 || size % patch != 0) {
            throw new IllegalArgumentException("patch size " + patch + " does not divide the image size " + size);
        }
        int g = size / patch;
        if (image.length != channels * size * size) {
            throw new IllegalArgumentException("an image of " + image.length + " values, expected " + channels + "x"
                    + size + "x" + size);
        }
        if (mask.length != g * g) {
            throw new IllegalArgumentException("a mask of " + mask.length + " patches, expected " + g * g);
        }
        return g;
    }
}
