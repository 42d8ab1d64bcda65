package org.caejava.api;

/** A CUDA device as libcae sees it. */
public record DeviceInfo(int index, String name, long totalMemory, long freeMemory, int computeMajor,
        int computeMinor, int multiprocessors) {}
