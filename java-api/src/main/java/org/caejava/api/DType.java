package org.caejava.api;

/** Element types of tensors, named as in safetensors. */
public enum DType {
    F32(4),
    BF16(2),
    U8(1),
    I32(4);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** The dtype for a safetensors name ("F32", "BF16", "U8", "I32"). */
    public static DType fromName(String name) {
        for (DType d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        throw new IllegalArgumentException("unsupported dtype \"" + name + "\", expected one of F32, BF16, U8, I32");
    }
}
