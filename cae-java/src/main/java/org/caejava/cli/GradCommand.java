package org.caejava.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.Context;
import org.caejava.api.ParamInfo;
import org.caejava.api.Precision;
import org.caejava.api.Slot;
import org.caejava.api.StepResult;
import org.caejava.io.SafetensorsFile;
import org.caejava.io.SafetensorsWriter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code cae grad}: losses and gradients of one batch, for checking numerics against PyTorch. */
@Command(name = "grad", mixinStandardHelpOptions = true,
        description = {"Compute the losses and every trainable parameter's gradient on one batch (no update, no "
                + "stochastic depth) and write them to a safetensors file.",
            "IN holds 'images' F32 [B, C, H, W] (normalized) and 'mask' U8 [B, N] (1 = masked, the same count "
                + "in every row). OUT gets F32 scalars 'loss', 'loss_main', 'loss_align' and each gradient under "
                + "its parameter's official name."})
final class GradCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--checkpoint", required = true, paramLabel = "C", description = "Model checkpoint (safetensors).")
    Path checkpoint;

    @Option(names = "--batch", required = true, paramLabel = "IN", description = "Batch (safetensors).")
    Path batch;

    @Option(names = "--out", required = true, paramLabel = "OUT", description = "Where to write the gradients.")
    Path out;

    @Option(names = "--config", paramLabel = "FILE.json",
            description = "Model configuration for a checkpoint whose metadata has none.")
    Path config;

    @Option(names = "--json", description = "Print the losses as one JSON object.")
    boolean json;

    @Option(names = "--precision", paramLabel = "fp32|bf16", defaultValue = "fp32",
            description = "Matrix products of the linear layers (default ${DEFAULT-VALUE}, the reference; bf16 rounds "
                    + "their operands to bfloat16 and sums in fp32, as a bf16 training step does).")
    String precision;

    @Mixin
    ContextOptions where = new ContextOptions();

    @Override
    public Integer call() throws Exception {
        Precision at;
        try {
            at = Precision.parse(precision);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--precision must be fp32 or bf16, not \"" + precision
                    + "\"");
        }
        CaeConfig fallback = config == null ? null : CaeConfig.read(config);
        PrintWriter pw = spec.commandLine().getOut();
        try (Context ctx = where.open(0); CaeModel model = CaeModel.load(ctx, checkpoint, fallback);
                SafetensorsFile in = SafetensorsFile.open(batch)) {
            StepResult r = model.computeGradients(in.tensor("images"), in.tensor("mask"), at);
            SafetensorsWriter w = new SafetensorsWriter().metadata("format", "cae-java/grad").metadata("precision",
                    at.toString()).metadata("backend", ctx.description())
                    .metadata("checkpoint", checkpoint.toString()).metadata("config", model.config().toJson());
            w.addFloats("loss", new long[0], new float[] {r.loss()});
            w.addFloats("loss_main", new long[0], new float[] {r.lossMain()});
            w.addFloats("loss_align", new long[0], new float[] {r.lossAlign()});
            for (ParamInfo p : model.parameters()) {
                if (p.trainable()) {
                    w.addFloats(p.name(), p.shape(), () -> model.values(p.name(), Slot.GRAD));
                }
            }
            w.write(out);
            if (json) {
                pw.printf("{\"loss\":%s,\"loss_main\":%s,\"loss_align\":%s,\"grad_norm\":%s,\"out\":\"%s\"}%n",
                        r.loss(), r.lossMain(), r.lossAlign(), r.gradNorm(), out);
            } else {
                pw.printf("loss %.7g (main %.7g, align %.7g), gradient norm %.7g -> %s%n", r.loss(), r.lossMain(),
                        r.lossAlign(), r.gradNorm(), out);
            }
            pw.flush();
        }
        return 0;
    }
}
