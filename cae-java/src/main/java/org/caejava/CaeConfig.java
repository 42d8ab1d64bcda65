package org.caejava;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import org.caejava.api.ModelConfig;

/**
 * The CAE model configuration, with the official argument names in JSON ({@code img_size},
 * {@code embed_dim}, ...): a {@link ModelConfig} (the fields of libcae's {@code cae_model_config},
 * held once) with presets, the JSON form and a builder. Presets: the official {@code tiny},
 * {@code small}, {@code base} and {@code large} (224x224 RGB, patch 16), and {@code fmnist-tiny} /
 * {@code fmnist-small} sized for 28x28 grayscale images on a few CPU cores.
 *
 * <p>The regressor and the decoder have the encoder's width ({@code decoder_embed_dim ==
 * embed_dim}); CAE-large therefore follows its script's intent (1024 wide, 16 heads) rather than
 * the 768-wide decoder the script's missing line continuation produced.
 *
 * <p>Reading JSON ({@link #fromJson(String, String)}, {@link #read(Path)}): {@code img_size},
 * {@code patch_size}, {@code embed_dim}, {@code depth} and {@code num_heads} are required (they
 * choose the model; no default fits every data set). Every other key may be left out and then
 * takes the CAE-base value of {@link ModelConfig#defaults()}, which is also what the official
 * pretraining scripts pass: {@code in_chans} 3, {@code mlp_ratio} 4, {@code regressor_depth} 4,
 * {@code decoder_depth} 4, {@code layer_scale_init_value} and {@code decoder_layer_scale_init_value}
 * 0.1, {@code align_loss_weight} 2, {@code drop_path_rate} 0.1, {@code target} {@code "pixel_norm"};
 * our own keys default to {@code decoder_embed_dim} = {@code embed_dim},
 * {@code decoder_num_heads} = {@code num_heads} and {@code layer_norm_eps} = {@code norm_pix_eps}
 * = 1e-6. An unknown key (named with the closest known one), a missing required key and a value of
 * the wrong type (a string for a number, a fraction for an integer, a number beyond a 32-bit
 * integer or float) are each refused with one line naming the source, the key and the value; so is
 * a value libcae refuses ({@link #validate(String)}), with libcae's message. {@link Builder#build()}
 * validates the same way.
 *
 * <p>Real values are held as libcae holds them, as floats; their accessors return the shortest
 * decimal that reads back as the float ({@code 0.1} for {@code 0.1f}).
 *
 * <p>A plain value: owns nothing, immutable, safe to share between threads.
 *
 * @param modelConfig the fields of the configuration, as libcae takes them
 */
public record CaeConfig(ModelConfig modelConfig) {

    /** The {@code target} of CAE: the pixels of each patch, normalized by the patch's mean and standard deviation. */
    public static final String TARGET_PIXEL_NORM = "pixel_norm";

    /** The source named by {@link Builder#build()}'s messages. */
    public static final String BUILDER_SOURCE = "CaeConfig builder";

