package org.caejava.api;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Objects;
import org.caejava.bindings.CaeNative;
import org.caejava.bindings.cae_model_config;
import org.caejava.bindings.cae_model_config_info;

/**
 * The configuration of a native CAE model: the fields of {@code cae_model_config} (cae.h), one
 * component each under the official CAE argument name in camel case ({@code img_size} is
 * {@link #imgSize()}), with the C types ({@code int32_t} as int, {@code float} as float). What
 * {@link NativeModel#create} writes into the struct and {@link NativeModel#config()} reads back.
 *
 * <p>The ranges and the relations between fields are libcae's alone: {@link #check()} asks it, and
 * the constructor checks nothing but a non-null target. A plain value: owns nothing, immutable,
 * safe to share between threads.
 *
 * @param imgSize the side of the square input images, in pixels
 * @param patchSize the side of a patch, in pixels; divides {@code imgSize}
 * @param inChans the channels of the images
 * @param embedDim the encoder's width D, a multiple of 4
 * @param depth the number of encoder blocks
 * @param numHeads the encoder's attention heads; divides {@code embedDim}
 * @param mlpRatio the hidden width of a block's MLP over the block's width
 * @param regressorDepth the number of regressor blocks
 * @param decoderDepth the number of decoder blocks (0 allowed)
 * @param decoderNumHeads the attention heads of the regressor and the decoder
 * @param decoderEmbedDim the width of the regressor and the decoder; equals {@code embedDim}
 * @param layerScaleInitValue the initial value of the encoder's LayerScale gammas (0: no gammas)
 * @param decoderLayerScaleInitValue the same for the regressor and the decoder (0: the decoder has
 *     no gammas and the regressor's are frozen ones)
 * @param alignLossWeight the weight of the alignment loss in the total loss
 * @param dropPathRate the stochastic-depth rate, spaced from 0 to it over the blocks of each stack
 * @param layerNormEps the epsilon of every LayerNorm
 * @param normPixEps the epsilon of the per-patch normalization of the pixel target
 * @param target the regression target; not null
 */
