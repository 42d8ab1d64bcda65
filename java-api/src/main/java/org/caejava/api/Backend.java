package org.caejava.api;

import org.caejava.bindings.CaeNative;

/** Where a context computes. Constants only: owns nothing, immutable, safe to use from any thread. */
public enum Backend {
    /** fp32 kernels on the CPU (OpenBLAS GEMM, OpenMP); the numerical reference. */
    CPU(CaeNative.CAE_BACKEND_CPU()),
    /** One CUDA device. */
    CUDA(CaeNative.CAE_BACKEND_CUDA()),
    /** CUDA when a device, a driver and the CUDA kernels are present, the CPU otherwise. */
    AUTO(CaeNative.CAE_BACKEND_AUTO());

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
