package org.caejava.check;

/** The CUDA backend disagreed with the CPU in the self-check; the message carries the figures. */
public final class CudaMismatchException extends IllegalStateException {

    private final transient SelfCheckResult result;

    public CudaMismatchException(SelfCheckResult result, String advice) {
        super(result.summary() + ". " + advice);
        this.result = result;
    }

    public SelfCheckResult result() {
        return result;
    }
}
