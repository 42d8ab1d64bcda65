package org.caejava.cli;

import java.util.Locale;
import org.caejava.api.Backend;
import org.caejava.api.Precision;
import picocli.CommandLine.Option;

/** {@code --precision}: the arithmetic of the training step's linear layers. */
final class PrecisionOption {

    @Option(names = "--precision", paramLabel = "bf16|fp32|auto",
            description = "Matrix products of the linear layers: bf16 (operands rounded to bfloat16, fp32 sums; "
                    + "weights, optimizer and checkpoints stay fp32) or fp32. Default auto: bf16 on CUDA, fp32 on "
                    + "the CPU (where bf16 is a slower emulation, for comparisons).")
    String precision;  // null: not given (auto)

    /** What was asked for: "auto" when nothing was. */
    String requested() {
        return precision == null ? "auto" : precision.trim().toLowerCase(Locale.ROOT);
    }

    /** Throws for a value that is not bf16, fp32 or auto, before any backend is chosen. */
    void validate() {
        resolve(Backend.CPU);
    }

    /** The precision to train at on `backend` (the context's resolved backend). */
    Precision resolve(Backend backend) {
        if (requested().equals("auto")) {
            return Precision.defaultFor(backend);
        }
        try {
            return Precision.parse(precision);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--precision must be bf16, fp32 or auto, not \"" + precision + "\"");
        }
    }
}
