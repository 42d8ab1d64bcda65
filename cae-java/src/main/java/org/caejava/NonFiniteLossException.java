package org.caejava;

import java.nio.file.Path;

/**
 * Training stopped because too many consecutive steps had a non-finite loss or gradient norm.
 * Those steps changed nothing, so the model (and the last checkpoint written) hold the weights of
 * the last good step. Owns nothing; its fields are final, so it can be read from any thread.
 */
public final class NonFiniteLossException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /** The step at which training stopped. */
    private final long step;
    /** How many steps in a row were not finite. */
    private final int consecutive;

    NonFiniteLossException(long step, int consecutive, float loss, float gradNorm, Path checkpoint) {
        super("training stopped at step " + step + ": " + consecutive + " consecutive steps had a non-finite loss "
                + "or gradient (last: loss " + loss + ", gradient norm " + gradNorm + "); the weights are those of the "
                + "last good step" + (checkpoint == null ? "" : ", and " + checkpoint + " holds the last checkpoint")
                + ". Lower the learning rate, check the data for NaN/Inf, or resume from the checkpoint");
        this.step = step;
        this.consecutive = consecutive;
    }

    /**
     * The step at which training stopped (completed steps, counting the skipped ones).
     *
     * @return the number of steps done when training stopped
     */
    public long step() {
        return step;
    }

    /**
     * How many steps in a row had a non-finite loss or gradient norm when training stopped.
     *
     * @return the count of consecutive skipped steps
     */
    public int consecutive() {
        return consecutive;
    }
}
