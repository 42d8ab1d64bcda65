package org.caejava.api;

/**
 * Which array of a model parameter to read or write. Constants only: owns nothing, immutable, safe
 * to use from any thread.
 */
public enum Slot {
    /** The parameter itself. */
    VALUE,
    /** Its gradient from the last training step or gradient computation. */
    GRAD,
    /** AdamW's first moment. */
    EXP_AVG,
    /** AdamW's second moment. */
    EXP_AVG_SQ
}
