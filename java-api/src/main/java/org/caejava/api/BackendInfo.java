package org.caejava.api;

/**
 * Whether a backend is compiled into libcae and usable on this machine, and why. A plain value:
 * owns nothing, immutable, safe to share between threads.
 *
 * @param backend the backend asked about
 * @param compiled whether this build of libcae contains the backend's code
 * @param usable whether a context of this backend can be created here
 * @param reason libcae's explanation of why the backend is or is not usable
 */
public record BackendInfo(Backend backend, boolean compiled, boolean usable, String reason) {}
