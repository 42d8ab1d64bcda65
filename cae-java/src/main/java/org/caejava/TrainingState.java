package org.caejava;

/**
 * Where a training run stands, stored in a checkpoint's metadata: optimizer steps completed
 * ({@code step}, which is also the next step's index in the schedule), the epoch, the updates
 * AdamW has applied (steps skipped for non-finite values do not count), and the run seed. A plain
 * value: owns nothing, immutable, safe to share between threads.
 *
 * @param step the optimizer steps completed, skipped ones included
 * @param epoch the epochs completed
 * @param optimizerSteps the updates AdamW has applied
 * @param seed the run seed
 */
public record TrainingState(long step, long epoch, long optimizerSteps, long seed) {

    /** Before any step: everything 0, seed 0. */
    public static final TrainingState INITIAL = new TrainingState(0, 0, 0, 0);
}
