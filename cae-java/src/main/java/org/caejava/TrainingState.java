package org.caejava;

/**
 * Where a training run stands, stored in a checkpoint's metadata: optimizer steps completed
 * ({@code step}, which is also the next step's index in the schedule), the epoch, the updates
 * AdamW has applied (steps skipped for non-finite values do not count), and the run seed.
 */
public record TrainingState(long step, long epoch, long optimizerSteps, long seed) {

    public static final TrainingState INITIAL = new TrainingState(0, 0, 0, 0);
}
