package org.caejava.cli;

import java.util.concurrent.Callable;
import org.caejava.CaeConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code cae config}: print a preset's model configuration as JSON, a starting point for --config files. */
@Command(name = "config", mixinStandardHelpOptions = true,
        description = "Print the model configuration of a preset as JSON (official CAE argument names), or list the presets.")
final class ConfigCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(arity = "0..1", paramLabel = "PRESET", description = "A preset name; without it, the presets are listed.")
    String preset;

    @Option(names = "--pretty", description = "Indent the JSON.")
    boolean pretty;

    @Override
    public Integer call() throws Exception {
        var out = spec.commandLine().getOut();
        if (preset == null) {
            for (String name : CaeConfig.presetNames()) {
                CaeConfig c = CaeConfig.preset(name);
                out.printf("%-13s %3dx%-3d x%d  patch %-2d  width %-4d depth %-2d heads %-2d  regressor %d  decoder %d%n",
                        name, c.imgSize(), c.imgSize(), c.inChans(), c.patchSize(), c.embedDim(), c.depth(),
                        c.numHeads(), c.regressorDepth(), c.decoderDepth());
            }
        } else {
            String json = CaeConfig.preset(preset).toJson();
            if (pretty) {
                var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
                json = mapper.writerWithDefaultPrettyPrinter().writeValueAsString(mapper.readTree(json));
            }
            out.println(json);
        }
        out.flush();
        return 0;
    }
}
