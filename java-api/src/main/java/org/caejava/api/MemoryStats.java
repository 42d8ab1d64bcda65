package org.caejava.api;

/**
 * What libcae holds right now, process-wide: contexts not yet freed, buffers, and bytes of host
 * and device memory (on the CPU backend, "device" memory is host memory owned by the backend).
 * A snapshot: owns nothing, immutable, safe to share between threads.
 *
 * @param liveContexts contexts whose native resources are not yet freed
 * @param liveBuffers native buffers not yet freed (device tensors and page-locked host tensors)
 * @param hostBytes bytes held in host and page-locked host buffers and workspaces
 * @param deviceBytes bytes held in device memory
 */
public record MemoryStats(long liveContexts, long liveBuffers, long hostBytes, long deviceBytes) {}
