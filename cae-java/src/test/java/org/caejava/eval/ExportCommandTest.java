package org.caejava.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.api.ParamInfo;
import org.caejava.cli.ExportCommand;
import org.caejava.io.SafetensorsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ExportCommandTest {

    @TempDir
    Path dir;

    @Test
    void theExportHoldsExactlyTheEncoderTensorsWithTheirShapesAndValues() throws Exception {
        CaeConfig cfg = ProbeReportTest.TINY;
        Path ckpt = dir.resolve("model.safetensors");
        Path out = dir.resolve("encoder.safetensors");
        Map<String, long[]> expected = new TreeMap<>();
        float[] qkv;
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
                CaeModel m = CaeModel.create(ctx, cfg, 3)) {
            m.save(ckpt);
            for (ParamInfo p : m.parameters()) {
                if (p.name().startsWith("encoder.")) {
                    expected.put(p.name(), p.shape());
                }
            }
            qkv = m.parameter("encoder.blocks.1.attn.qkv.weight");
        }
        CommandLine cli = new CommandLine(new ExportCommand());
        java.io.StringWriter text = new java.io.StringWriter();
        cli.setOut(new java.io.PrintWriter(text));
        int exit = cli.execute("--checkpoint", ckpt.toString(), "--out", out.toString());
        assertEquals(0, exit);
        assertTrue(text.toString().startsWith(expected.size() + " encoder tensors"), text.toString());
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            Map<String, long[]> got = new TreeMap<>();
            for (SafetensorsFile.Entry e : f.entries()) {
                assertEquals("F32", e.dtype(), e.name());
                got.put(e.name(), e.shape());
            }
            assertEquals(expected.keySet(), got.keySet(), "exactly the encoder.* tensors");
            for (String name : expected.keySet()) {
                assertArrayEquals(expected.get(name), got.get(name), name);
            }
            // The official shapes of this 32-wide, depth-2, 16x16 patch-4 grayscale encoder.
            int d = cfg.embedDim();
            int n = cfg.numPatches() + 1;
            assertArrayEquals(new long[] {1, 1, d}, got.get("encoder.cls_token"));
            assertArrayEquals(new long[] {1, n, d}, got.get("encoder.pos_embed"));
            assertArrayEquals(new long[] {d, 1, 4, 4}, got.get("encoder.patch_embed.proj.weight"));
            assertArrayEquals(new long[] {3L * d, d}, got.get("encoder.blocks.1.attn.qkv.weight"));
            assertArrayEquals(new long[] {4L * d, d}, got.get("encoder.blocks.0.mlp.fc1.weight"));
            assertArrayEquals(new long[] {d}, got.get("encoder.norm.bias"));
            assertTrue(got.keySet().stream().noneMatch(k -> k.startsWith("encoder.blocks.2.")), "depth 2");
            assertArrayEquals(qkv, f.floats("encoder.blocks.1.attn.qkv.weight"));
            assertEquals(cfg, CaeConfig.fromJson(f.metadata().get("config")));
        }
    }
}
