package org.caejava.api;

/**
 * A parameter of the native model: its official CAE name and shape, whether the optimizer
 * trains it, and whether AdamW decays it.
 */
public record ParamInfo(int index, String name, long[] shape, long numel, boolean trainable, boolean decayed) {
    public ParamInfo {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }
}
