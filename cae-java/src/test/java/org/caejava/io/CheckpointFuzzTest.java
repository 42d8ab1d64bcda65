package org.caejava.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.UnaryOperator;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.Backend;
import org.caejava.api.CaeException;
import org.caejava.api.Context;
import org.caejava.api.ParamInfo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Generative test of {@link CaeModel#load}: mutations of a real checkpoint of a tiny model, those
 * of {@link SafetensorsMutator} plus ones of the model configuration in its metadata (fields out of
 * range, of other types, inconsistent: heads that do not divide the width, a patch that does not
 * divide the image, a model far larger than the file) and of the training state. Each either loads,
 * and then the model holds the file's configuration and values, or is refused with a
 * {@link SafetensorsException} or {@link CaeException} naming the file.
 */
class CheckpointFuzzTest {

    static final int TRIES = 1500;
    static final long SEED = 0xC0FFEE_CAEL;

    /** 8x8 gray images, patch 4 (4 patches), 8 wide: a checkpoint of about 30 KB. */
    static final CaeConfig TINY = CaeConfig.preset("fmnist-tiny").toBuilder().imgSize(8).patchSize(4).embedDim(8)
            .depth(1).numHeads(2).regressorDepth(1).decoderDepth(1).decoderNumHeads(2).build();

    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final List<String> INT_FIELDS = List.of("img_size", "patch_size", "in_chans", "embed_dim", "depth",
            "num_heads", "regressor_depth", "decoder_depth", "decoder_num_heads", "decoder_embed_dim");
    private static final List<String> REAL_FIELDS = List.of("mlp_ratio", "layer_scale_init_value",
            "decoder_layer_scale_init_value", "align_loss_weight", "drop_path_rate", "layer_norm_eps", "norm_pix_eps");

    static Context ctx;

    @TempDir
    Path dir;

    @BeforeAll
    static void open() {
        ctx = Context.builder().backend(Backend.CPU).threads(1).build();
    }

    @AfterAll
    static void close() {
        ctx.close();
    }

    /** Mutations of {@code __metadata__.config} and of the training state's numbers. */
    static List<UnaryOperator<ObjectNode>> configMutations(Random random, Mutator log) {
        List<UnaryOperator<ObjectNode>> list = new ArrayList<>();
        list.add(root -> {
            ObjectNode meta = (ObjectNode) root.get("__metadata__");
            ObjectNode config;
            try {
                config = (ObjectNode) SafetensorsMutator.JSON.readTree(meta.get("config").asText());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            mutateConfig(config, random, log);
            meta.put("config", config.toString());
            return root;
        });
        list.add(root -> {
            ObjectNode meta = (ObjectNode) root.get("__metadata__");
            String v = switch (random.nextInt(9)) {
                case 0 -> "";
                case 1 -> "{";
                case 2 -> "null";
                case 3 -> "[]";
                case 4 -> "{}";
                case 5 -> "1";
                case 6 -> "\"config\"";
                case 7 -> meta.get("config").asText() + "x";
                default -> meta.get("config").asText().replace("}", ",\"unknown\":1}");
            };
            meta.put("config", v);
            log.note("config = " + v);
            return root;
        });
        list.add(root -> {
            ObjectNode meta = (ObjectNode) root.get("__metadata__");
            String k = List.of("step", "epoch", "optimizer_steps", "seed", "format").get(random.nextInt(5));
            String v = List.of("", "abc", "-5", "1e3", "99999999999999999999", "0x10", " 7", "9223372036854775807")
                    .get(random.nextInt(8));
            meta.put(k, v);
            log.note(k + " = \"" + v + "\"");
            return root;
        });
        list.add(root -> {
            ObjectNode meta = (ObjectNode) root.get("__metadata__");
            String k = random.nextBoolean() ? "config" : "step";
            meta.remove(k);
            log.note("no " + k + " in the metadata");
            return root;
        });
        return list;
    }

    private static void mutateConfig(ObjectNode config, Random random, Mutator log) {
        switch (random.nextInt(6)) {
            case 0, 1 -> {
                String f = INT_FIELDS.get(random.nextInt(INT_FIELDS.size()));
                JsonNode v = switch (random.nextInt(12)) {
                    case 0 -> NODES.numberNode(0);
                    case 1 -> NODES.numberNode(-1);
                    case 2 -> NODES.numberNode(3);
                    case 3 -> NODES.numberNode(1 << 20);
                    case 4 -> NODES.numberNode(Integer.MAX_VALUE);
                    case 5 -> NODES.numberNode(1L << 31);
                    case 6 -> NODES.textNode("8");
                    case 7 -> NODES.numberNode(8.5);
                    case 8 -> NODES.nullNode();
                    case 9 -> NODES.numberNode(16);
                    case 10 -> NODES.numberNode(1 + random.nextInt(64));
                    default -> NODES.numberNode(1e10);
                };
                config.set(f, v);
                log.note("config." + f + " = " + v);
            }
            case 2 -> {
                String f = REAL_FIELDS.get(random.nextInt(REAL_FIELDS.size()));
                JsonNode v = switch (random.nextInt(6)) {
                    case 0 -> NODES.numberNode(0.0);
                    case 1 -> NODES.numberNode(-1.0);
                    case 2 -> NODES.numberNode(1e300);
                    case 3 -> NODES.textNode("NaN");
                    case 4 -> NODES.numberNode(100.0);
                    default -> NODES.numberNode(random.nextDouble());
                };
                config.set(f, v);
                log.note("config." + f + " = " + v);
            }
            case 3 -> {
                // Inconsistent but each field in range.
                switch (random.nextInt(5)) {
                    case 0 -> config.put("num_heads", 3);
                    case 1 -> config.put("patch_size", 3);
                    case 2 -> config.put("decoder_num_heads", 5);
                    case 3 -> config.put("embed_dim", 12);
                    default -> config.put("target", "pixels");
                }
                log.note("config inconsistent: " + config);
            }
            case 4 -> {
                // A consistent model much larger than the file: must be refused before it is created.
                int[][] big = {{4096, 24}, {16384, 256}, {1024, 12}, {64, 256}};
                int[] b = big[random.nextInt(big.length)];
                config.put("embed_dim", b[0]).put("decoder_embed_dim", b[0]).put("depth", b[1]);
                if (random.nextBoolean()) {
                    config.put("img_size", 8192).put("patch_size", 1);
                }
                log.note("config of a large model: " + b[0] + " wide, depth " + b[1] + ", img "
                        + config.get("img_size"));
            }
            default -> {
                // Huge images and tiny patches: fixed position embeddings of (1 + N) x D.
                config.put("img_size", new int[] {8192, 4096, 1024}[random.nextInt(3)])
                        .put("patch_size", new int[] {1, 2, 8}[random.nextInt(3)]);
                log.note("config img_size " + config.get("img_size") + " patch " + config.get("patch_size"));
            }
        }
    }

    @Test
    void mutatedCheckpointsLoadConsistentlyOrAreRefused() throws IOException {
        Path saved = dir.resolve("saved.safetensors");
        try (CaeModel m = CaeModel.create(ctx, TINY, 7)) {
            m.save(saved);
        }
        byte[] base = Files.readAllBytes(saved);
        Path file = dir.resolve("fuzz.safetensors");
        try (FuzzCampaign c = new FuzzCampaign("CaeModel.load", SEED,
                List.of(SafetensorsException.class, CaeException.class), 10_000, 64L << 20, 256L << 20)) {
            Mutator bytes = new Mutator(c.random());
            SafetensorsMutator mutator = new SafetensorsMutator(c.random(), bytes,
                    configMutations(c.random(), bytes));
            for (int i = 0; i < TRIES; i++) {
                byte[] input = mutator.mutate(base);
                boolean fallback = c.random().nextInt(4) == 0;
                Files.write(file, input);
                c.attempt(bytes.description() + (fallback ? " (fallback config)" : ""), file, input, () -> {
                    try (CaeModel m = CaeModel.load(ctx, file, fallback ? TINY : null);
                            SafetensorsFile f = SafetensorsFile.open(file)) {
                        checkLoaded(m, f);
                    }
                });
            }
            c.finish();
        }
    }

    /** {@code base} with {@code changes} made to the configuration in its metadata. */
    private static byte[] withConfig(byte[] base, UnaryOperator<ObjectNode> changes) throws IOException {
        ObjectNode root = SafetensorsMutator.header(base);
        ObjectNode meta = (ObjectNode) root.get("__metadata__");
        meta.put("config", changes.apply((ObjectNode) SafetensorsMutator.JSON.readTree(meta.get("config").asText()))
                .toString());
        return SafetensorsMutator.assemble(SafetensorsMutator.JSON.writeValueAsBytes(root),
                SafetensorsMutator.data(base));
    }

    /**
     * A tiny checkpoint whose configuration claims a 1024-wide, 12-deep model made loading allocate
     * 3.4 GB before the first tensor was found to have the wrong shape; 4096x4096 images in patches
     * of 1 (fixed position embeddings, which need not be stored), 5 GB. Now both are refused before
     * the model is created.
     */
    @Test
    void aConfigurationFarLargerThanTheFileIsRefusedBeforeTheModelIsCreated() throws IOException {
        Path saved = dir.resolve("saved.safetensors");
        try (CaeModel m = CaeModel.create(ctx, TINY, 7)) {
            m.save(saved);
        }
        byte[] base = Files.readAllBytes(saved);
        long stored = SafetensorsMutator.data(base).length;
        Path file = dir.resolve("large.safetensors");
        Files.write(file, withConfig(base,
                c -> c.put("embed_dim", 1024).put("decoder_embed_dim", 1024).put("depth", 12)));
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> CaeModel.load(ctx, file));
        assertEquals(file + ": metadata \"config\" describes a model of 176407568 trainable weights (705630272 bytes "
                + "as F32), but the file's tensors hold only " + stored + " bytes", e.getMessage());
        Files.write(file, withConfig(base, c -> c.put("img_size", 4096).put("patch_size", 1)));
        e = assertThrows(SafetensorsException.class, () -> CaeModel.load(ctx, file));
        assertEquals(file + ": metadata \"config\" describes 16777216 patches of width 8, whose position embeddings "
                + "and other fixed parameters (1073741888 bytes) exceed both the file's tensors (" + stored
                + " bytes) and 64 MiB",
                e.getMessage());
    }

    /** A loaded model holds the file's configuration, state and values. */
    private static void checkLoaded(CaeModel m, SafetensorsFile f) throws IOException {
        String config = f.metadata().get("config");
        assertEquals(config == null ? TINY : CaeConfig.fromJson(config), m.config());
        assertEquals(Long.parseLong(f.metadata().getOrDefault("step", "0")), m.state().step());
        for (ParamInfo p : m.parameters()) {
            if (f.contains(p.name())) {
                assertArrayEquals(f.floats(p.name(), p.shape()), m.parameter(p.name()), p.name());
            }
        }
    }
}
