package org.caejava;

import org.caejava.api.Tensor;

/**
 * Encoder features of a batch of images, both F32 [B, D]: the cls token and the mean of the patch
 * tokens, each after the encoder's final LayerNorm.
 */
public record Features(Tensor cls, Tensor mean) {}
