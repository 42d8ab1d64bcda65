package org.caejava.api;

/**
 * Element types of tensors, named as in safetensors. Constants only: owns nothing, immutable, safe
 * to use from any thread.
 */
public enum DType {
    /** 32-bit IEEE float, 4 bytes. */
    F32(4),
    /** bfloat16, the upper 16 bits of an fp32 value, 2 bytes. */
    BF16(2),
    /** Unsigned 8-bit integer (0 to 255), 1 byte. */
    U8(1),
    /** Signed 32-bit integer, 4 bytes. */
    I32(4);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    /**
     * Bytes per element.
     *
     * @return 4 for F32 and I32, 2 for BF16, 1 for U8
     */
    public int byteSize() {
        return byteSize;
    }

    /**
     * The dtype for a safetensors name ("F32", "BF16", "U8", "I32").
     *
     * @param name the name, upper case as in a safetensors header
     * @return the dtype of that name
     * @throws IllegalArgumentException for any other name
     */
    public static DType fromName(String name) {
        for (DType d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        throw new IllegalArgumentException("unsupported dtype \"" + name + "\", expected one of F32, BF16, U8, I32");
    }
}
