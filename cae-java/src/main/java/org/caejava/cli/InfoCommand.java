package org.caejava.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.caejava.api.Backend;
import org.caejava.api.BackendInfo;
import org.caejava.api.Communicator;
import org.caejava.api.Context;
import org.caejava.api.DeviceInfo;
import org.caejava.api.NativeLibrary;
import org.caejava.api.Precision;
import org.caejava.check.CudaSelfCheck;
import org.caejava.check.Figure;
import org.caejava.check.SelfCheckResult;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code cae info}: version, backends compiled in and usable, devices, library path, threads; with
 * {@code --check}, the self-check of every CUDA device against the CPU (exit code 1 when one fails).
 */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = {"Show the library build, the backends and why they are (not) usable, devices and threads.",
            "--check runs the self-check of each CUDA device against the CPU (a tiny model's losses, gradients, "
                + "AdamW step and features in fp32 and bf16) and prints its figures; exit code 1 when a device "
                + "disagrees."})
final class InfoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--json", description = "Print one JSON object instead of text.")
    boolean json;

    @Option(names = "--check", description = "Run the self-check of each CUDA device against the CPU and print "
            + "the figures.")
    boolean check;

    @Override
    public Integer call() throws Exception {
        ObjectMapper mapper = new ObjectMapper();
        ObjectNode info = mapper.createObjectNode();
        info.set("build", mapper.readTree(NativeLibrary.buildInfo()));
        info.put("library", NativeLibrary.load().toString());
        info.put("java", Runtime.version().toString());
        info.put("cpu_cores", Runtime.getRuntime().availableProcessors());
        ArrayNode backends = info.putArray("backends");
        for (Backend b : Backend.values()) {
            BackendInfo bi = NativeLibrary.backendInfo(b);
            backends.addObject().put("backend", b.name().toLowerCase()).put("compiled", bi.compiled())
                    .put("usable", bi.usable()).put("reason", bi.reason());
        }
        ArrayNode devices = info.putArray("devices");
        for (DeviceInfo d : NativeLibrary.devices()) {
            devices.addObject().put("index", d.index()).put("name", d.name()).put("total_memory", d.totalMemory())
                    .put("free_memory", d.freeMemory())
                    .put("compute_capability", d.computeMajor() + "." + d.computeMinor())
                    .put("multiprocessors", d.multiprocessors());
        }
        try (Communicator comm = Communicator.fromEnvironment()) {
            info.putObject("communicator").put("kind", comm.kind().name().toLowerCase()).put("rank", comm.rank())
                    .put("size", comm.size()).put("local_rank", comm.localRank()).put("local_size", comm.localSize())
                    .put("library", comm.library());
        }
        try (Context ctx = Context.create()) {
            info.put("default_context", ctx.description());
            info.put("default_threads", ctx.threads());
            info.put("default_precision", Precision.defaultFor(ctx.backend()).toString());
        }

        List<SelfCheckResult> checks = check ? selfChecks() : List.of();
        boolean allPassed = checks.stream().allMatch(SelfCheckResult::passed);
        if (check) {
            ArrayNode list = info.putArray("self_check");
            checks.forEach(r -> list.add(toJson(mapper, r)));
        }

        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(mapper.writeValueAsString(info));
            out.flush();
            return allPassed ? 0 : 1;
        }
        var build = info.get("build");
        out.printf("cae-java %s (ABI %s), %s%n", build.get("version").asText(), build.get("abi").asText(),
                build.get("compiler").asText());
        out.printf("library:  %s%n", info.get("library").asText());
        out.printf("java:     %s, %d CPU cores%n", info.get("java").asText(), info.get("cpu_cores").asInt());
        out.printf("GEMM:     %s; CUDA code %s%s%n", build.get("blas").asText(),
                build.get("cuda_compiled").asBoolean() ? "compiled for " : "not compiled",
                build.get("cuda_archs").asText());
        out.println("backends:");
        for (var b : backends) {
            out.printf("  %-5s %-12s %s%n", b.get("backend").asText(),
                    b.get("usable").asBoolean() ? "usable" : b.get("compiled").asBoolean() ? "not usable" : "not built",
                    b.get("reason").asText());
        }
        out.printf("devices:  %s%n", devices.isEmpty() ? "none" : "");
        for (var d : devices) {
            out.printf("  [%d] %s, %.1f GiB (%.1f free), compute %s, %d SMs%n", d.get("index").asInt(),
                    d.get("name").asText(), d.get("total_memory").asLong() / 1073741824.0,
                    d.get("free_memory").asLong() / 1073741824.0, d.get("compute_capability").asText(),
                    d.get("multiprocessors").asInt());
        }
        var comm = info.get("communicator");
        out.printf("ranks:    %s%n", comm.get("size").asInt() == 1
                ? "this process alone (under mpirun -np N or srun, pretrain trains data-parallel over MPI)"
                : "rank " + comm.get("rank").asInt() + " of " + comm.get("size").asInt() + " (local "
                        + comm.get("local_rank").asInt() + " of " + comm.get("local_size").asInt() + "), "
                        + comm.get("library").asText());
        out.printf("default:  %s; training steps at %s (--precision)%n", info.get("default_context").asText(),
                info.get("default_precision").asText());
        if (check) {
            if (checks.isEmpty()) {
                out.printf("self-check: no usable CUDA device, nothing to check (%s)%n",
                        NativeLibrary.backendInfo(Backend.CUDA).reason());
            }
            for (SelfCheckResult r : checks) {
                out.print(r.table());
                out.printf("  auto %s; cuda %s%n", r.passed() ? "computes on this device" : "computes on the CPU",
                        r.passed() ? "too" : "fails");
            }
        }
        out.flush();
        return allPassed ? 0 : 1;
    }

    /** The self-check of every CUDA device (none when CUDA is not usable). */
    private static List<SelfCheckResult> selfChecks() {
        if (!NativeLibrary.backendInfo(Backend.CUDA).usable()) {
            return List.of();
        }
        List<SelfCheckResult> results = new ArrayList<>();
        for (DeviceInfo d : NativeLibrary.devices()) {
            Context ctx;
            try {
                ctx = Context.builder().backend(Backend.CUDA).device(d.index()).build();
            } catch (RuntimeException e) {
                results.add(SelfCheckResult.failed("CUDA device " + d.index() + " (" + d.name() + ")", List.of(),
                        "creating a context: " + e.getMessage(), 0));
                continue;
            }
            try (ctx) {
                results.add(CudaSelfCheck.of(ctx));
            }
        }
        return results;
    }

    private static ObjectNode toJson(ObjectMapper mapper, SelfCheckResult r) {
        ObjectNode o = mapper.createObjectNode().put("device", r.device()).put("passed", r.passed())
                .put("seconds", r.seconds());
        o.put("error", r.error());
        o.put("skipped", r.skipped());
        ArrayNode figures = o.putArray("figures");
        for (Figure f : r.figures()) {
            figures.addObject().put("name", f.name()).put("cuda", f.cuda()).put("cpu", f.cpu())
                    .put("relative", f.error()).put("tolerance", f.tolerance()).put("passed", f.passed());
        }
        return o;
    }
}
