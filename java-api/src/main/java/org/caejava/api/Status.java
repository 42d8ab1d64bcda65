package org.caejava.api;

/**
 * The status codes of the C ABI ({@code cae_status}). Constants only: owns nothing, immutable,
 * safe to use from any thread.
 */
public enum Status {
    /** The call succeeded. */
    OK(0),
    /** A null pointer, a value out of range or a wrong enum value. */
    INVALID_ARGUMENT(1),
    /** A handle that was destroyed or never created. */
    INVALID_HANDLE(2),
    /** A host or device allocation failed. */
    OUT_OF_MEMORY(3),
    /** A backend or feature that is not compiled in or not usable here. */
    UNSUPPORTED(4),
    /** The CUDA driver or runtime reported an error. */
    DEVICE(5),
    /** Reading or writing a file failed. */
    IO(6),
    /** NaN or infinity where a finite value is required. */
    NUMERICAL(7),
    /** A bug in libcae. */
    INTERNAL(8),
    /** A collective operation between processes failed. */
    COMM(9),
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
