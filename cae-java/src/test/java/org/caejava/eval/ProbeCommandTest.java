package org.caejava.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.caejava.CaeModel;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.cli.ProbeCommand;
import org.caejava.data.TensorDataset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ProbeCommandTest {

    @TempDir
    Path dir;

    record Run(int exit, String out, String err) {}

    static Run run(ProbeCommand command, String... args) {
        CommandLine cli = new CommandLine(command);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out));
        cli.setErr(new PrintWriter(err));
        int exit = cli.execute(args);
        return new Run(exit, out.toString(), err.toString());
    }

    private Path checkpoint(long seed) throws Exception {
        Path file = dir.resolve("model.safetensors");
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
                CaeModel m = CaeModel.create(ctx, ProbeReportTest.TINY, seed)) {
            m.save(file);
        }
        return file;
    }

    @Test
    void theTableAndTheJsonComeFromThePluggedData() throws Exception {
        Path ckpt = checkpoint(7);
        try (Arena arena = Arena.ofShared()) {
            TensorDataset train = ProbeReportTest.bars(arena, 90, 1);
            TensorDataset test = ProbeReportTest.bars(arena, 30, 2);
            List<Path> asked = new ArrayList<>();
            ProbeCommand cmd = new ProbeCommand((path, config) -> {
                asked.add(path);
                return new ProbeCommand.Split(train, test, null);
            });
            Path out = dir.resolve("probe.json");
            Run r = run(cmd, "--checkpoint", ckpt.toString(), "--backend", "cpu", "--threads", "2", "--k", "5",
                    "--probe-train", "60", "--out", out.toString());
            assertEquals(0, r.exit(), r.err());
            assertEquals(1, asked.size());
            assertNull(asked.get(0), "no --data: the default data (null path)");
            assertTrue(r.out().contains("k-NN (k=5)") && r.out().contains("raw pixels"), r.out());
            assertTrue(r.err().contains("encoding with the pretrained model"), "progress on stderr: " + r.err());
            ProbeResult written = ProbeResult.read(out);
            assertEquals(60, written.trainSize());
            assertEquals(7, written.randomInitSeed(), "the checkpoint's run seed");

            Run j = run(new ProbeCommand((path, config) -> new ProbeCommand.Split(train, test, null)),
                    "--checkpoint", ckpt.toString(),
                    "--backend", "cpu", "--json", "--quiet", "--data", dir.toString(), "--seed", "11");
            assertEquals(0, j.exit(), j.err());
            assertEquals("", j.err());
            JsonNode json = new ObjectMapper().readTree(j.out());
            assertEquals(90, json.get("train_size").asInt());
            assertEquals(11, json.get("random_init").get("seed").asInt());
            double knn = json.get("pretrained").get("knn").asDouble();
            assertTrue(knn >= 0 && knn <= 1);
        }
    }

    @Test
    void missingDataIsNamedInOneLine() throws Exception {
        Path ckpt = checkpoint(1);
        Path nowhere = dir.resolve("no-such-folder");
        Run r = run(new ProbeCommand(), "--checkpoint", ckpt.toString(), "--backend", "cpu", "--data",
                nowhere.toString());
        assertTrue(r.exit() != 0);
        assertTrue(r.err().contains(nowhere.toString()), r.err());
        assertTrue(Files.exists(ckpt));
    }
}
