package org.caejava.api;

/**
 * A parameter of the native model: its official CAE name and shape, whether the optimizer
 * trains it, and whether AdamW decays it. Immutable (the shape is copied in and out), safe to
 * share between threads; owns nothing.
 *
 * @param index the parameter's position in the official order, its index in the native model
 * @param name the official CAE name, e.g. {@code encoder.blocks.0.attn.qkv.weight}
 * @param shape the dimensions, row-major
 * @param numel the number of elements, the product of the dimensions
 * @param trainable whether the optimizer updates it (false for the fixed position embeddings and
 *     frozen gammas)
 * @param decayed whether AdamW applies weight decay to it
 */
public record ParamInfo(int index, String name, long[] shape, long numel, boolean trainable, boolean decayed) {
    /** Copies {@code shape}, so later changes to the caller's array do not show here. */
    public ParamInfo {
        shape = shape.clone();
    }

    /**
     * The dimensions, row-major.
     *
     * @return a copy of the shape
     */
    @Override
    public long[] shape() {
        return shape.clone();
    }
}
