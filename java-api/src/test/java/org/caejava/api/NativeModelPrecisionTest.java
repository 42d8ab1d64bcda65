package org.caejava.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The precision of a step through the Java API: parsing, defaults, bf16 gradients and the bf16 GEMM rate. */
class NativeModelPrecisionTest {

    private static final ModelConfig SMALL = ModelConfig.defaults().toBuilder().imgSize(16).patchSize(4).inChans(3)
            .embedDim(32).depth(2).numHeads(4).regressorDepth(1).decoderDepth(1).decoderNumHeads(4)
            .decoderEmbedDim(32).build();

    @Test
    void parsesAndDefaultsPerBackend() {
        assertEquals(Precision.BF16, Precision.parse(" BF16 "));
        assertEquals(Precision.FP32, Precision.parse("fp32"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Precision.parse("fp8"));
        assertTrue(e.getMessage().contains("fp8"), e.getMessage());
        assertEquals(Precision.BF16, Precision.defaultFor(Backend.CUDA));
        assertEquals(Precision.FP32, Precision.defaultFor(Backend.CPU));
        assertEquals(Precision.FP32, StepOptions.defaults().precision());
        assertThrows(NullPointerException.class, () -> StepOptions.defaults().withPrecision(null));
    }

    @Test
    void bf16GradientsAreCloseToFp32ButNotEqual() {
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(2).build();
                NativeModel m = NativeModel.create(ctx, SMALL, 3);
                Arena arena = Arena.ofConfined()) {
            int b = 2;
            Tensor images = Tensor.allocate(arena, DType.F32, b, 3, 16, 16);
            float[] v = new float[(int) images.numel()];
            SplittableRandom rng = new SplittableRandom(5);
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) rng.nextGaussian();
            }
            images.copyFrom(v);
            Tensor mask = Tensor.allocate(arena, DType.U8, b, 16);
            byte[] mk = new byte[b * 16];
            for (int i = 0; i < b; i++) {
                for (int k = 0; k < 8; k++) {
                    mk[i * 16 + 2 * k] = 1;
                }
            }
            mask.copyFrom(mk);
            StepOptions o = StepOptions.defaults().withDropPath(false);
            StepResult fp32 = m.computeGradients(images, mask, o);
            assertEquals(fp32.loss(), m.computeGradients(images, mask).loss(), "no options: fp32 without drop path");
            ParamInfo w = m.parameters().stream().filter(p -> p.name().endsWith("mlp.fc1.weight")).findFirst().orElseThrow();
            float[] g32 = m.read(w, Slot.GRAD);
            StepResult bf16 = m.computeGradients(images, mask, o.withPrecision(Precision.BF16));
            float[] g16 = m.read(w, Slot.GRAD);
            assertNotEquals(fp32.loss(), bf16.loss(), "bf16 rounds the operands");
            assertEquals(fp32.loss(), bf16.loss(), 5e-3 * fp32.loss());
            double num = 0, den = 0;
            for (int i = 0; i < g32.length; i++) {
                num += (g16[i] - g32[i]) * (double) (g16[i] - g32[i]);
                den += g32[i] * (double) g32[i];
            }
            assertTrue(Math.sqrt(num / den) < 3e-2, "relative L2 of a bf16 gradient: " + Math.sqrt(num / den));
        }
    }

    @Test
    void measuresTheBf16GemmRate() {
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build()) {
            double gflops = ctx.measureGemmGflops(Precision.BF16, 64, 64, 64, 2);
            assertTrue(gflops > 0.01 && gflops < 1e5, gflops + " GFLOP/s");
        }
    }
}
