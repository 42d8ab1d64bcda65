package org.caejava.api;

import org.caejava.bindings.CaeNative;

/**
 * Which array of a model parameter to read or write. Constants only: owns nothing, immutable, safe
 * to use from any thread.
 */
public enum Slot {
    /** The parameter itself. */
    VALUE(CaeNative.CAE_SLOT_VALUE()),
    /** Its gradient from the last training step or gradient computation. */
    GRAD(CaeNative.CAE_SLOT_GRAD()),
    /** AdamW's first moment. */
    EXP_AVG(CaeNative.CAE_SLOT_EXP_AVG()),
    /** AdamW's second moment. */
    EXP_AVG_SQ(CaeNative.CAE_SLOT_EXP_AVG_SQ());

    private final int code;

    Slot(int code) {
        this.code = code;
    }

    /**
     * The value of {@code cae_slot}.
     *
     * @return the code
     */
    public int code() {
        return code;
    }
}
