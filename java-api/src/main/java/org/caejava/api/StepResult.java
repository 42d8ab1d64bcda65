package org.caejava.api;

/**
 * What one training step (or gradient computation) measured: the losses, the global gradient
 * norm before clipping, whether the update was skipped for a non-finite value, and where the
 * time went (milliseconds). {@code replayed}: forward and backward ran as one recorded CUDA graph,
 * so {@code forwardMs} holds both and {@code backwardMs} is 0. {@code reduceMs}: averaging the
 * gradients and losses over the ranks of the model's {@link Communicator} (0 alone); the losses
 * and the norm are then those of the global batch.
 */
public record StepResult(float loss, float lossMain, float lossAlign, float gradNorm, boolean skipped,
        double forwardMs, double backwardMs, double optimizerMs, double totalMs, boolean replayed, double reduceMs) {}
