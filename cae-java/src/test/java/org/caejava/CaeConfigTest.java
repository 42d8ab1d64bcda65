package org.caejava;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class CaeConfigTest {

    @Test
    void everyPresetIsValidAndRoundTripsThroughJson() {
        for (String name : CaeConfig.presetNames()) {
            CaeConfig c = CaeConfig.preset(name).validate();
            assertEquals(c, CaeConfig.fromJson(c.toJson()), name);
        }
        CaeConfig base = CaeConfig.preset("base");
        assertEquals(196, base.numPatches());
        assertEquals(768, base.patchDim());
        assertEquals(12, CaeConfig.preset("tiny").numHeads(), "CAE-tiny uses 12 heads");
        assertEquals(49, CaeConfig.preset("fmnist-tiny").numPatches());
    }

    @Test
    void jsonUsesTheOfficialNames() {
        String json = CaeConfig.preset("base").toJson();
        for (String key : new String[] {"img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads",
            "mlp_ratio", "regressor_depth", "decoder_depth", "decoder_num_heads", "layer_scale_init_value",
            "decoder_layer_scale_init_value", "align_loss_weight", "drop_path_rate", "\"target\":\"pixel_norm\""}) {
            assertTrue(json.contains(key), key + " in " + json);
        }
    }

    @Test
    void inconsistentConfigurationsNameTheField() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> CaeConfig.preset("base").toBuilder().numHeads(7).build().validate());
        assertTrue(e.getMessage().contains("config.num_heads 7 does not divide config.embed_dim 768"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CaeConfig.preset("base").toBuilder().patchSize(15).build().validate());
        assertTrue(e.getMessage().contains("config.patch_size 15 does not divide config.img_size 224"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> CaeConfig.fromJson("{\"img_size\": 28}"));
        assertTrue(e.getMessage().contains("required key \"patch_size\" is missing"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> CaeConfig.fromJson(
                CaeConfig.preset("tiny").toJson().replace("{", "{\"bogus\":1,")));
        assertTrue(e.getMessage().contains("bogus"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> CaeConfig.preset("huge"));
        assertTrue(e.getMessage().contains("fmnist-tiny"), e.getMessage());
    }

    @Test
    void theBuilderRefusesOutOfRangeValuesNamingItself() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> CaeConfig.preset("base").toBuilder().depth(0).build());
        assertEquals("model configuration (CaeConfig builder): config.depth is 0, expected 1 to 256", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CaeConfig.preset("base").toBuilder().dropPathRate(1.5).build());
        assertEquals("model configuration (CaeConfig builder): config.drop_path_rate is 1.5, expected [0, 1)",
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CaeConfig.preset("base").toBuilder().mlpRatio(Double.NaN).build());
        assertEquals("model configuration (CaeConfig builder): config.mlp_ratio is nan, expected (0, 64]",
                e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CaeConfig.preset("base").toBuilder().numHeads(7).build());
        assertEquals("model configuration (CaeConfig builder): config.num_heads 7 does not divide config.embed_dim "
                + "768", e.getMessage());
    }

    @Test
    void theSameRangeMessageComesFromJsonAndFromTheBuilder() {
        String fromJson = assertThrows(IllegalArgumentException.class, () -> CaeConfig.fromJson(
                CaeConfig.preset("base").toJson().replace("\"depth\":12", "\"depth\":0"), "x.json")).getMessage();
        String fromBuilder = assertThrows(IllegalArgumentException.class,
                () -> CaeConfig.preset("base").toBuilder().depth(0).build()).getMessage();
        assertEquals(fromJson.substring(fromJson.indexOf("): ")), fromBuilder.substring(fromBuilder.indexOf("): ")));
    }
}
