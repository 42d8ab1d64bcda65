package org.caejava.api;

/** Whether a backend is compiled into libcae and usable on this machine, and why. */
public record BackendInfo(Backend backend, boolean compiled, boolean usable, String reason) {}
