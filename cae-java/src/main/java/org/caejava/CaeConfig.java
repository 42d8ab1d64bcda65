package org.caejava;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The CAE model configuration, with the official argument names in JSON ({@code img_size},
 * {@code embed_dim}, ...). Presets: the official {@code tiny}, {@code small}, {@code base} and
 * {@code large} (224x224 RGB, patch 16), and {@code fmnist-tiny} / {@code fmnist-small} sized for
 * 28x28 grayscale images on a few CPU cores.
 *
 * <p>The regressor and the decoder have the encoder's width ({@code decoder_embed_dim ==
 * embed_dim}); CAE-large therefore follows its script's intent (1024 wide, 16 heads) rather than
 * the 768-wide decoder the script's missing line continuation produced.
 *
 * <p>Reading JSON ({@link #fromJson(String, String)}, {@link #read(Path)}): {@code img_size},
 * {@code patch_size}, {@code embed_dim}, {@code depth} and {@code num_heads} are required (they
 * choose the model; no default fits every data set). Every other key may be left out and then
 * takes the CAE-base value, which is also what the official pretraining scripts pass:
 * {@code in_chans} 3, {@code mlp_ratio} 4, {@code regressor_depth} 4, {@code decoder_depth} 4,
 * {@code layer_scale_init_value} and {@code decoder_layer_scale_init_value} 0.1,
 * {@code align_loss_weight} 2, {@code drop_path_rate} 0.1, {@code target} {@code "pixel_norm"};
 * our own keys default to {@code decoder_embed_dim} = {@code embed_dim},
 * {@code decoder_num_heads} = {@code num_heads} and {@code layer_norm_eps} = {@code norm_pix_eps}
 * = 1e-6. An unknown key (named with the closest known one), a missing required key, a value of
 * the wrong type (a string for a number, a fraction for an integer) and a value out of range are
 * each refused with one line naming the source, the key and the value. {@link Builder#build()}
 * applies the same range checks.
 *
 * <p>A plain value: owns nothing, immutable, safe to share between threads.
 *
 * @param imgSize the side of the square input images, in pixels
 * @param patchSize the side of a patch, in pixels; divides {@code imgSize}
 * @param inChans the channels of the images (3 for RGB, 1 for grayscale)
 * @param embedDim the encoder's width (the dimension of a token)
 * @param depth the number of encoder blocks
 * @param numHeads the encoder's attention heads; divides {@code embedDim}
 * @param mlpRatio the hidden width of a block's MLP over the block's width
 * @param regressorDepth the number of regressor blocks
 * @param decoderDepth the number of decoder blocks (0 allowed)
 * @param decoderNumHeads the attention heads of the regressor and the decoder
 * @param decoderEmbedDim the width of the regressor and the decoder; must equal {@code embedDim}
 * @param layerScaleInitValue the initial value of the encoder's LayerScale gammas (0: no gammas)
 * @param decoderLayerScaleInitValue the same for the regressor and the decoder (0: the decoder has
 *     no gammas and the regressor's are frozen)
 * @param alignLossWeight the weight of the alignment loss in the total loss
 * @param dropPathRate the stochastic-depth rate, spaced from 0 to this value over the blocks of
 *     each stack
 * @param layerNormEps the epsilon of every LayerNorm
 * @param normPixEps the epsilon of the per-patch normalization of the pixel target
 * @param target the regression target; only {@value #TARGET_PIXEL_NORM} is supported (null
 *     becomes it)
 */
@JsonPropertyOrder({"img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio",
    "regressor_depth", "decoder_depth", "decoder_num_heads", "decoder_embed_dim", "layer_scale_init_value",
    "decoder_layer_scale_init_value", "align_loss_weight", "drop_path_rate", "layer_norm_eps", "norm_pix_eps",
    "target"})
public record CaeConfig(
        @JsonProperty("img_size") int imgSize,
        @JsonProperty("patch_size") int patchSize,
        @JsonProperty("in_chans") int inChans,
        @JsonProperty("embed_dim") int embedDim,
        @JsonProperty("depth") int depth,
        @JsonProperty("num_heads") int numHeads,
        @JsonProperty("mlp_ratio") double mlpRatio,
        @JsonProperty("regressor_depth") int regressorDepth,
        @JsonProperty("decoder_depth") int decoderDepth,
        @JsonProperty("decoder_num_heads") int decoderNumHeads,
        @JsonProperty("decoder_embed_dim") int decoderEmbedDim,
        @JsonProperty("layer_scale_init_value") double layerScaleInitValue,
        @JsonProperty("decoder_layer_scale_init_value") double decoderLayerScaleInitValue,
        @JsonProperty("align_loss_weight") double alignLossWeight,
        @JsonProperty("drop_path_rate") double dropPathRate,
        @JsonProperty("layer_norm_eps") double layerNormEps,
        @JsonProperty("norm_pix_eps") double normPixEps,
        @JsonProperty("target") String target) {

    /** The {@code target} of CAE: the pixels of each patch, normalized by the patch's mean and standard deviation. */
    public static final String TARGET_PIXEL_NORM = "pixel_norm";

    /** The source named by {@link Builder#build()}'s messages. */
    public static final String BUILDER_SOURCE = "CaeConfig builder";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The canonical constructor; a null {@code target} becomes {@value #TARGET_PIXEL_NORM}. Does not validate. */
    @JsonCreator
    public CaeConfig {
        if (target == null) {
            target = TARGET_PIXEL_NORM;
        }
    }

    /**
     * The preset names, official first.
     *
     * @return the names {@link #preset(String)} knows
     */
    public static List<String> presetNames() {
        return List.of("tiny", "small", "base", "large", "fmnist-tiny", "fmnist-small");
    }

    /**
     * A preset by name (see {@link #presetNames()}).
     *
     * @param name the preset's name, e.g. {@code "base"} or {@code "fmnist-tiny"}
     * @return the preset's configuration
     * @throws IllegalArgumentException for an unknown name
     */
    public static CaeConfig preset(String name) {
        return switch (name) {
            // The official sizes (tiny and small use 12 heads in CAE), 224x224 RGB, patch 16.
            case "tiny" -> official(192, 12, 12, 0.1);
            case "small" -> official(384, 12, 12, 0.1);
            case "base" -> official(768, 12, 12, 0.1);
            case "large" -> new CaeConfig(224, 16, 3, 1024, 24, 16, 4.0, 4, 4, 16, 1024, 1e-5, 1e-5, 2.0, 0.1, 1e-6,
                    1e-6, TARGET_PIXEL_NORM);
            // 28x28 grayscale, patch 4 (7x7 patches): minutes per epoch of Fashion-MNIST on 2 cores. Alignment
            // weight 0.25, not 2: at 10k images and a few epochs the weight 2 trades 3 points of k-NN for a
            // latent the regressor predicts easily (the quality sweep in bench/README.md).
            case "fmnist-tiny" -> new CaeConfig(28, 4, 1, 128, 6, 4, 4.0, 2, 2, 4, 128, 0.1, 0.1, 0.25, 0.1, 1e-6,
                    1e-6, TARGET_PIXEL_NORM);
            case "fmnist-small" -> new CaeConfig(28, 4, 1, 192, 8, 6, 4.0, 3, 3, 6, 192, 0.1, 0.1, 0.25, 0.1, 1e-6,
                    1e-6, TARGET_PIXEL_NORM);
            default -> throw new IllegalArgumentException("unknown preset \"" + name + "\"; presets: " + presetNames());
        };
    }

    private static CaeConfig official(int dim, int depth, int heads, double layerScale) {
        return new CaeConfig(224, 16, 3, dim, depth, heads, 4.0, 4, 4, heads, dim, layerScale, layerScale, 2.0, 0.1,
                1e-6, 1e-6, TARGET_PIXEL_NORM);
    }

    /**
     * Patches per side.
     *
     * @return {@code imgSize / patchSize}
     */
    public int gridSize() {
        return imgSize / patchSize;
    }

    /**
     * Patches per image.
     *
     * @return the square of {@link #gridSize()}
     */
    public int numPatches() {
        return gridSize() * gridSize();
    }

    /**
     * Values per patch: the pixel target's width.
     *
     * @return {@code inChans * patchSize * patchSize}
     */
    public int patchDim() {
        return inChans * patchSize * patchSize;
    }

    /**
     * Checks the configuration and returns it; throws {@link IllegalArgumentException} naming the
     * first inconsistent field.
     *
     * @return this configuration
     * @throws IllegalArgumentException when a field is out of range or inconsistent with another
     */
    public CaeConfig validate() {
        return validate(null);
    }

    /**
     * Checks the configuration and returns it; throws {@link IllegalArgumentException} with one line
     * naming {@code source} (a file, a checkpoint's metadata; {@code null} for none), the first field
     * out of range or inconsistent, and its value. The ranges are those libcae accepts.
     *
     * @param source where the configuration came from, for the message; or null
     * @return this configuration
     * @throws IllegalArgumentException when a field is out of range or inconsistent with another
     */
    public CaeConfig validate(String source) {
        Checks c = new Checks(source);
        c.between("img_size", imgSize, 1, 8192);
        c.between("patch_size", patchSize, 1, 1024);
        c.between("in_chans", inChans, 1, 64);
        c.between("embed_dim", embedDim, 1, 16384);
        c.between("depth", depth, 1, 256);
        c.between("num_heads", numHeads, 1, 1024);
        c.between("regressor_depth", regressorDepth, 1, 256);
        c.between("decoder_depth", decoderDepth, 0, 256);
        c.between("decoder_num_heads", decoderNumHeads, 1, 1024);
        c.require(imgSize % patchSize == 0, "patch_size " + patchSize + " does not divide img_size " + imgSize);
        c.require(numPatches() >= 2, "img_size " + imgSize + " with patch_size " + patchSize + " gives "
                + numPatches() + " patch(es); masking needs at least 2");
        c.require(embedDim % 4 == 0, "embed_dim " + embedDim + " is not a multiple of 4 (2-D sin-cos positions)");
        c.require(embedDim % numHeads == 0, "num_heads " + numHeads + " does not divide embed_dim " + embedDim);
        c.require(decoderEmbedDim == embedDim, "decoder_embed_dim " + decoderEmbedDim + " differs from embed_dim "
                + embedDim + " (a projection between encoder and regressor is not supported)");
        c.require(embedDim % decoderNumHeads == 0, "decoder_num_heads " + decoderNumHeads
                + " does not divide the decoder width " + embedDim);
        c.real("mlp_ratio", mlpRatio, mlpRatio > 0 && mlpRatio <= 64, "(0, 64]");
        c.real("layer_scale_init_value", layerScaleInitValue, layerScaleInitValue >= 0, ">= 0");
        c.real("decoder_layer_scale_init_value", decoderLayerScaleInitValue, decoderLayerScaleInitValue >= 0,
                ">= 0");
        c.real("align_loss_weight", alignLossWeight, alignLossWeight >= 0, ">= 0");
        c.real("drop_path_rate", dropPathRate, dropPathRate >= 0 && dropPathRate < 1, "[0, 1)");
        c.real("layer_norm_eps", layerNormEps, layerNormEps > 0, "> 0");
        c.real("norm_pix_eps", normPixEps, normPixEps > 0, "> 0");
        c.require(TARGET_PIXEL_NORM.equals(target),
                "target is \"" + target + "\", expected \"" + TARGET_PIXEL_NORM + "\"");
        return this;
    }

    /**
     * The configuration as the native model takes it (official names to numbers).
     *
     * @return a new map of every field, integers as Integer and reals as Float; {@code target} as 0
     */
    public Map<String, Number> toNative() {
        Map<String, Number> m = new LinkedHashMap<>();
        m.put("img_size", imgSize);
        m.put("patch_size", patchSize);
        m.put("in_chans", inChans);
        m.put("embed_dim", embedDim);
        m.put("depth", depth);
        m.put("num_heads", numHeads);
        m.put("mlp_ratio", (float) mlpRatio);
        m.put("regressor_depth", regressorDepth);
        m.put("decoder_depth", decoderDepth);
        m.put("decoder_num_heads", decoderNumHeads);
        m.put("decoder_embed_dim", decoderEmbedDim);
        m.put("layer_scale_init_value", (float) layerScaleInitValue);
        m.put("decoder_layer_scale_init_value", (float) decoderLayerScaleInitValue);
        m.put("align_loss_weight", (float) alignLossWeight);
        m.put("drop_path_rate", (float) dropPathRate);
        m.put("layer_norm_eps", (float) layerNormEps);
        m.put("norm_pix_eps", (float) normPixEps);
        m.put("target", 0);
        return m;
    }

    /**
     * The JSON object with the official names.
     *
     * @return the configuration as one line of JSON
     */
    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Parses and validates a JSON object with the official names (see the class comment).
     *
     * @param json the JSON text
     * @return the configuration
     * @throws IllegalArgumentException when the text is not such an object or a value is refused
     */
    public static CaeConfig fromJson(String json) {
        return fromJson(json, "JSON text");
    }

    /**
     * Parses and validates a JSON object with the official names (see the class comment);
     * {@code source} says where the text came from (a file, {@code "checkpoint metadata of f"}) in
     * every message.
     *
     * @param json the JSON text
     * @param source where the text came from, named in every message
     * @return the configuration
     * @throws IllegalArgumentException when the text is not such an object or a value is refused
     */
    public static CaeConfig fromJson(String json, String source) {
        return CaeConfigJson.parse(json, source);
    }

    /**
     * Reads, parses and validates a configuration file; its messages name {@code file}.
     *
     * @param file a UTF-8 JSON file
     * @return the configuration
     * @throws IOException when the file cannot be read
     * @throws IllegalArgumentException when the text is not such an object or a value is refused
     */
    public static CaeConfig read(Path file) throws IOException {
        return fromJson(Files.readString(file), file.toString());
    }

    /**
     * A builder starting from this configuration.
     *
     * @return a new builder holding every field of this configuration
     */
    public Builder toBuilder() {
        return new Builder(this);
    }

    /** The checks of {@link #validate(String)}, each refusal one line naming the source. */
    private record Checks(String source) {

        void between(String name, int v, int min, int max) {
            require(v >= min && v <= max, name + " is " + v + ", expected " + min + " to " + max);
        }

        /** A real field: finite, within {@code range} and representable as the float libcae holds. */
        void real(String name, double v, boolean inRange, String range) {
            require(inRange && Float.isFinite((float) v), name + " is " + v + ", expected " + range);
        }

        void require(boolean ok, String message) {
            if (!ok) {
                throw source == null ? new IllegalArgumentException("model configuration: " + message)
                        : CaeConfigJson.refuse(source, message);
            }
        }
    }

    /**
     * Changes a few fields of a configuration. A plain mutable object that owns nothing; used by one
     * thread at a time.
     */
    public static final class Builder {
        private int imgSize, patchSize, inChans, embedDim, depth, numHeads, regressorDepth, decoderDepth,
                decoderNumHeads, decoderEmbedDim;
        private double mlpRatio, layerScale, decoderLayerScale, alignLossWeight, dropPathRate, layerNormEps,
                normPixEps;
        private String target;

        private Builder(CaeConfig c) {
            imgSize = c.imgSize;
            patchSize = c.patchSize;
            inChans = c.inChans;
            embedDim = c.embedDim;
            depth = c.depth;
            numHeads = c.numHeads;
            mlpRatio = c.mlpRatio;
            regressorDepth = c.regressorDepth;
            decoderDepth = c.decoderDepth;
            decoderNumHeads = c.decoderNumHeads;
            decoderEmbedDim = c.decoderEmbedDim;
            layerScale = c.layerScaleInitValue;
            decoderLayerScale = c.decoderLayerScaleInitValue;
            alignLossWeight = c.alignLossWeight;
            dropPathRate = c.dropPathRate;
            layerNormEps = c.layerNormEps;
            normPixEps = c.normPixEps;
            target = c.target;
        }

        /**
         * Sets the side of the square input images.
         *
         * @param v the side, in pixels
         * @return this builder
         */
        public Builder imgSize(int v) { imgSize = v; return this; }
        /**
         * Sets the side of a patch.
         *
         * @param v the side, in pixels
         * @return this builder
         */
        public Builder patchSize(int v) { patchSize = v; return this; }
        /**
         * Sets the channels of the images.
         *
         * @param v the channel count
         * @return this builder
         */
        public Builder inChans(int v) { inChans = v; return this; }
        /**
         * Sets the width of the encoder and of the regressor and decoder.
         *
         * @param v the width
         * @return this builder
         */
        public Builder embedDim(int v) { embedDim = v; decoderEmbedDim = v; return this; }
        /**
         * Sets the number of encoder blocks.
         *
         * @param v the block count
         * @return this builder
         */
        public Builder depth(int v) { depth = v; return this; }
        /**
         * Sets the encoder's attention heads.
         *
         * @param v the head count
         * @return this builder
         */
        public Builder numHeads(int v) { numHeads = v; return this; }
        /**
         * Sets the MLP's hidden width over the block width.
         *
         * @param v the ratio
         * @return this builder
         */
        public Builder mlpRatio(double v) { mlpRatio = v; return this; }
        /**
         * Sets the number of regressor blocks.
         *
         * @param v the block count
         * @return this builder
         */
        public Builder regressorDepth(int v) { regressorDepth = v; return this; }
        /**
         * Sets the number of decoder blocks.
         *
         * @param v the block count
         * @return this builder
         */
        public Builder decoderDepth(int v) { decoderDepth = v; return this; }
        /**
         * Sets the attention heads of the regressor and the decoder.
         *
         * @param v the head count
         * @return this builder
         */
        public Builder decoderNumHeads(int v) { decoderNumHeads = v; return this; }
        /**
         * Sets the initial value of the encoder's LayerScale gammas.
         *
         * @param v the value; 0 for no gammas
         * @return this builder
         */
        public Builder layerScaleInitValue(double v) { layerScale = v; return this; }
        /**
         * Sets the initial value of the LayerScale gammas of the regressor and the decoder.
         *
         * @param v the value
         * @return this builder
         */
        public Builder decoderLayerScaleInitValue(double v) { decoderLayerScale = v; return this; }
        /**
         * Sets the weight of the alignment loss.
         *
         * @param v the weight
         * @return this builder
         */
        public Builder alignLossWeight(double v) { alignLossWeight = v; return this; }
        /**
         * Sets the stochastic-depth rate.
         *
         * @param v the rate, in [0, 1)
         * @return this builder
         */
        public Builder dropPathRate(double v) { dropPathRate = v; return this; }

        /**
         * The configuration; throws {@link IllegalArgumentException} as {@link CaeConfig#validate(String)} does.
         *
         * @return the validated configuration
         * @throws IllegalArgumentException when a field is out of range or inconsistent with another
         */
        public CaeConfig build() {
            return new CaeConfig(imgSize, patchSize, inChans, embedDim, depth, numHeads, mlpRatio, regressorDepth,
                    decoderDepth, decoderNumHeads, decoderEmbedDim, layerScale, decoderLayerScale, alignLossWeight,
                    dropPathRate, layerNormEps, normPixEps, target).validate(BUILDER_SOURCE);
        }
    }
}
