package org.caejava.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.caejava.io.SafetensorsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An official-layout PyTorch checkpoint ({@code tests/reference/official/official_tiny.pth}: the
 * reference model's state dict under "model" with DistributedDataParallel's "module." prefix,
 * optimizer state, epoch and the training args, written by torch.save) converts with
 * {@code scripts/pth_to_safetensors.py} (here without PyTorch: the script reads the archive
 * itself) to exactly the reference's parameters, which the CLI then probes and exports.
 */
class PthConversionTest {

    static final Path OFFICIAL = CliEndToEndTest.ROOT.resolve("tests/reference/official");

    @TempDir
    Path dir;

    @Test
    void anOfficialCheckpointConvertsToTheReferenceParametersAndProbes() throws Exception {
        Path converted = dir.resolve("converted.safetensors");
        Path log = dir.resolve("convert.log");
        Process p = new ProcessBuilder("python3", CliEndToEndTest.ROOT.resolve("scripts/pth_to_safetensors.py").toString(),
                OFFICIAL.resolve("official_tiny.pth").toString(), converted.toString(), "--config",
                OFFICIAL.resolve("official_tiny.json").toString()).redirectErrorStream(true).redirectOutput(log.toFile())
                .start();
        assertTrue(p.waitFor(2, TimeUnit.MINUTES));
        String out = Files.readString(log);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("tensors from"), out);

        int compared = 0;
        try (SafetensorsFile want = SafetensorsFile.open(OFFICIAL.resolve("official_tiny.pth.safetensors"));
                SafetensorsFile got = SafetensorsFile.open(converted)) {
            for (SafetensorsFile.Entry e : want.entries()) {
                assertTrue(got.contains(e.name()), "converted file lacks " + e.name());
                assertArrayEquals(want.floats(e.name(), e.shape()), got.floats(e.name(), e.shape()), 0f, e.name());
                compared++;
            }
            assertTrue(got.metadata().get("config").contains("\"embed_dim\""), got.metadata().toString());
        }
        assertTrue(compared > 20, compared + " tensors");

        CliEndToEndTest.Run probe = CliEndToEndTest.run(dir.resolve("probe.log"), "probe", "--checkpoint",
                converted.toString(), "--probe-train", "300", "--probe-test", "100", "--threads", "1");
        assertEquals(0, probe.exit(), probe.output());
        assertTrue(probe.output().contains("pretrained"), probe.output());
        CliEndToEndTest.Run export = CliEndToEndTest.run(dir.resolve("export.log"), "export", "--checkpoint",
                converted.toString(), "--out", dir.resolve("encoder.safetensors").toString());
        assertEquals(0, export.exit(), export.output());
    }
}
