package org.caejava.check;

import java.util.Locale;

/**
 * One number of the self-check, computed on the device and on the CPU: a loss (compared
 * relatively) or a vector such as a parameter's gradient, where {@code cuda} and {@code cpu} are
 * the norms and {@code error} is {@code |cuda - cpu| / |cpu|} of the vectors.
 */
public record Figure(String name, double cuda, double cpu, double error, double tolerance) {

    /** A scalar: error {@code |cuda - cpu| / |cpu|} (0 when both are 0). */
    public static Figure scalar(String name, double cuda, double cpu, double tolerance) {
        return new Figure(name, cuda, cpu, relative(Math.abs(cuda - cpu), Math.abs(cpu)), tolerance);
    }

    /** A vector: the norms, and the norm of the difference relative to the CPU's. */
    public static Figure vector(String name, float[] cuda, float[] cpu, double tolerance) {
        return vector(name, cuda, cpu, 0, tolerance);
    }

    /**
     * A vector whose difference is measured against the CPU's norm or {@code floor}, whichever is
     * larger: a gradient that is zero but for rounding (a key bias, whose shift every softmax
     * cancels) is compared with the scale of the whole gradient, not with its own noise.
     */
    public static Figure vector(String name, float[] cuda, float[] cpu, double floor, double tolerance) {
        if (cuda.length != cpu.length) {
            throw new IllegalArgumentException(name + ": " + cuda.length + " values on CUDA, " + cpu.length
                    + " on the CPU");
        }
        double diff = 0;
        double a = 0;
        double b = 0;
        for (int i = 0; i < cpu.length; i++) {
            double d = (double) cuda[i] - cpu[i];
            diff += d * d;
            a += (double) cuda[i] * cuda[i];
            b += (double) cpu[i] * cpu[i];
        }
        return new Figure(name, Math.sqrt(a), Math.sqrt(b), relative(Math.sqrt(diff), Math.max(Math.sqrt(b), floor)),
                tolerance);
    }

    private static double relative(double difference, double reference) {
        if (difference == 0) {
            return 0;
        }
        return reference == 0 ? Double.POSITIVE_INFINITY : difference / reference;
    }

    /** Within tolerance; a NaN on either side is not. */
    public boolean passed() {
        return error <= tolerance;
    }

    /** "bf16 loss 7.0871 vs 7.0863 on the CPU (relative 1.1e-04 > 1e-05)". */
    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%s %.7g vs %.7g on the CPU (relative %.1e %s %.0e)", name, cuda, cpu, error,
                passed() ? "<=" : ">", tolerance);
    }
}
