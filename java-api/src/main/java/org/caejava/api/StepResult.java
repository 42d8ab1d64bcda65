package org.caejava.api;

/**
 * What one training step (or gradient computation) measured: the losses, the global gradient
 * norm before clipping, whether the update was skipped for a non-finite value, and where the
 * time went (milliseconds). {@code replayed}: forward and backward ran as one recorded CUDA graph,
 * so {@code forwardMs} holds both and {@code backwardMs} is 0.
 */
public record StepResult(float loss, float lossMain, float lossAlign, float gradNorm, boolean skipped,
        double forwardMs, double backwardMs, double optimizerMs, double totalMs, boolean replayed) {}