public record ModelConfig(int imgSize, int patchSize, int inChans, int embedDim, int depth, int numHeads,
        float mlpRatio, int regressorDepth, int decoderDepth, int decoderNumHeads, int decoderEmbedDim,
        float layerScaleInitValue, float decoderLayerScaleInitValue, float alignLossWeight, float dropPathRate,
        float layerNormEps, float normPixEps, Target target) {

    /** The regression target of the decoder ({@code cae_target}). Constants only. */
    public enum Target {
        /** The masked patches' pixels, normalized per patch by their mean and standard deviation. */
        PIXEL_NORM(CaeNative.CAE_TARGET_PIXEL_NORM());

        private final int code;

        Target(int code) {
            this.code = code;
        }

        /**
         * The value of {@code cae_target}.
         *
         * @return the C constant's value
         */
        public int code() {
            return code;
        }

        /**
         * The target of a {@code cae_target} value.
         *
         * @param code the C value
         * @return the target
         * @throws IllegalArgumentException for a value no target has
         */
        public static Target of(int code) {
            for (Target t : values()) {
                if (t.code == code) {
                    return t;
                }
            }
            throw new IllegalArgumentException("unknown cae_target " + code);
        }
    }

    /**
     * The parameters a model of a configuration holds, as libcae's parameter table lists them
     * ({@code cae_model_config_info}).
     *
     * @param paramCount the parameter tensors, as many as {@link NativeModel#parameters()} lists
     * @param totalFloats the sum of every parameter's element count
     * @param trainableFloats the sum over the trainable parameters: what a checkpoint must hold
     */
    public record Info(int paramCount, long totalFloats, long trainableFloats) {

        /**
         * The floats of the parameters that are not trained (the fixed position embeddings and frozen
         * gammas), which a model recomputes from its configuration.
         *
         * @return {@code totalFloats - trainableFloats}
         */
        public long fixedFloats() {
            return totalFloats - trainableFloats;
        }
    }

    /**
     * Checks that a target is given.
     *
     * @throws NullPointerException when {@code target} is null
     */
    public ModelConfig {
        Objects.requireNonNull(target, "target");
    }

    /**
     * CAE-base, as {@code cae_model_config_init} fills it: ViT-B/16 at 224x224 RGB (width 768, 12
     * blocks, 12 heads, MLP ratio 4), regressor 4 and decoder 4 blocks of 12 heads, LayerScale 0.1,
     * alignment weight 2, drop path 0.1, epsilons 1e-6, the pixel target.
     *
     * @return that configuration
     */
    public static ModelConfig defaults() {
        return new ModelConfig(224, 16, 3, 768, 12, 12, 4.0f, 4, 4, 12, 768, 0.1f, 0.1f, 2.0f, 0.1f, 1e-6f, 1e-6f,
                Target.PIXEL_NORM);
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
     * Asks libcae whether it accepts this configuration ({@code cae_model_config_check}, the checks
     * of {@code cae_model_create}) and what its model's parameters are, without creating the model.
     *
     * @return the parameter table's counts
     * @throws IllegalArgumentException when libcae refuses the configuration; the message is
     *     libcae's, naming the first bad field and its value (e.g. {@code "config.depth is 0,
     *     expected 1 to 256"})
     * @throws CaeException when the check fails otherwise (out of memory)
     */
    public Info check() {
        NativeLibrary.load();
        try (Arena call = Arena.ofConfined()) {
            MemorySegment cfg = cae_model_config.allocate(call);
            write(cfg);
            MemorySegment info = cae_model_config_info.allocate(call);
            int status = CaeNative.cae_model_config_check(cfg, info);
            if (status == Status.INVALID_ARGUMENT.code()) {
                throw new IllegalArgumentException(Native.lastErrorOf("cae_model_config_check"));
            }
            Native.check(status, "checking the model configuration " + this);
            return new Info(cae_model_config_info.param_count(info), cae_model_config_info.total_floats(info),
                    cae_model_config_info.trainable_floats(info));
        }
    }

    /** Writes every field of {@code cae_model_config} ({@code reserved} 0). */
    void write(MemorySegment s) {
        cae_model_config.img_size(s, imgSize);
        cae_model_config.patch_size(s, patchSize);
        cae_model_config.in_chans(s, inChans);
        cae_model_config.embed_dim(s, embedDim);
        cae_model_config.depth(s, depth);
        cae_model_config.num_heads(s, numHeads);
        cae_model_config.mlp_ratio(s, mlpRatio);
        cae_model_config.regressor_depth(s, regressorDepth);
        cae_model_config.decoder_depth(s, decoderDepth);
        cae_model_config.decoder_num_heads(s, decoderNumHeads);
        cae_model_config.decoder_embed_dim(s, decoderEmbedDim);
        cae_model_config.layer_scale_init_value(s, layerScaleInitValue);
        cae_model_config.decoder_layer_scale_init_value(s, decoderLayerScaleInitValue);
        cae_model_config.align_loss_weight(s, alignLossWeight);
        cae_model_config.drop_path_rate(s, dropPathRate);
        cae_model_config.layer_norm_eps(s, layerNormEps);
        cae_model_config.norm_pix_eps(s, normPixEps);
        cae_model_config.target(s, target.code());
        cae_model_config.reserved(s, 0);
    }

    /** The configuration a {@code cae_model_config} holds. */
    static ModelConfig read(MemorySegment s) {
        return new ModelConfig(cae_model_config.img_size(s), cae_model_config.patch_size(s),
                cae_model_config.in_chans(s), cae_model_config.embed_dim(s), cae_model_config.depth(s),
                cae_model_config.num_heads(s), cae_model_config.mlp_ratio(s), cae_model_config.regressor_depth(s),
                cae_model_config.decoder_depth(s), cae_model_config.decoder_num_heads(s),
                cae_model_config.decoder_embed_dim(s), cae_model_config.layer_scale_init_value(s),
                cae_model_config.decoder_layer_scale_init_value(s), cae_model_config.align_loss_weight(s),
                cae_model_config.drop_path_rate(s), cae_model_config.layer_norm_eps(s),
                cae_model_config.norm_pix_eps(s), Target.of(cae_model_config.target(s)));
    }

    /**
     * Changes fields of a configuration, one setter per field. A plain mutable object that owns
     * nothing; used by one thread at a time. {@link #build()} checks nothing (see {@link #check()}).
     */
    public static final class Builder {
        private int imgSize, patchSize, inChans, embedDim, depth, numHeads, regressorDepth, decoderDepth,
                decoderNumHeads, decoderEmbedDim;
        private float mlpRatio, layerScaleInitValue, decoderLayerScaleInitValue, alignLossWeight, dropPathRate,
                layerNormEps, normPixEps;
        private Target target;

        private Builder(ModelConfig c) {
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
            layerScaleInitValue = c.layerScaleInitValue;
            decoderLayerScaleInitValue = c.decoderLayerScaleInitValue;
            alignLossWeight = c.alignLossWeight;
            dropPathRate = c.dropPathRate;
            layerNormEps = c.layerNormEps;
            normPixEps = c.normPixEps;
            target = c.target;
        }

        /**
         * Sets {@code img_size}.
         *
         * @param v the side of the images, in pixels
         * @return this builder
         */
        public Builder imgSize(int v) { imgSize = v; return this; }
        /**
         * Sets {@code patch_size}.
         *
         * @param v the side of a patch, in pixels
         * @return this builder
         */
        public Builder patchSize(int v) { patchSize = v; return this; }
        /**
         * Sets {@code in_chans}.
         *
         * @param v the channel count
         * @return this builder
         */
        public Builder inChans(int v) { inChans = v; return this; }
        /**
         * Sets {@code embed_dim}, the encoder's width alone.
         *
         * @param v the width
         * @return this builder
         */
        public Builder embedDim(int v) { embedDim = v; return this; }
        /**
         * Sets {@code depth}.
         *
         * @param v the encoder's block count
         * @return this builder
         */
        public Builder depth(int v) { depth = v; return this; }
        /**
         * Sets {@code num_heads}.
         *
         * @param v the encoder's head count
         * @return this builder
         */
        public Builder numHeads(int v) { numHeads = v; return this; }
        /**
         * Sets {@code mlp_ratio}.
         *
         * @param v the ratio
         * @return this builder
         */
        public Builder mlpRatio(float v) { mlpRatio = v; return this; }
        /**
         * Sets {@code regressor_depth}.
         *
         * @param v the regressor's block count
         * @return this builder
         */
        public Builder regressorDepth(int v) { regressorDepth = v; return this; }
        /**
         * Sets {@code decoder_depth}.
         *
         * @param v the decoder's block count
         * @return this builder
         */
        public Builder decoderDepth(int v) { decoderDepth = v; return this; }
        /**
         * Sets {@code decoder_num_heads}.
         *
         * @param v the head count of the regressor and the decoder
         * @return this builder
         */
        public Builder decoderNumHeads(int v) { decoderNumHeads = v; return this; }
        /**
         * Sets {@code decoder_embed_dim}.
         *
         * @param v the width of the regressor and the decoder
         * @return this builder
         */
        public Builder decoderEmbedDim(int v) { decoderEmbedDim = v; return this; }
        /**
         * Sets {@code layer_scale_init_value}.
         *
         * @param v the encoder's initial LayerScale value; 0 for no gammas
         * @return this builder
         */
        public Builder layerScaleInitValue(float v) { layerScaleInitValue = v; return this; }
        /**
         * Sets {@code decoder_layer_scale_init_value}.
         *
         * @param v the initial LayerScale value of the regressor and the decoder
         * @return this builder
         */
        public Builder decoderLayerScaleInitValue(float v) { decoderLayerScaleInitValue = v; return this; }
        /**
         * Sets {@code align_loss_weight}.
         *
         * @param v the weight
         * @return this builder
         */
        public Builder alignLossWeight(float v) { alignLossWeight = v; return this; }
        /**
         * Sets {@code drop_path_rate}.
         *
         * @param v the rate
         * @return this builder
         */
        public Builder dropPathRate(float v) { dropPathRate = v; return this; }
        /**
         * Sets {@code layer_norm_eps}.
         *
         * @param v the epsilon
         * @return this builder
         */
        public Builder layerNormEps(float v) { layerNormEps = v; return this; }
        /**
         * Sets {@code norm_pix_eps}.
         *
         * @param v the epsilon
         * @return this builder
         */
        public Builder normPixEps(float v) { normPixEps = v; return this; }
        /**
         * Sets {@code target}.
         *
         * @param v the target; not null
         * @return this builder
         */
        public Builder target(Target v) { target = Objects.requireNonNull(v, "target"); return this; }

        /**
         * The configuration, unchecked.
         *
         * @return a configuration of the builder's fields
         */
        public ModelConfig build() {
            return new ModelConfig(imgSize, patchSize, inChans, embedDim, depth, numHeads, mlpRatio, regressorDepth,
                    decoderDepth, decoderNumHeads, decoderEmbedDim, layerScaleInitValue, decoderLayerScaleInitValue,
                    alignLossWeight, dropPathRate, layerNormEps, normPixEps, target);
        }
    }
}
