package org.caejava.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Objects;
import java.util.concurrent.Callable;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.Context;
import org.caejava.data.Dataset;
import org.caejava.eval.Lbfgs;
import org.caejava.eval.ProbeOptions;
import org.caejava.eval.ProbeReport;
import org.caejava.eval.ProbeResult;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code cae probe}: k-NN and linear-probe accuracy of a checkpoint's encoder against a randomly
 * initialized encoder of the same configuration and raw pixels.
 *
 * <p>Where the labeled data comes from is pluggable: the command asks its {@link #data} function
 * for {@code [train, test]} given the {@code --data} path, or {@code null} when no path was given
 * (the default data set). The default function knows no data and fails with "no data given".
 * Both splits must be normalized alike, best as in pretraining. Splits that are {@link
 * AutoCloseable} are closed when the command ends.
 */
@Command(name = "probe", mixinStandardHelpOptions = true,
        description = {"Evaluate a checkpoint's frozen encoder on labeled data: k-NN (k = 20) and a linear probe "
                + "(softmax regression by L-BFGS) on standardized [cls ; mean patch token] features (and on each alone), "
                + "next to a randomly initialized encoder of the same configuration and raw pixels.",
            "Prints a table, or the probe.json object with --json."})
public final class ProbeCommand implements Callable<Integer> {

    /** A train and a test split, and what to close when done (may be null). */
    public record Split(Dataset train, Dataset test, AutoCloseable resources) {}

    /** Resolves {@code --data} (null: the default data) for a model configuration. */
    @FunctionalInterface
    public interface DataResolver {
        Split open(Path data, CaeConfig config) throws IOException;
    }

    /** The default: {@code --data} or Fashion-MNIST, at the model's image size, test with train's normalization. */
    static final DataResolver SPLITS = (path, config) -> {
        DataSplits d = DataSplits.open(path, config, null);
        if (d.test() == null) {
            d.close();
            throw new IllegalArgumentException((path == null ? "the data" : path)
                    + " has no test/val split to score the probe on");
        }
        return new Split(d.train(), d.test(), d);
    };

    @Spec
    CommandSpec spec;

    @Option(names = "--checkpoint", required = true, paramLabel = "C", description = "Model checkpoint (safetensors).")
    Path checkpoint;

    @Option(names = "--config", paramLabel = "FILE.json",
            description = "Model configuration for a checkpoint whose metadata has none.")
    Path config;

    @Option(names = "--data", paramLabel = "DIR", description = "Labeled data with a train and a test split "
            + "(default: the built-in data set, when there is one).")
    Path dataPath;

    @Option(names = "--probe-train", paramLabel = "N", defaultValue = "0",
            description = "At most N labeled training images fit the probe, a seeded random subset (default: all).")
    long probeTrain;

    @Option(names = "--probe-test", paramLabel = "N", defaultValue = "0",
            description = "At most N test images score it, a seeded random subset (default: all).")
    long probeTest;

    @Option(names = "--k", paramLabel = "K", defaultValue = "20", description = "Neighbours of the k-NN vote "
            + "(default: ${DEFAULT-VALUE}).")
    int k;

    @Option(names = "--l2", paramLabel = "L", defaultValue = "1e-4",
            description = "L2 penalty of the linear probe on its weights (default: ${DEFAULT-VALUE}).")
    double l2;

    @Option(names = "--max-iterations", paramLabel = "N", defaultValue = "3000",
            description = "L-BFGS iterations at most; it stops earlier at --tolerance (default: ${DEFAULT-VALUE}).")
    int maxIterations;

    @Option(names = "--tolerance", paramLabel = "T", defaultValue = "1e-4",
            description = "L-BFGS stops when the gradient norm falls below T x max(1, initial) (default: "
                    + "${DEFAULT-VALUE}).")
    double tolerance;

    @Option(names = "--seed", paramLabel = "S", description = "Seed of the randomly initialized encoder "
            + "(default: the checkpoint's run seed, i.e. the pretraining's own starting point).")
    Long randomSeed;

    @Option(names = "--batch", paramLabel = "B", defaultValue = "256",
            description = "Images per encoder call (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--out", paramLabel = "FILE", description = "Also write the result to FILE (probe.json).")
    Path out;

    @Option(names = "--json", description = "Print the probe.json object instead of the table.")
    boolean json;

    @Option(names = "--quiet", description = "No progress lines on stderr.")
    boolean quiet;

    @Mixin
    ContextOptions where = new ContextOptions();

    private DataResolver data;

    public ProbeCommand() {
        this(SPLITS);
    }

    /** A command that resolves its data with {@code data} ({@code --data} path, or null for the default). */
    public ProbeCommand(DataResolver data) {
        this.data = Objects.requireNonNull(data, "data");
    }

    /** Sets how {@code --data} (or its absence, as null) becomes {@code [train, test]}. */
    public ProbeCommand data(DataResolver v) {
        data = Objects.requireNonNull(v, "data");
        return this;
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter err = spec.commandLine().getErr();
        Lbfgs lbfgs = Lbfgs.defaults();
        ProbeOptions options = ProbeOptions.defaults().withK(k).withL2(l2).withBatchSize(batch)
                .withOptimizer(new Lbfgs(lbfgs.memory(), tolerance, maxIterations))
                .withLimits(probeTrain, probeTest)
                .withRandomInitSeed(randomSeed).withLog(quiet ? null : line -> {
                    err.println(line);
                    err.flush();
                });
        CaeConfig fallback = config == null ? null : CaeConfig.read(config);
        ProbeResult r;
        try (Context ctx = where.open(0); CaeModel model = CaeModel.load(ctx, checkpoint, fallback)) {
            Split split = data.open(dataPath, model.config());
            try {
                if (split == null || split.train() == null || split.test() == null) {
                    throw new IllegalStateException("the data " + (dataPath == null ? "(default)" : dataPath)
                            + " did not resolve to a train and a test split");
                }
                r = ProbeReport.run(model, split.train(), split.test(), options);
            } finally {
                if (split != null && split.resources() != null) {
                    split.resources().close();
                }
            }
        }
        if (out != null) {
            r.write(out);
        }
        PrintWriter pw = spec.commandLine().getOut();
        if (json) {
            pw.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(r.toJson()));
        } else {
            pw.print(r.toTable());
        }
        pw.flush();
        return 0;
    }
}
