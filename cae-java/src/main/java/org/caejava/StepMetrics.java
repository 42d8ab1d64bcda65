package org.caejava;

/**
 * What one training step measured. {@code step} counts completed steps (1 after the first);
 * {@code dataMs} is the time the step waited for its batch, {@code computeMs} the native step,
 * {@code imagesPerSecond} the batch size over the wall time since the previous step, and
 * {@code reduceMs} the part of the native step that averaged the gradients over the ranks of a
 * data-parallel run (0 alone). Times are in milliseconds. A plain value: owns nothing, immutable,
 * safe to share between threads.
 *
 * @param step the steps completed, this one included
 * @param totalSteps the steps of the whole run
 * @param epoch the epoch the batch was drawn from, counted from 0
 * @param batchSize the images of the (global) batch
 * @param lr the learning rate of this step
 * @param weightDecay the weight decay of this step
 * @param loss the total loss
 * @param lossMain the pixel reconstruction loss
 * @param lossAlign the alignment loss
 * @param gradNorm the global L2 norm of the gradients, before clipping
 * @param skipped whether the update was skipped for a non-finite loss or gradient norm
 * @param dataMs the time the step waited for its batch
 * @param computeMs the wall time of the native step
 * @param forwardMs the forward pass, as the native step measured it
 * @param backwardMs the backward pass, as the native step measured it
 * @param optimizerMs the optimizer update, as the native step measured it
 * @param imagesPerSecond the batch size over the wall time since the previous step
 * @param reduceMs the time spent averaging gradients over the ranks (0 alone)
 */
public record StepMetrics(long step, long totalSteps, long epoch, int batchSize, double lr, double weightDecay,
        float loss,
        float lossMain, float lossAlign, float gradNorm, boolean skipped, double dataMs, double computeMs,
        double forwardMs, double backwardMs, double optimizerMs, double imagesPerSecond, double reduceMs) {}
