package org.caejava.api;

/**
 * A call into libcae failed. Carries the native status, the native library's own message and
 * what the Java side was doing (which file, which tensor, which step).
 */
public class CaeException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final Status status;
    private final String nativeMessage;
    private final String javaContext;

    public CaeException(Status status, String nativeMessage, String javaContext) {
        super(javaContext + ": " + nativeMessage + " [" + status + "]");
        this.status = status;
        this.nativeMessage = nativeMessage;
        this.javaContext = javaContext;
    }

    /** The status the native call returned. */
    public Status status() {
        return status;
    }

    /** The message libcae recorded for the failure ({@code cae_last_error()}). */
    public String nativeMessage() {
        return nativeMessage;
    }

    /** What the Java side was doing when the call failed. */
    public String javaContext() {
        return javaContext;
    }
}
