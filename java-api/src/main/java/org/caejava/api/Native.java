package org.caejava.api;

import org.caejava.bindings.CaeNative;

/** Checks the status of a native call right at the call, carrying libcae's message. */
final class Native {

    private Native() {}

    /** Throws a {@link CaeException} when {@code status} is not CAE_OK. */
    static void check(int status, String javaContext) {
        if (status != 0) {
            throw failure(status, javaContext);
        }
    }

    /** As {@link #check(int, String)}, building the context only on failure (for calls made every step). */
    static void check(int status, java.util.function.Supplier<String> javaContext) {
        if (status != 0) {
            throw failure(status, javaContext.get());
        }
    }

    /** The exception for a failed call; reads the calling thread's last native error. */
    static CaeException failure(int status, String javaContext) {
        String message = CaeNative.cae_last_error().getString(0);
        return new CaeException(Status.of(status), message.isEmpty() ? "(no message)" : message, javaContext);
    }

    /**
     * The calling thread's last native error as the checks of {@code function} wrote it: without
     * the {@code "function: "} prefix by which libcae names the failed call.
     */
    static String lastErrorOf(String function) {
        String message = CaeNative.cae_last_error().getString(0);
        String prefix = function + ": ";
        return message.startsWith(prefix) ? message.substring(prefix.length()) : message;
    }
}
