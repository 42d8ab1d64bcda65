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

    /**
     * Called once before the first step of a data-parallel run, on rank 0 only. Does nothing by default.
     *
     * @param ranks the number of processes training together
     * @param reduction how their gradients are summed, for example {@code "NCCL 2.21.5 on device memory"}
     */
    default void onDataParallelStart(int ranks, String reduction) {}
}
