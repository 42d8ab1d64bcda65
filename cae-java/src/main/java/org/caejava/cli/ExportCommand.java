package org.caejava.cli;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.api.ParamInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code cae export}: the encoder's weights alone, under the official names, for PyTorch. */
@Command(name = "export", mixinStandardHelpOptions = true,
        description = {"Write the encoder's weights of a checkpoint (F32, the official encoder.* names and shapes) "
                + "to a safetensors file, loadable with safetensors.torch.load_file.",
            "The model configuration travels in the file's metadata under \"config\"."})
public final class ExportCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--checkpoint", required = true, paramLabel = "C", description = "Model checkpoint (safetensors).")
    Path checkpoint;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "Where to write the encoder.")
    Path out;

    @Option(names = "--config", paramLabel = "FILE.json",
            description = "Model configuration for a checkpoint whose metadata has none.")
    Path config;

    @Override
    public Integer call() throws Exception {
        CaeConfig fallback = config == null ? null : CaeConfig.read(config);
        // Reading and writing weights needs no accelerator: a one-thread CPU context.
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
                CaeModel model = CaeModel.load(ctx, checkpoint, fallback)) {
            model.exportEncoder(out);
            long tensors = 0;
            long values = 0;
            for (ParamInfo p : model.parameters()) {
                if (p.name().startsWith("encoder.")) {
                    tensors++;
                    values += p.numel();
                }
            }
            PrintWriter pw = spec.commandLine().getOut();
            pw.printf("%d encoder tensors, %,d parameters (%.1f MB) -> %s%n", tensors, values,
                    Files.size(out) / 1e6, out);
            pw.flush();
        }
        return 0;
    }
}
