package org.caejava;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class FlopCountTest {

    @Test
    void caeBaseStepIsAbout107GflopPerImage() {
        // The published estimate for CAE-B with 98 of 196 patches masked and a 768-wide pixel head:
        // about 107 GFLOP per image (encoder 17.4 GF forward, regressor 6.7, decoder 6.9, x3 for
        // training, plus the 17.4 GF alignment pass, less the 8192-class head).
        double gflop = FlopCount.trainingStepPerImage(CaeConfig.preset("base"), 98) / 1e9;
        assertEquals(107, gflop, 107 * 0.05, "CAE-B training step: " + gflop + " GFLOP/image");
    }

    @Test
    void vitBaseForwardIsAbout35Gflop() {
        // ViT-B/16 at 224 (197 tokens): 35.1 GFLOP forward, patch embedding included.
        double gflop = FlopCount.encodePerImage(CaeConfig.preset("base")) / 1e9;
        assertEquals(35.1, gflop, 35.1 * 0.03, "ViT-B forward: " + gflop);
    }

    @Test
    void moreMaskedPatchesMoveWorkFromTheEncoderToTheDecoder() {
        CaeConfig c = CaeConfig.preset("fmnist-tiny");
        assertTrue(FlopCount.trainingStepPerImage(c, 10) > 0);
        assertTrue(FlopCount.trainingStepPerImage(c, 25) != FlopCount.trainingStepPerImage(c, 40));
    }
}
