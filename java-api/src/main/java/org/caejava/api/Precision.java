package org.caejava.api;

import java.util.Locale;
import org.caejava.bindings.CaeNative;


/**
 * The arithmetic of a training step's linear-layer matrix products. {@link #BF16} rounds both
 * operands of those GEMMs to bfloat16 and sums the products in fp32 (tensor cores on CUDA, an
 * emulation on the CPU); weights, optimizer state, activations, attention, norms and losses stay
 * fp32. {@link #FP32} is the reference. Constants only: owns nothing, immutable, safe to use from
 * any thread.
 */
public enum Precision {
    /** fp32 throughout: the reference. */
    FP32(CaeNative.CAE_PRECISION_FP32()),
    /** The linear layers' GEMM operands rounded to bfloat16, the products summed in fp32. */
    BF16(CaeNative.CAE_PRECISION_BF16());

    private final int code;

    Precision(int code) {
        this.code = code;
    }

    /**
     * The value of {@code cae_precision}.
     *
     * @return 0 for FP32, 1 for BF16
     */
    public int code() {
        return code;
    }

    /**
     * The precision of a name: "fp32" or "bf16", in any case, blanks around it ignored.
     *
     * @param text the name
     * @return the precision of that name
     * @throws IllegalArgumentException for any other text
     */
    public static Precision parse(String text) {
        for (Precision p : values()) {
            if (p.name().equalsIgnoreCase(text.trim())) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown precision \"" + text + "\"; expected fp32 or bf16");
    }

    /**
     * The precision a step runs at by default on a backend: bf16 on CUDA, fp32 on the CPU.
     *
     * @param backend the backend the step runs on (a context's resolved backend: {@link Backend#AUTO}
     *     gives fp32)
     * @return {@link #BF16} for {@link Backend#CUDA}, {@link #FP32} otherwise
     */
    public static Precision defaultFor(Backend backend) {
        return backend == Backend.CUDA ? BF16 : FP32;
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