    /**
     * The canonical constructor. Does not validate.
     *
     * @throws NullPointerException when {@code modelConfig} is null
     */
    public CaeConfig {
        Objects.requireNonNull(modelConfig, "modelConfig");
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
            case "tiny" -> official(192, 12, 12, 0.1f);
            case "small" -> official(384, 12, 12, 0.1f);
            case "base" -> official(768, 12, 12, 0.1f);
            case "large" -> of(224, 16, 3, 1024, 24, 16, 4.0f, 4, 4, 16, 1024, 1e-5f, 1e-5f, 2.0f, 0.1f);
            // 28x28 grayscale, patch 4 (7x7 patches): minutes per epoch of Fashion-MNIST on 2 cores. Alignment
            // weight 0.25, not 2: at 10k images and a few epochs the weight 2 trades 3 points of k-NN for a
            // latent the regressor predicts easily (the quality sweep in bench/README.md).
            case "fmnist-tiny" -> of(28, 4, 1, 128, 6, 4, 4.0f, 2, 2, 4, 128, 0.1f, 0.1f, 0.25f, 0.1f);
            case "fmnist-small" -> of(28, 4, 1, 192, 8, 6, 4.0f, 3, 3, 6, 192, 0.1f, 0.1f, 0.25f, 0.1f);
            default -> throw new IllegalArgumentException("unknown preset \"" + name + "\"; presets: " + presetNames());
        };
    }

    private static CaeConfig official(int dim, int depth, int heads, float layerScale) {
        return of(224, 16, 3, dim, depth, heads, 4.0f, 4, 4, heads, dim, layerScale, layerScale, 2.0f, 0.1f);
    }

    /** A preset: the given fields, epsilons 1e-6 and the pixel target. */
    private static CaeConfig of(int imgSize, int patchSize, int inChans, int embedDim, int depth, int numHeads,
            float mlpRatio, int regressorDepth, int decoderDepth, int decoderNumHeads, int decoderEmbedDim,
            float layerScale, float decoderLayerScale, float alignLossWeight, float dropPathRate) {
        return new CaeConfig(new ModelConfig(imgSize, patchSize, inChans, embedDim, depth, numHeads, mlpRatio,
                regressorDepth, decoderDepth, decoderNumHeads, decoderEmbedDim, layerScale, decoderLayerScale,
                alignLossWeight, dropPathRate, 1e-6f, 1e-6f, ModelConfig.Target.PIXEL_NORM));
    }

    /**
     * The side of the square input images ({@code img_size}).
     *
     * @return the side, in pixels
     */
    public int imgSize() {
        return modelConfig.imgSize();
    }

    /**
     * The side of a patch ({@code patch_size}); divides {@link #imgSize()}.
     *
     * @return the side, in pixels
     */
    public int patchSize() {
        return modelConfig.patchSize();
    }

    /**
     * The channels of the images ({@code in_chans}): 3 for RGB, 1 for grayscale.
     *
     * @return the channel count
     */
    public int inChans() {
        return modelConfig.inChans();
    }

    /**
     * The encoder's width, the dimension of a token ({@code embed_dim}).
     *
     * @return the width
     */
    public int embedDim() {
        return modelConfig.embedDim();
    }

    /**
     * The number of encoder blocks ({@code depth}).
     *
     * @return the block count
     */
    public int depth() {
        return modelConfig.depth();
    }

    /**
     * The encoder's attention heads ({@code num_heads}); divides {@link #embedDim()}.
     *
     * @return the head count
     */
    public int numHeads() {
        return modelConfig.numHeads();
    }

    /**
     * The hidden width of a block's MLP over the block's width ({@code mlp_ratio}).
     *
     * @return the ratio
     */
    public double mlpRatio() {
        return decimal(modelConfig.mlpRatio());
    }

    /**
     * The number of regressor blocks ({@code regressor_depth}).
     *
     * @return the block count
     */
    public int regressorDepth() {
        return modelConfig.regressorDepth();
    }

    /**
     * The number of decoder blocks ({@code decoder_depth}, 0 allowed).
     *
     * @return the block count
     */
    public int decoderDepth() {
        return modelConfig.decoderDepth();
    }

    /**
     * The attention heads of the regressor and the decoder ({@code decoder_num_heads}).
     *
     * @return the head count
     */
    public int decoderNumHeads() {
        return modelConfig.decoderNumHeads();
    }

    /**
     * The width of the regressor and the decoder ({@code decoder_embed_dim}); equals {@link #embedDim()}.
     *
     * @return the width
     */
    public int decoderEmbedDim() {
        return modelConfig.decoderEmbedDim();
    }

    /**
     * The initial value of the encoder's LayerScale gammas ({@code layer_scale_init_value}; 0: no gammas).
     *
     * @return the value
     */
    public double layerScaleInitValue() {
        return decimal(modelConfig.layerScaleInitValue());
    }

    /**
     * The initial value of the LayerScale gammas of the regressor and the decoder
     * ({@code decoder_layer_scale_init_value}; 0: the decoder has no gammas and the regressor's are frozen).
     *
     * @return the value
     */
    public double decoderLayerScaleInitValue() {
        return decimal(modelConfig.decoderLayerScaleInitValue());
    }

    /**
     * The weight of the alignment loss in the total loss ({@code align_loss_weight}).
     *
     * @return the weight
     */
    public double alignLossWeight() {
        return decimal(modelConfig.alignLossWeight());
    }

    /**
     * The stochastic-depth rate, spaced from 0 to it over the blocks of each stack ({@code drop_path_rate}).
     *
     * @return the rate
     */
    public double dropPathRate() {
        return decimal(modelConfig.dropPathRate());
    }

    /**
     * The epsilon of every LayerNorm ({@code layer_norm_eps}).
     *
     * @return the epsilon
     */
    public double layerNormEps() {
        return decimal(modelConfig.layerNormEps());
    }

    /**
     * The epsilon of the per-patch normalization of the pixel target ({@code norm_pix_eps}).
     *
     * @return the epsilon
     */
    public double normPixEps() {
        return decimal(modelConfig.normPixEps());
    }

    /**
     * The regression target by its JSON name ({@code target}); {@value #TARGET_PIXEL_NORM} is the only one.
     *
     * @return the target's name
     */
    public String target() {
        return CaeConfigJson.targetName(modelConfig.target());
    }

    /** A float as the shortest decimal that reads back as it, as a double (0.1f is 0.1). */
    private static double decimal(float v) {
        return Double.parseDouble(Float.toString(v));
    }

    /**
     * Patches per side.
     *
     * @return {@code imgSize / patchSize}
     */
    public int gridSize() {
        return imgSize() / patchSize();
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
        return inChans() * patchSize() * patchSize();
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
     * Checks the configuration with libcae ({@link ModelConfig#check()}) and returns it; throws
     * {@link IllegalArgumentException} with one line naming {@code source} (a file, a checkpoint's
     * metadata; {@code null} for none) and libcae's message, which names the first field out of
     * range or inconsistent and its value.
     *
     * @param source where the configuration came from, for the message; or null
     * @return this configuration
     * @throws IllegalArgumentException when a field is out of range or inconsistent with another
     */
    public CaeConfig validate(String source) {
        try {
            modelConfig.check();
        } catch (IllegalArgumentException e) {
            throw source == null ? new IllegalArgumentException("model configuration: " + e.getMessage())
                    : CaeConfigJson.refuse(source, e.getMessage());
        }
        return this;
    }

    /**
     * The JSON object with the official names.
     *
     * @return the configuration as one line of JSON
     */
    public String toJson() {
        return CaeConfigJson.write(this);
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

    /**
     * Changes a few fields of a configuration. A plain mutable object that owns nothing; used by one
     * thread at a time. Real values are rounded to float, as libcae holds them.
     */
    public static final class Builder {
        private final ModelConfig.Builder fields;

        private Builder(CaeConfig c) {
            fields = c.modelConfig.toBuilder();
        }

        /**
         * Sets the side of the square input images.
         *
         * @param v the side, in pixels
         * @return this builder
         */
        public Builder imgSize(int v) { fields.imgSize(v); return this; }
        /**
         * Sets the side of a patch.
         *
         * @param v the side, in pixels
         * @return this builder
         */
        public Builder patchSize(int v) { fields.patchSize(v); return this; }
        /**
         * Sets the channels of the images.
         *
         * @param v the channel count
         * @return this builder
         */
        public Builder inChans(int v) { fields.inChans(v); return this; }
        /**
         * Sets the width of the encoder and of the regressor and decoder.
         *
         * @param v the width
         * @return this builder
         */
        public Builder embedDim(int v) { fields.embedDim(v).decoderEmbedDim(v); return this; }
        /**
         * Sets the number of encoder blocks.
         *
         * @param v the block count
         * @return this builder
         */
        public Builder depth(int v) { fields.depth(v); return this; }
        /**
         * Sets the encoder's attention heads.
         *
         * @param v the head count
         * @return this builder
         */
        public Builder numHeads(int v) { fields.numHeads(v); return this; }
        /**
         * Sets the MLP's hidden width over the block width.
         *
         * @param v the ratio
         * @return this builder
         */
        public Builder mlpRatio(double v) { fields.mlpRatio((float) v); return this; }
        /**
         * Sets the number of regressor blocks.
         *
         * @param v the block count
         * @return this builder
         */
        public Builder regressorDepth(int v) { fields.regressorDepth(v); return this; }
        /**
         * Sets the number of decoder blocks.
         *
         * @param v the block count
         * @return this builder
         */
        public Builder decoderDepth(int v) { fields.decoderDepth(v); return this; }
        /**
         * Sets the attention heads of the regressor and the decoder.
         *
         * @param v the head count
         * @return this builder
         */
        public Builder decoderNumHeads(int v) { fields.decoderNumHeads(v); return this; }
        /**
         * Sets the initial value of the encoder's LayerScale gammas.
         *
         * @param v the value; 0 for no gammas
         * @return this builder
         */
        public Builder layerScaleInitValue(double v) { fields.layerScaleInitValue((float) v); return this; }
        /**
         * Sets the initial value of the LayerScale gammas of the regressor and the decoder.
         *
         * @param v the value
         * @return this builder
         */
        public Builder decoderLayerScaleInitValue(double v) {
            fields.decoderLayerScaleInitValue((float) v);
            return this;
        }
        /**
         * Sets the weight of the alignment loss.
         *
         * @param v the weight
         * @return this builder
         */
        public Builder alignLossWeight(double v) { fields.alignLossWeight((float) v); return this; }
        /**
         * Sets the stochastic-depth rate.
         *
         * @param v the rate, in [0, 1)
         * @return this builder
         */
        public Builder dropPathRate(double v) { fields.dropPathRate((float) v); return this; }

        /**
         * The configuration; throws {@link IllegalArgumentException} as {@link CaeConfig#validate(String)} does.
         *
         * @return the validated configuration
         * @throws IllegalArgumentException when a field is out of range or inconsistent with another
         */
        public CaeConfig build() {
            return new CaeConfig(fields.build()).validate(BUILDER_SOURCE);
        }
    }
}
