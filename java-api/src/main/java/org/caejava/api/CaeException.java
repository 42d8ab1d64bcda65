package org.caejava.api;

/**
 * A call into libcae failed. Carries the native status, the native library's own message and
 * what the Java side was doing (which file, which tensor, which step). Owns nothing; its fields
 * are final, so it can be read from any thread.
 */
public class CaeException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** The status the native call returned. */
    private final Status status;
    /** The message libcae recorded for the failure. */
    private final String nativeMessage;
    /** What the Java side was doing when the call failed. */
    private final String javaContext;

    /**
     * A failed native call. The exception's message joins the three parts.
     *
     * @param status the status the native call returned
     * @param nativeMessage the message libcae recorded for the failure
     * @param javaContext what the Java side was doing (which file, which tensor, which step)
     */
    public CaeException(Status status, String nativeMessage, String javaContext) {
        super(javaContext + ": " + nativeMessage + " [" + status + "]");
        this.status = status;
        this.nativeMessage = nativeMessage;
        this.javaContext = javaContext;
    }

    /**
     * The status the native call returned.
     *
     * @return the native status
     */
    public Status status() {
        return status;
    }

    /**
     * The message libcae recorded for the failure ({@code cae_last_error()}).
     *
     * @return the native message, "(no message)" when libcae recorded none
     */
    public String nativeMessage() {
        return nativeMessage;
    }

    /**
     * What the Java side was doing when the call failed.
     *
     * @return a short description of the call, e.g. "creating a CPU context (device 0, threads 2)"
     */
    public String javaContext() {
        return javaContext;
    }
}
