package org.caejava;

/**
 * Floating-point operations of the CAE model, counted from its shapes (a multiply-add is 2
 * FLOPs): the matrix products and attention products, which are nearly all of the work;
 * normalization, activations and the optimizer are left out. A training step is the forward of
 * every trained part, twice that again for its backward (gradients of inputs and weights), plus
 * the alignment pass (forward only) and the patch embedding of every patch (its backward only
 * for the weights, from the visible patches). Static methods only: owns nothing, safe to call from
 * any thread.
 */
public final class FlopCount {

    private FlopCount() {}

    /**
     * FLOPs of one training step per image with {@code masked} of the N patches masked.
     *
     * @param c the model configuration
     * @param masked the masked patches per image, from 1 to N - 1
     * @return the floating-point operations of one image's share of a step
     * @throws IllegalArgumentException when {@code masked} is out of range
     */
    public static double trainingStepPerImage(CaeConfig c, int masked) {
        int n = c.numPatches();
        if (masked < 1 || masked >= n) {
            throw new IllegalArgumentException(masked + " masked of " + n + " patches");
        }
        double d = c.embedDim();
        double mlp = Math.floor(d * (float) c.mlpRatio());
        double k = c.patchDim();
        int visible = n - masked;
        double patchForward = 2 * n * k * d;
        double patchWeightGrad = 2 * visible * k * d;
        double encoder = c.depth() * block(1 + visible, d, mlp);
        double alignment = c.depth() * block(1 + masked, d, mlp);
        double regressor = c.regressorDepth() * regressorBlock(masked, visible + masked, d, mlp);
        double decoder = c.decoderDepth() * block(masked, d, mlp) + 2 * masked * d * k;
        return patchForward + patchWeightGrad + 3 * (encoder + regressor + decoder) + alignment;
    }

    /**
     * FLOPs of encoding one whole image (cae_encode: every patch and cls).
     *
     * @param c the model configuration
     * @return the floating-point operations of encoding one image
     */
    public static double encodePerImage(CaeConfig c) {
        double d = c.embedDim();
        double mlp = Math.floor(d * (float) c.mlpRatio());
        return 2 * c.numPatches() * c.patchDim() * d + c.depth() * block(1 + c.numPatches(), d, mlp);
    }

    /** One pre-norm block over t tokens: qkv, proj, MLP, and q k^T and p v. */
    private static double block(double t, double d, double mlp) {
        return 2 * t * (3 * d * d + d * d + 2 * d * mlp) + 4 * t * t * d;
    }

    /** One regressor block: q for the queries, k and v for all keys, proj and MLP for the queries. */
    private static double regressorBlock(double queries, double keys, double d, double mlp) {
        return 2 * (queries * d * d + 2 * keys * d * d + queries * d * d + 2 * queries * d * mlp)
                + 4 * queries * keys * d;
    }
}
