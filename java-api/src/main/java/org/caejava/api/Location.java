package org.caejava.api;

/** Where a tensor's elements live. Constants only: owns nothing, immutable, safe to use from any thread. */
public enum Location {
    /** Host memory: plain off-heap memory of a Java arena, or page-locked memory of a context. */
    HOST,
    /** Memory of a context's backend: GPU memory on CUDA, backend-owned host memory on the CPU. */
    DEVICE
}
