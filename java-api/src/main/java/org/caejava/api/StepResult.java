package org.caejava.api;

/**
 * What one training step (or gradient computation) measured: the losses, the global gradient
 * norm before clipping, whether the update was skipped for a non-finite value, and where the
 * time went (milliseconds). {@code replayed}: forward and backward ran as one recorded CUDA graph,
 * so {@code forwardMs} holds both and {@code backwardMs} is 0. {@code reduceMs}: averaging the
 * gradients and losses over the ranks of the model's {@link Communicator} (0 alone); the losses
 * and the norm are then those of the global batch. A plain value: owns nothing, immutable, safe
 * to share between threads.
 *
 * @param loss the total loss: {@code lossMain} plus the alignment weight times {@code lossAlign}
 * @param lossMain the mean squared error of the predicted pixels of the masked patches
 * @param lossAlign the mean squared error of the alignment between predicted and encoded
 *     representations of the masked patches
 * @param gradNorm the global L2 norm of the gradients, before clipping
 * @param skipped true when the loss or the gradients were not finite, so nothing was updated
 * @param forwardMs milliseconds of the forward pass (forward and backward when {@code replayed})
 * @param backwardMs milliseconds of the backward pass (0 when {@code replayed})
 * @param optimizerMs milliseconds of the optimizer update (0 when nothing was updated)
 * @param totalMs milliseconds of the whole call
 * @param replayed whether forward and backward ran as one recorded CUDA graph
 * @param reduceMs milliseconds spent averaging gradients and losses over the ranks (0 alone)
 */
public record StepResult(float loss, float lossMain, float lossAlign, float gradNorm, boolean skipped,
        double forwardMs, double backwardMs, double optimizerMs, double totalMs, boolean replayed, double reduceMs) {}
