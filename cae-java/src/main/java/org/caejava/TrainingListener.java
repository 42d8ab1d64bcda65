package org.caejava;

/** Receives the metrics of every training step, on the training thread. */
@FunctionalInterface
public interface TrainingListener {

    void onStep(StepMetrics metrics);

    /** Called after a checkpoint was written. */
    default void onCheckpoint(java.nio.file.Path file, TrainingState state) {}
}
