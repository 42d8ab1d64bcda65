package org.caejava.api;

/** The status codes of the C ABI ({@code cae_status}). */
public enum Status {
    OK(0),
    INVALID_ARGUMENT(1),
    INVALID_HANDLE(2),
    OUT_OF_MEMORY(3),
    UNSUPPORTED(4),
    DEVICE(5),
    IO(6),
    NUMERICAL(7),
    INTERNAL(8),
    COMM(9),
    UNKNOWN(-1);

    private final int code;

    Status(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    public static Status of(int code) {
        for (Status s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        return UNKNOWN;
    }
}
