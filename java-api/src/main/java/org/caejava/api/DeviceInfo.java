package org.caejava.api;

/**
 * A CUDA device as libcae sees it, at the time of the query. A plain value: owns nothing,
 * immutable, safe to share between threads.
 *
 * @param index the device ordinal, as given to {@link Context.Builder#device(int)}
 * @param name the device name reported by the CUDA driver
 * @param totalMemory the device's memory in bytes
 * @param freeMemory the device memory free at the time of the query, in bytes
 * @param computeMajor the major number of the compute capability (9 for an H100)
 * @param computeMinor the minor number of the compute capability
 * @param multiprocessors the number of streaming multiprocessors
 */
public record DeviceInfo(int index, String name, long totalMemory, long freeMemory, int computeMajor,
        int computeMinor, int multiprocessors) {}
