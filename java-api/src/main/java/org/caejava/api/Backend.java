package org.caejava.api;

/** Where a context computes. Constants only: owns nothing, immutable, safe to use from any thread. */
public enum Backend {
    /** fp32 kernels on the CPU (OpenBLAS GEMM, OpenMP); the numerical reference. */
    CPU(0),
    /** One CUDA device. */
    CUDA(1),
    /** CUDA when a device, a driver and the CUDA kernels are present, the CPU otherwise. */
    AUTO(2);

    private final int code;

    Backend(int code) {
        this.code = code;
    }

    /**
     * The number the C ABI uses for this backend ({@code cae_backend}).
     *
     * @return 0 for CPU, 1 for CUDA, 2 for AUTO
     */
    public int code() {
        return code;
    }

    static Backend of(int code) {
        for (Backend b : values()) {
            if (b.code == code) {
                return b;
            }
        }
        throw new IllegalArgumentException("unknown backend code " + code);
    }
}
