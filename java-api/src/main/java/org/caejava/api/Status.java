package org.caejava.api;

import org.caejava.bindings.CaeNative;

/**
 * The status codes of the C ABI ({@code cae_status}). Constants only: owns nothing, immutable,
 * safe to use from any thread.
 */
public enum Status {
    /** The call succeeded. */
    OK(CaeNative.CAE_OK()),
    /** A null pointer, a value out of range or a wrong enum value. */
    INVALID_ARGUMENT(CaeNative.CAE_ERR_INVALID_ARGUMENT()),
    /** A handle that was destroyed or never created. */
    INVALID_HANDLE(CaeNative.CAE_ERR_INVALID_HANDLE()),
    /** A host or device allocation failed. */
    OUT_OF_MEMORY(CaeNative.CAE_ERR_OUT_OF_MEMORY()),
    /** A backend or feature that is not compiled in or not usable here. */
    UNSUPPORTED(CaeNative.CAE_ERR_UNSUPPORTED()),
    /** The CUDA driver or runtime reported an error. */
    DEVICE(CaeNative.CAE_ERR_DEVICE()),
    /** Reading or writing a file failed. */
    IO(CaeNative.CAE_ERR_IO()),
    /** NaN or infinity where a finite value is required. */
    NUMERICAL(CaeNative.CAE_ERR_NUMERICAL()),
    /** A bug in libcae. */
    INTERNAL(CaeNative.CAE_ERR_INTERNAL()),
    /** A collective operation between processes failed. */
    COMM(CaeNative.CAE_ERR_COMM()),
    /** A code these bindings do not know. */
    UNKNOWN(-1);

    private final int code;

    Status(int code) {
        this.code = code;
    }

    /**
     * The number of this status in the C ABI.
     *
     * @return the code; -1 for {@link #UNKNOWN}
     */
    public int code() {
        return code;
    }

    /**
     * The status of a code returned by libcae.
     *
     * @param code the {@code cae_status} value
     * @return the status of that code, {@link #UNKNOWN} for a code not listed here
     */
    public static Status of(int code) {
        for (Status s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        return UNKNOWN;
    }
}
