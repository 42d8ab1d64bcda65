package org.caejava;

import org.caejava.api.Tensor;

/**
 * Encoder features of a batch of images, both F32 [B, D]: the cls token and the mean of the patch
 * tokens, each after the encoder's final LayerNorm. The record owns nothing: the tensors belong
 * to the arena they were allocated in, and follow {@link Tensor}'s threading rules.
 *
 * @param cls the cls token of each image, F32 [B, D]
 * @param mean the mean of each image's patch tokens, F32 [B, D]
 */
public record Features(Tensor cls, Tensor mean) {}
