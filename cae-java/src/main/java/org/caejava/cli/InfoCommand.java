package org.caejava.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import org.caejava.api.Backend;
import org.caejava.api.BackendInfo;
import org.caejava.api.Context;
import org.caejava.api.DeviceInfo;
import org.caejava.api.NativeLibrary;
import org.caejava.api.Precision;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code cae info}: version, backends compiled in and usable, devices, library path, threads. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Show the library build, the backends and why they are (not) usable, devices and threads.")
final class InfoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--json", description = "Print one JSON object instead of text.")
    boolean json;

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
        try (Context ctx = Context.create()) {
            info.put("default_context", ctx.description());
            info.put("default_threads", ctx.threads());
            info.put("default_precision", Precision.defaultFor(ctx.backend()).toString());
        }

        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(mapper.writeValueAsString(info));
            return 0;
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
        out.printf("default:  %s; training steps at %s (--precision)%n", info.get("default_context").asText(),
                info.get("default_precision").asText());
        out.flush();
        return 0;
    }
}
