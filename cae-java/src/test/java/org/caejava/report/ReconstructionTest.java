package org.caejava.report;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.lang.foreign.Arena;
import java.util.Random;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.api.DType;
import org.caejava.api.StepResult;
import org.caejava.api.Tensor;
import org.caejava.data.Normalization;
import org.caejava.data.TensorDataset;
import org.caejava.mask.BlockMaskGenerator;
import org.caejava.mask.RandomMaskGenerator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class ReconstructionTest {

    static final CaeConfig TINY = CaeConfig.preset("fmnist-tiny").toBuilder().imgSize(16).embedDim(32).depth(2)
            .numHeads(2).regressorDepth(1).decoderDepth(1).decoderNumHeads(2).build();

    static Context ctx;

    @BeforeAll
    static void open() {
        ctx = Context.builder().backend(Backend.CPU).threads(2).build();
    }

    @AfterAll
    static void close() {
        ctx.close();
    }

    static float[] image(int channels, int size, long seed) {
        Random r = new Random(seed);
        float[] x = new float[channels * size * size];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (r.nextGaussian() * 0.7 + 0.2);
        }
        return x;
    }

    @Test
    void aPredictionEqualToTheNormalizedTargetGivesBackTheOriginal() {
        for (int channels : new int[] {1, 3}) {
            int size = 12;
            int patch = 3;
            float[] img = image(channels, size, channels);
            byte[] mask = new RandomMaskGenerator(16, 7).generate(1, 0, channels);
            float[] target = Reconstruction.target(img, mask, channels, size, patch, 1e-6);
            assertEquals(7 * patch * patch * channels, target.length);
            float[] back = Reconstruction.compose(img, mask, target, channels, size, patch, 1e-6);
            for (int i = 0; i < img.length; i++) {
                assertEquals(img[i], back[i], 1e-5f, "value " + i + " of a " + channels + "-channel image");
            }
            // A zero prediction is the patch mean: masked patches become flat, visible ones stay.
            float[] flat = Reconstruction.compose(img, mask, new float[target.length], channels, size, patch, 1e-6);
            int g = size / patch;
            for (int p = 0; p < 16; p++) {
                int y0 = p / g * patch;
                int x0 = p % g * patch;
                double mean = 0;
                for (int c = 0; c < channels; c++) {
                    for (int dy = 0; dy < patch; dy++) {
                        for (int dx = 0; dx < patch; dx++) {
                            mean += img[(c * size + y0 + dy) * size + x0 + dx];
                        }
                    }
                }
                mean /= patch * patch * channels;
                int i = (size + y0 + 1) * 0 + (y0 + 1) * size + x0 + 2;  // channel 0, pixel (1, 2) of the patch
                assertEquals(mask[p] != 0 ? (float) mean : img[i], flat[i], 1e-5f, "patch " + p);
            }
        }
    }

    @Test
    void theTargetIsTheOneTheNativeLossUses() {
        // loss_main = mean((pred - target)^2) over masked patches: the Java target must equal the
        // native one (patch order, (py, px, c) layout, unbiased variance) for this to hold.
        CaeConfig rgb = TINY.toBuilder().inChans(3).build();
        try (CaeModel m = CaeModel.create(ctx, rgb, 4); Arena arena = Arena.ofConfined()) {
            int n = 3;
            int per = 3 * 16 * 16;
            int pd = rgb.patchDim();
            float[] all = new float[n * per];
            byte[] masks = new byte[n * 16];
            BlockMaskGenerator gen = new BlockMaskGenerator(4, 6);
            for (int i = 0; i < n; i++) {
                System.arraycopy(image(3, 16, 10 + i), 0, all, i * per, per);
                System.arraycopy(gen.generate(2, 0, i), 0, masks, i * 16, 16);
            }
            Tensor images = Tensor.of(arena, all, n, 3, 16, 16);
            Tensor mask = Tensor.of(arena, masks, n, 16);
            Tensor pred = Tensor.allocate(arena, DType.F32, n, 6, pd);
            m.predict(images, mask, pred);
            float[] p = pred.toFloatArray();
            double sq = 0;
            for (int i = 0; i < n; i++) {
                float[] img = java.util.Arrays.copyOfRange(all, i * per, (i + 1) * per);
                byte[] mk = java.util.Arrays.copyOfRange(masks, i * 16, (i + 1) * 16);
                float[] t = Reconstruction.target(img, mk, 3, 16, 4, rgb.normPixEps());
                for (int j = 0; j < t.length; j++) {
                    double d = p[i * 6 * pd + j] - t[j];
                    sq += d * d;
                }
            }
            StepResult r = m.computeGradients(images, mask, org.caejava.api.Precision.FP32);
            assertEquals(r.lossMain(), sq / (n * 6 * pd), 1e-5 * r.lossMain());
        }
    }

    @Test
    void picturesInvertTheNormalizationAndEnlargeByNearestNeighbour() {
        Normalization norm = new Normalization(new float[] {0.5f}, new float[] {0.25f});
        // 4x4 gray image, patch 2: values chosen to give pixels 0.5 (128), 1.0 (255), > 1 (clamped), < 0 (clamped).
        float[] x = new float[16];
        x[0] = 0;      // 0.5
        x[1] = 2;      // 1.0
        x[2] = 5;      // 1.75 -> 255
        x[3] = -3;     // -0.25 -> 0
        BufferedImage img = Reconstruction.toImage(x, 1, 4, norm, 3, 2, null, 0x808080);
        assertEquals(12, img.getWidth());
        assertEquals(12, img.getHeight());
        assertEquals(0x808080, img.getRGB(0, 0) & 0xFFFFFF);
        assertEquals(0x808080, img.getRGB(2, 2) & 0xFFFFFF, "the 3x3 block of pixel (0, 0)");
        assertEquals(0xFFFFFF, img.getRGB(3, 0) & 0xFFFFFF);
        assertEquals(0xFFFFFF, img.getRGB(6, 0) & 0xFFFFFF);
        assertEquals(0x000000, img.getRGB(9, 0) & 0xFFFFFF);
        byte[] grey = {0, 1, 0, 0};  // patch 1 = top right 2x2 pixels
        BufferedImage masked = Reconstruction.toImage(x, 1, 4, norm, 3, 2, grey, 0x123456);
        assertEquals(0x123456, masked.getRGB(6, 0) & 0xFFFFFF);
        assertEquals(0x808080, masked.getRGB(0, 0) & 0xFFFFFF);
        // RGB keeps the channels apart.
        float[] rgb = new float[3 * 4];
        rgb[0] = 1;      // R of pixel (0, 0)
        rgb[4 + 0] = 0;  // G
        rgb[8 + 0] = 0.5f;
        BufferedImage c = Reconstruction.toImage(rgb, 3, 2, Normalization.identity(3), 1, 1, null, 0);
        assertEquals((255 << 16) | (0 << 8) | 128, c.getRGB(0, 0) & 0xFFFFFF);
        assertEquals(0, Reconstruction.toByte(Float.NaN));
        assertThrows(IllegalArgumentException.class, () -> Reconstruction.toImage(new float[32], 2, 4, norm, 1, 2,
                null, 0));
    }

    @Test
    void theGridShowsOriginalMaskedAndReconstructedRows() {
        try (CaeModel m = CaeModel.create(ctx, TINY, 1); Arena arena = Arena.ofShared()) {
            float[] all = new float[10 * 256];
            for (int i = 0; i < 10; i++) {
                for (int p = 0; p < 256; p++) {
                    all[i * 256 + p] = (p % 16) / 15f;  // a horizontal ramp from 0 to 1 (identity normalization)
                }
            }
            TensorDataset data = TensorDataset.of(Tensor.of(arena, all, 10, 1, 16, 16));
            BlockMaskGenerator masks = new BlockMaskGenerator(4, 8);
            BufferedImage grid = ReconstructionGrid.render(m, data, 8, masks, 0);
            int scale = ReconstructionGrid.scale(16);
            assertEquals(7, scale);
            int tile = 16 * scale;
            assertEquals(8 * tile + 7 * 8 + 16, grid.getWidth());
            assertEquals(36 + 3 * (24 + tile) + 3 * 8, grid.getHeight());
            // Original row: the ramp, pixel (0, 15) of the first image is 255, pixel (0, 0) is 0.
            int x0 = 8;
            int y0 = ReconstructionGrid.rowTop(0, tile);
            assertEquals(0x000000, grid.getRGB(x0 + 1, y0 + 1) & 0xFFFFFF);
            assertEquals(0xFFFFFF, grid.getRGB(x0 + 15 * scale + 1, y0 + 1) & 0xFFFFFF);
            // Masked row: a masked patch of image 0 is grey, a visible one shows the ramp.
            byte[] mk = masks.generate(0, 0, 0);
            int yMasked = ReconstructionGrid.rowTop(1, tile);
            for (int p = 0; p < 16; p++) {
                int px = x0 + (p % 4) * 4 * scale + 1;
                int py = yMasked + (p / 4) * 4 * scale + 1;
                int expected = mk[p] != 0 ? ReconstructionGrid.GREY
                        : grid.getRGB(px, py - yMasked + y0) & 0xFFFFFF;  // the original's pixel
                assertEquals(expected, grid.getRGB(px, py) & 0xFFFFFF, "patch " + p);
            }
            // Reconstruction row: visible patches equal the original.
            int yRecon = ReconstructionGrid.rowTop(2, tile);
            for (int p = 0; p < 16; p++) {
                if (mk[p] == 0) {
                    int px = x0 + (p % 4) * 4 * scale + 2;
                    int py = (p / 4) * 4 * scale + 2;
                    assertEquals(grid.getRGB(px, y0 + py), grid.getRGB(px, yRecon + py), "visible patch " + p);
                }
            }
            assertTrue(grid.getRGB(2, 2) == 0xFFFFFFFF, "white margin");
        }
    }
}
