package org.caejava.cli;

import java.io.PrintWriter;
import picocli.AutoComplete;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code cae} command line. Exit codes: 0 ok, 1 failed, 2 bad usage. {@code cae
 * generate-completion} prints a bash/zsh completion script for it.
 */
@Command(name = "cae", mixinStandardHelpOptions = true, versionProvider = CaeCli.Version.class,
        description = "Context Autoencoder (CAE) pretraining of Vision Transformers, from Java.",
        subcommands = {PretrainCommand.class, ProbeCommand.class, ExportCommand.class, PrepareCommand.class,
            InfoCommand.class, ConfigCommand.class, GradCommand.class, BenchCommand.class,
            CommandLine.HelpCommand.class, AutoComplete.GenerateCompletion.class})
public final class CaeCli implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    public static void main(String[] args) {
        System.exit(execute(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the CLI with the given output streams and returns its exit code. */
    public static int execute(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine cli = new CommandLine(new CaeCli());
        cli.setOut(out);
        cli.setErr(err);
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            commandLine.getErr().println("cae " + commandLine.getCommandName() + ": " + e.getMessage());
            if (e.getCause() != null && e.getCause().getMessage() != null) {
                commandLine.getErr().println("  caused by: " + e.getCause().getMessage());
            }
            return 1;
        });
        return cli.execute(args);
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            Package p = CaeCli.class.getPackage();
            String v = p.getImplementationVersion();
            return new String[] {"cae-java " + (v == null ? "(development build)" : v)};
        }
    }
}
