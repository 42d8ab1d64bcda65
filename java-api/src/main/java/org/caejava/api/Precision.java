package org.caejava.api;

import java.util.Locale;

/**
 * The arithmetic of a training step's linear-layer matrix products. {@link #BF16} rounds both
 * operands of those GEMMs to bfloat16 and sums the products in fp32 (tensor cores on CUDA, an
 * emulation on the CPU); weights, optimizer state, activations, attention, norms and losses stay
 * fp32. {@link #FP32} is the reference.
 */
public enum Precision {
    FP32(0), BF16(1);

    private final int code;

    Precision(int code) {
        this.code = code;
    }

    /** The value of {@code cae_precision}. */
    public int code() {
        return code;
    }

    /** "fp32" or "bf16" (any case). */
    public static Precision parse(String text) {
        for (Precision p : values()) {
            if (p.name().equalsIgnoreCase(text.trim())) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown precision \"" + text + "\"; expected fp32 or bf16");
    }

    /** The precision a step runs at by default on a backend: bf16 on CUDA, fp32 on the CPU. */
    public static Precision defaultFor(Backend backend) {
        return backend == Backend.CUDA ? BF16 : FP32;
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
