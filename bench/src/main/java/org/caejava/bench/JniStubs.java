package org.caejava.bench;

/** The hand-written JNI baseline: stubs in ffib_jni.c that call ffib_noop and ffib_sum. */
final class JniStubs {

    static {
        // Class initialization of the loader runs System.load, which binds these natives.
        if (FfiBenchLibrary.PATH == null) {
            throw new AssertionError("libffibench not loaded");
        }
    }

    private JniStubs() {}

    static native int noop(int x);

    /** {@code address}: a raw native address of {@code n} floats. */
    static native float sum(long address, int n);
}
