package org.caejava.api;

/**
 * What libcae holds right now, process-wide: contexts not yet freed, buffers, and bytes of host
 * and device memory (on the CPU backend, "device" memory is host memory owned by the backend).
 */
public record MemoryStats(long liveContexts, long liveBuffers, long hostBytes, long deviceBytes) {}
