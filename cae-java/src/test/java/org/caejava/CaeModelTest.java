package org.caejava;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.api.DType;
import org.caejava.api.ParamInfo;
import org.caejava.api.Tensor;
import org.caejava.data.TensorDataset;
import org.caejava.io.SafetensorsException;
import org.caejava.io.SafetensorsFile;
import org.caejava.io.SafetensorsWriter;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CaeModelTest {

    static final CaeConfig TINY = CaeConfig.preset("fmnist-tiny").toBuilder().imgSize(16).embedDim(32).depth(2)
            .numHeads(2).regressorDepth(1).decoderDepth(1).decoderNumHeads(2).build();

    static Context ctx;

    @TempDir
    Path dir;

    @BeforeAll
    static void open() {
        ctx = Context.builder().backend(Backend.CPU).threads(2).build();
    }

    @AfterAll
    static void close() {
        ctx.close();
    }

    static Tensor randomImages(Arena arena, int n, CaeConfig c, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n * c.inChans() * c.imgSize() * c.imgSize()];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return Tensor.of(arena, x, n, c.inChans(), c.imgSize(), c.imgSize());
    }

    @Test
    void parametersCarryTheOfficialNames() {
        try (CaeModel m = CaeModel.create(ctx, TINY, 1)) {
            List<String> names = m.parameters().stream().map(ParamInfo::name).toList();
            assertEquals("rd_pos_embed", names.get(0));
            assertEquals("mask_token", names.get(1));
            assertTrue(names.contains("encoder.blocks.1.attn.qkv.weight"));
            assertTrue(names.contains("regresser.regressor_blocks.0.cross_attn.k.weight"));
            assertTrue(names.contains("decoder.decoder_blocks.0.mlp.fc2.bias"));
            assertEquals("decoder.head.bias", names.get(names.size() - 1));
            assertEquals(16, m.parameter("decoder.head.bias").length, "head: 4x4x1 pixels per patch");
        }
    }

    @Test
    void checkpointsRoundTripWeightsMomentsAndState() throws IOException {
        Path file = dir.resolve("ckpt.safetensors");
        float[] before;
        try (Arena arena = Arena.ofConfined()) {
            Tensor images = randomImages(arena, 16, TINY, 3);
            try (CaeModel m = CaeTrainer.builder().context(ctx).config(TINY).data(TensorDataset.of(images)).steps(3)
                    .batchSize(8).seed(9).build().fit()) {
                m.save(file);
                before = m.parameter("encoder.blocks.0.mlp.fc1.weight");
                assertEquals(new TrainingState(3, 1, 3, 9), m.state());
            }
        }
        try (CaeModel loaded = CaeModel.load(ctx, file); SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(TINY, loaded.config());
            assertEquals(new TrainingState(3, 1, 3, 9), loaded.state());
            assertArrayEquals(before, loaded.parameter("encoder.blocks.0.mlp.fc1.weight"));
            assertEquals(CaeModel.FORMAT, f.metadata().get("format"));
            assertTrue(f.contains("optimizer.exp_avg.encoder.cls_token"));
            assertTrue(f.contains("optimizer.exp_avg_sq.decoder.head.weight"));
            float[] m2 = f.floats("optimizer.exp_avg_sq.decoder.head.weight");
            assertTrue(m2[0] > 0, "second moments were written");
        }
    }

    @Test
    void aConfigurationInTheMetadataWithTheOfficialNamesLoadsAndABadOneIsOneLine() throws IOException {
        Path saved = dir.resolve("saved.safetensors");
        try (CaeModel m = CaeModel.create(ctx, TINY, 3)) {
            m.save(saved);
        }
        // The official names only: decoder_embed_dim and the eps values left to their defaults.
        String official = TINY.toJson().replace(",\"decoder_embed_dim\":32", "").replace(",\"layer_norm_eps\":1.0E-6", "")
                .replace(",\"norm_pix_eps\":1.0E-6", "");
        Path file = dir.resolve("official-config.safetensors");
        withConfig(saved, official, file);
        try (CaeModel m = CaeModel.load(ctx, file)) {
            assertEquals(TINY, m.config());
        }
        withConfig(saved, official.replace("\"depth\"", "\"detph\""), file);
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> CaeModel.load(ctx, file));
        assertEquals("model configuration (checkpoint metadata of " + file + "): unknown key \"detph\" (value 2); "
                + "the closest known key is \"depth\"", e.getMessage());
        withConfig(saved, official.replace("\"patch_size\":4,", ""), file);
        e = assertThrows(SafetensorsException.class, () -> CaeModel.load(ctx, file));
        assertEquals("model configuration (checkpoint metadata of " + file + "): required key \"patch_size\" is "
                + "missing (required: img_size, patch_size, embed_dim, depth, num_heads)", e.getMessage());
    }

    /** Writes {@code from}'s tensors to {@code to} with {@code config} as the metadata's configuration. */
    private static void withConfig(Path from, String config, Path to) throws IOException {
        try (SafetensorsFile in = SafetensorsFile.open(from)) {
            SafetensorsWriter w = new SafetensorsWriter().metadata("config", config);
            for (var e : in.entries()) {
                w.addFloats(e.name(), e.shape(), in.floats(e.name()));
            }
            w.write(to);
        }
    }

    @Test
    void theOfficialParameterSetAloneLoadsWithAConfiguration() throws IOException {
        Path official = dir.resolve("official.safetensors");
        float[] qkv;
        try (CaeModel m = CaeModel.create(ctx, TINY, 5)) {
            SafetensorsWriter w = new SafetensorsWriter();
            for (ParamInfo p : m.parameters()) {
                w.addFloats(p.name(), p.shape(), m.parameter(p.name()));
            }
            w.write(official);
            qkv = m.parameter("encoder.blocks.1.attn.qkv.weight");
        }
        SafetensorsException noConfig = assertThrows(SafetensorsException.class, () -> CaeModel.load(ctx, official));
        assertTrue(noConfig.getMessage().contains("no model configuration"), noConfig.getMessage());
        try (CaeModel m = CaeModel.load(ctx, official, TINY)) {
            assertArrayEquals(qkv, m.parameter("encoder.blocks.1.attn.qkv.weight"));
            assertEquals(TrainingState.INITIAL, m.state());
        }
    }

    @Test
    void wrongCheckpointsAreRefusedByName() throws IOException {
        Path wrong = dir.resolve("wrong.safetensors");
        try (CaeModel m = CaeModel.create(ctx, TINY, 5)) {
            SafetensorsWriter w = new SafetensorsWriter().metadata("config", TINY.toJson());
            for (ParamInfo p : m.parameters()) {
                if (!p.name().equals("encoder.norm.bias")) {
                    long[] shape = p.name().equals("mask_token") ? new long[] {1, 32, 1} : p.shape();
                    w.addFloats(p.name(), shape, new float[(int) p.numel()]);
                }
            }
            w.addFloats("teacher.cls_token", new long[] {1}, new float[1]);
            w.write(wrong);
        }
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> CaeModel.load(ctx, wrong));
        assertTrue(e.getMessage().contains("mask_token") && e.getMessage().contains("[1, 32, 1]"), e.getMessage());
    }

    @Test
    void encodeGivesFeaturesPerImage() {
        try (CaeModel m = CaeModel.create(ctx, TINY, 2); Arena arena = Arena.ofConfined()) {
            Tensor images = randomImages(arena, 3, TINY, 1);
            Features f = m.encode(images, arena);
            assertArrayEquals(new long[] {3, 32}, f.cls().shape());
            Features one = m.encode(images.slice(1, 2), arena);
            float[] all = f.mean().toFloatArray();
            float[] single = one.mean().toFloatArray();
            for (int d = 0; d < 32; d++) {
                assertEquals(all[32 + d], single[d], 1e-5f);
            }
        }
    }

    @Test
    void resumeContinuesBitForBit() throws IOException {
        Path file = dir.resolve("resume.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            TensorDataset data = TensorDataset.of(randomImages(arena, 20, TINY, 8));
            List<Float> straight = new ArrayList<>();
            try (CaeModel m = trainer(data, 6, straight).checkpoint(file, 3).build().fit()) {
                assertEquals(6, m.state().step());
            }
            // The checkpoint at step 6 overwrote the one at step 3: make a fresh step-3 checkpoint.
            try (CaeModel m = trainer(data, 3, new ArrayList<>()).checkpoint(file, 0).build().fit()) {
                assertEquals(3, m.state().step());
            }
            List<Float> resumed = new ArrayList<>();
            try (CaeModel m = CaeModel.load(ctx, file)) {
                CaeTrainer.builder().model(m).data(data).steps(6).batchSize(8).learningRate(2e-3).warmupSteps(2)
                        .listener(s -> resumed.add(s.loss())).build().fit();
            }
            assertEquals(straight.subList(3, 6), resumed, "losses of steps 4-6 after a resume equal the straight run's");
        }
    }

    private static CaeTrainer.Builder trainer(TensorDataset data, long steps, List<Float> losses) {
        return CaeTrainer.builder().context(ctx).config(TINY).data(data).steps(steps).batchSize(8).seed(4)
                .learningRate(2e-3).warmupSteps(2).listener(s -> losses.add(s.loss()));
    }

    @Test
    void trainerChecksTheDataAgainstTheModel() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor rgb = Tensor.allocate(arena, DType.F32, 10, 3, 16, 16);
            var e = assertThrows(IllegalArgumentException.class, () -> CaeTrainer.builder().context(ctx).config(TINY)
                    .data(TensorDataset.of(rgb)).batchSize(4).build().fit());
            assertTrue(e.getMessage().contains("3x16x16"), e.getMessage());
            var small = assertThrows(IllegalArgumentException.class, () -> CaeTrainer.builder().context(ctx)
                    .config(TINY).data(TensorDataset.of(randomImages(arena, 3, TINY, 1))).batchSize(4).build().fit());
            assertTrue(small.getMessage().contains("fewer than one batch"), small.getMessage());
        }
    }
}
