package org.caejava;

/**
 * What one training step measured. {@code step} counts completed steps (1 after the first);
 * {@code dataMs} is the time the step waited for its batch, {@code computeMs} the native step,
 * {@code imagesPerSecond} the batch size over the wall time since the previous step, and
 * {@code reduceMs} the part of the native step that averaged the gradients over the ranks of a
 * data-parallel run (0 alone).
 */
public record StepMetrics(long step, long totalSteps, long epoch, int batchSize, double lr, double weightDecay,
        float loss,
        float lossMain, float lossAlign, float gradNorm, boolean skipped, double dataMs, double computeMs,
        double forwardMs, double backwardMs, double optimizerMs, double imagesPerSecond, double reduceMs) {}
