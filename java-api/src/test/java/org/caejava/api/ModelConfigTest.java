package org.caejava.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** A configuration checked by libcae without a model, against the model created from it. */
class ModelConfigTest {

    private static final ModelConfig SMALL = ModelConfig.defaults().toBuilder().imgSize(16).patchSize(4).inChans(2)
            .embedDim(32).depth(2).numHeads(4).regressorDepth(2).decoderDepth(1).decoderNumHeads(2)
            .decoderEmbedDim(32).build();

    /** The counts of check() are those of the parameters of the model created from the configuration. */
    private static void checkAgainstModel(Context ctx, ModelConfig config) {
        ModelConfig.Info info = config.check();
        try (NativeModel m = NativeModel.create(ctx, config, 1)) {
            assertEquals(config, m.config());
            long total = 0;
            long trainable = 0;
            for (ParamInfo p : m.parameters()) {
                total += p.numel();
                trainable += p.trainable() ? p.numel() : 0;
            }
            assertEquals(new ModelConfig.Info(m.parameters().size(), total, trainable), info);
        }
    }

    @Test
    void checkDescribesTheParametersOfTheModel() {
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build()) {
            checkAgainstModel(ctx, SMALL);
            // No gammas in the encoder and decoder; frozen ones in the regressor.
            checkAgainstModel(ctx, SMALL.toBuilder().layerScaleInitValue(0).decoderLayerScaleInitValue(0).build());
        }
        ModelConfig.Info info = SMALL.check();
        // Untrained: the two fixed position embeddings [1, 1 + N, D].
        assertEquals(2 * (1 + 16) * 32, info.fixedFloats());
    }

    @Test
    void libcaesMessageNamesTheBadField() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SMALL.toBuilder().numHeads(3).build().check());
        assertEquals("config.num_heads 3 does not divide config.embed_dim 32", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SMALL.toBuilder().dropPathRate(1.0f).build().check());
        assertEquals("config.drop_path_rate is 1, expected [0, 1)", e.getMessage());
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build()) {
            CaeException created = assertThrows(CaeException.class,
                    () -> NativeModel.create(ctx, SMALL.toBuilder().numHeads(3).build(), 1));
            assertEquals(Status.INVALID_ARGUMENT, created.status());
            assertEquals("cae_model_create: config.num_heads 3 does not divide config.embed_dim 32",
                    created.nativeMessage());
        }
    }
}
