package org.caejava;

/**
 * Receives the metrics of every training step, on the training thread. The trainer calls a
 * listener from the thread that runs {@link CaeTrainer#fit()}, one call at a time; a listener that
 * shares state with other threads synchronizes that itself. A slow listener slows training.
 */
@FunctionalInterface
public interface TrainingListener {

    /**
     * Called after every step.
     *
     * @param metrics what the step measured
     */
    void onStep(StepMetrics metrics);

    /**
     * Called after a checkpoint was written. Does nothing by default.
     *
     * @param file the checkpoint file
     * @param state the training state stored in it
     */
    default void onCheckpoint(java.nio.file.Path file, TrainingState state) {}
}
