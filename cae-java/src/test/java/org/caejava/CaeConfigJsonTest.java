package org.caejava;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.caejava.api.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Configuration files with the official CAE names: defaults, and one line for each refusal. */
class CaeConfigJsonTest {

    /** CAE-base as the official scripts spell it, without our own keys. */
    static final String OFFICIAL_BASE = """
            {"img_size": 224, "patch_size": 16, "in_chans": 3, "embed_dim": 768, "depth": 12, "num_heads": 12,
             "mlp_ratio": 4, "regressor_depth": 4, "decoder_depth": 4, "decoder_num_heads": 12,
             "layer_scale_init_value": 0.1, "decoder_layer_scale_init_value": 0.1, "align_loss_weight": 2,
             "drop_path_rate": 0.1, "target": "pixel_norm"}""";

    @TempDir
    Path dir;

    static String refused(String json) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CaeConfig.fromJson(json, "cfg.json"));
        assertEquals(1, e.getMessage().lines().count(), e.getMessage());
        return e.getMessage();
    }

    @Test
    void theOfficialArgumentNamesAreAccepted() {
        assertEquals(CaeConfig.preset("base"), CaeConfig.fromJson(OFFICIAL_BASE, "cfg.json"));
    }

    /** The keys are the fields of libcae's configuration, and toJson writes them in the struct's order. */
    @Test
    void theKeysAreTheFieldsOfModelConfig() throws Exception {
        List<String> fields = new ArrayList<>();
        for (RecordComponent c : ModelConfig.class.getRecordComponents()) {
            fields.add(c.getName().replaceAll("([A-Z])", "_$1").toLowerCase(Locale.ROOT));
        }
        assertEquals(Set.copyOf(fields), CaeConfigJson.keys());
        List<String> written = new ArrayList<>();
        new ObjectMapper().readTree(CaeConfig.preset("fmnist-tiny").toJson()).fieldNames().forEachRemaining(written::add);
        assertEquals(fields, written);
    }

    /** Left-out keys take libcae's defaults: CAE-base, which is also the base preset. */
    @Test
    void theDefaultsAreModelConfigsDefaults() {
        assertEquals(ModelConfig.defaults(), CaeConfig.preset("base").modelConfig());
        assertEquals(ModelConfig.defaults(), CaeConfig.fromJson(
                "{\"img_size\": 224, \"patch_size\": 16, \"embed_dim\": 768, \"depth\": 12, \"num_heads\": 12}")
                .modelConfig());
    }

    /** Real values are libcae's floats, read back as the decimals they were written as. */
    @Test
    void realsAreFloatsShownAsTheirDecimals() {
        CaeConfig c = CaeConfig.fromJson(OFFICIAL_BASE.replace("\"drop_path_rate\": 0.1",
                "\"drop_path_rate\": 0.1000000001"), "f");
        assertEquals(0.1f, c.modelConfig().dropPathRate());
        assertEquals(0.1, c.dropPathRate());
        assertEquals(CaeConfig.preset("base"), c);
        assertTrue(c.toJson().contains("\"drop_path_rate\":0.1,"), c.toJson());
    }

    @Test
    void everyKeyWithADefaultMayBeLeftOut() {
        CaeConfig c = CaeConfig.fromJson(
                "{\"img_size\": 224, \"patch_size\": 16, \"embed_dim\": 768, \"depth\": 12, \"num_heads\": 12}", "f");
        assertEquals(CaeConfig.preset("base"), c);
        CaeConfig small = CaeConfig.fromJson(
                "{\"img_size\": 28, \"patch_size\": 4, \"in_chans\": 1, \"embed_dim\": 64, \"depth\": 2,"
                        + " \"num_heads\": 4, \"regressor_depth\": 1, \"decoder_depth\": 0}", "f");
        assertEquals(64, small.decoderEmbedDim());
        assertEquals(4, small.decoderNumHeads());
        assertEquals(0, small.decoderDepth());
        assertEquals(1e-6, small.layerNormEps());
        assertEquals(1e-6, small.normPixEps());
        assertEquals(CaeConfig.TARGET_PIXEL_NORM, small.target());
        assertEquals(12.0, CaeConfig.fromJson(OFFICIAL_BASE.replace("\"depth\": 12", "\"depth\": 12.0"), "f")
                .depth(), "an integral number written with a point is an integer");
    }

    @Test
    void aMissingRequiredKeyIsNamed() {
        assertEquals("model configuration (cfg.json): required key \"embed_dim\" is missing (required: img_size, "
                + "patch_size, embed_dim, depth, num_heads)", refused(OFFICIAL_BASE.replace("\"embed_dim\": 768,", "")));
    }

    @Test
    void anUnknownKeyIsNamedWithTheClosestKnownKey() {
        assertEquals("model configuration (cfg.json): unknown key \"decoder_num_head\" (value 12); the closest "
                + "known key is \"decoder_num_heads\"", refused(OFFICIAL_BASE.replace("decoder_num_heads", "decoder_num_head")));
        assertEquals("model configuration (cfg.json): unknown key \"embeddim\" (value 768); the closest known key "
                + "is \"embed_dim\"", refused(OFFICIAL_BASE.replace("embed_dim", "embeddim")));
        assertEquals("model configuration (cfg.json): unknown key \"drop_path\" (value 0.1 (a fraction)); the "
                + "closest known key is \"drop_path_rate\"", refused(OFFICIAL_BASE.replace("drop_path_rate", "drop_path")));
    }

    @Test
    void aValueOfTheWrongTypeIsNamed() {
        assertEquals("model configuration (cfg.json): \"depth\" is \"12\" (a string), expected an integer",
                refused(OFFICIAL_BASE.replace("\"depth\": 12", "\"depth\": \"12\"")));
        assertEquals("model configuration (cfg.json): \"depth\" is 1.5 (a fraction), expected an integer",
                refused(OFFICIAL_BASE.replace("\"depth\": 12", "\"depth\": 1.5")));
        assertEquals("model configuration (cfg.json): \"depth\" is null, expected an integer",
                refused(OFFICIAL_BASE.replace("\"depth\": 12", "\"depth\": null")));
        assertEquals("model configuration (cfg.json): \"mlp_ratio\" is \"NaN\" (a string), expected a number",
                refused(OFFICIAL_BASE.replace("\"mlp_ratio\": 4", "\"mlp_ratio\": \"NaN\"")));
        assertEquals("model configuration (cfg.json): \"target\" is 0, expected a string",
                refused(OFFICIAL_BASE.replace("\"pixel_norm\"", "0")));
        assertEquals("model configuration (cfg.json): \"img_size\" is 10000000000, expected an integer that fits "
                + "in 32 bits", refused(OFFICIAL_BASE.replace("\"img_size\": 224", "\"img_size\": 10000000000")));
        assertEquals("model configuration (cfg.json): \"align_loss_weight\" is 1.0E300, expected a number that fits "
                + "in a 32-bit float", refused(OFFICIAL_BASE.replace("\"align_loss_weight\": 2",
                        "\"align_loss_weight\": 1e300")));
    }

    @Test
    void aValueOutOfRangeIsNamed() {
        assertEquals("model configuration (cfg.json): config.depth is 0, expected 1 to 256",
                refused(OFFICIAL_BASE.replace("\"depth\": 12", "\"depth\": 0")));
        assertEquals("model configuration (cfg.json): config.drop_path_rate is 1, expected [0, 1)",
                refused(OFFICIAL_BASE.replace("\"drop_path_rate\": 0.1", "\"drop_path_rate\": 1")));
        assertEquals("model configuration (cfg.json): config.align_loss_weight is -1, expected >= 0",
                refused(OFFICIAL_BASE.replace("\"align_loss_weight\": 2", "\"align_loss_weight\": -1")));
        assertEquals("model configuration (cfg.json): config.num_heads 7 does not divide config.embed_dim 768",
                refused(OFFICIAL_BASE.replace("\"num_heads\": 12", "\"num_heads\": 7")));
        assertEquals("model configuration (cfg.json): target is \"pixels\", expected \"pixel_norm\"",
                refused(OFFICIAL_BASE.replace("\"pixel_norm\"", "\"pixels\"")));
    }

    @Test
    void textThatIsNotAConfigurationObjectIsOneLine() {
        assertTrue(refused("{\"img_size\": ").startsWith("model configuration (cfg.json): not valid JSON: "));
        assertEquals("model configuration (cfg.json): the JSON text is empty", refused(""));
        assertEquals("model configuration (cfg.json): expected a JSON object of keys such as \"img_size\", found "
                + "[1,2] (an array)", refused("[1,2]"));
        assertTrue(refused(OFFICIAL_BASE.replace("{", "{\"depth\": 3,")).contains("Duplicate field 'depth'"));
    }

    @Test
    void aFileIsNamedByItsPath() throws Exception {
        Path f = dir.resolve("model.json");
        Files.writeString(f, OFFICIAL_BASE.replace("\"num_heads\": 12,", "\"num_heads\": 12, \"num_haeds\": 6,"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CaeConfig.read(f));
        assertEquals("model configuration (" + f + "): unknown key \"num_haeds\" (value 6); the closest known key "
                + "is \"num_heads\"", e.getMessage());
        Files.writeString(f, OFFICIAL_BASE);
        assertEquals(CaeConfig.preset("base"), CaeConfig.read(f));
    }
}
