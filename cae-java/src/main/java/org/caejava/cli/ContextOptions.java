package org.caejava.cli;

import java.io.PrintWriter;
import org.caejava.api.Backend;
import org.caejava.api.Communicator;
import org.caejava.api.Context;
import org.caejava.check.CudaSelfCheck;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** The options that choose where a command computes. */
final class ContextOptions {

    @Spec(Spec.Target.MIXEE)
    CommandSpec command;

    @Option(names = "--backend", paramLabel = "cpu|cuda|auto", defaultValue = "auto",
            description = "Where to compute (default: ${DEFAULT-VALUE}: CUDA when usable and its self-check against "
                    + "the CPU passes, else the CPU; cuda fails when the self-check does).")
    String backend;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "0",
            description = "CPU threads (default: every available core).")
    int threads;

    @Option(names = "--device", paramLabel = "INDEX", description = "CUDA device (default 0; with several "
            + "processes of one job on a machine, the process's local rank modulo the device count).")
    Integer device;

    Backend parsedBackend() {
        return switch (backend.toLowerCase(java.util.Locale.ROOT)) {
            case "cpu" -> Backend.CPU;
            case "cuda", "gpu" -> Backend.CUDA;
            case "auto" -> Backend.AUTO;
            default -> throw new IllegalArgumentException("--backend must be cpu, cuda or auto, not \"" + backend + "\"");
        };
    }

    /**
     * The context to compute in. A CUDA device first passes its self-check against the CPU: when it
     * does not, auto continues on the CPU after a one-line warning and cuda fails with the figures.
     */
    Context open(long seed) {
        return open(seed, null);
    }

    /**
     * As {@link #open(long)} for one process of a job: unless given, the CPU threads are the
     * machine's cores shared among the job's processes on it, and the device is the local rank.
     */
    Context open(long seed, Communicator comm) {
        Backend b = parsedBackend();
        int t = threads;
        int d = device != null ? device : 0;
        if (comm != null && comm.localSize() > 1) {
            t = t > 0 ? t : Math.max(1, Runtime.getRuntime().availableProcessors() / comm.localSize());
            int devices = b == Backend.CPU ? 0 : org.caejava.api.NativeLibrary.devices().size();
            d = device != null ? device : devices > 0 ? comm.localRank() % devices : 0;
        }
        Context ctx = Context.builder().backend(b).threads(t).device(b == Backend.CPU ? 0 : d).seed(seed).build();
        return CudaSelfCheck.verified(ctx, t, this::warn);
    }

    private void warn(String message) {
        PrintWriter err = command != null ? command.commandLine().getErr() : new PrintWriter(System.err, true);
        String name = command != null ? command.commandLine().getCommandName() : "cae";
        err.println("cae " + name + ": warning: " + message);
        err.flush();
    }
}
