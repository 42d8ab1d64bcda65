package org.caejava.cli;

import org.caejava.api.Backend;
import org.caejava.api.Context;
import picocli.CommandLine.Option;

/** The options that choose where a command computes. */
final class ContextOptions {

    @Option(names = "--backend", paramLabel = "cpu|cuda|auto", defaultValue = "auto",
            description = "Where to compute (default: ${DEFAULT-VALUE}: CUDA when usable, else the CPU).")
    String backend;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "0",
            description = "CPU threads (default: every available core).")
    int threads;

    @Option(names = "--device", paramLabel = "INDEX", defaultValue = "0", description = "CUDA device (default 0).")
    int device;

    Backend parsedBackend() {
        return switch (backend.toLowerCase(java.util.Locale.ROOT)) {
            case "cpu" -> Backend.CPU;
            case "cuda", "gpu" -> Backend.CUDA;
            case "auto" -> Backend.AUTO;
            default -> throw new IllegalArgumentException("--backend must be cpu, cuda or auto, not \"" + backend + "\"");
        };
    }

    Context open(long seed) {
        Backend b = parsedBackend();
        return Context.builder().backend(b).threads(threads).device(b == Backend.CPU ? 0 : device).seed(seed).build();
    }
}
