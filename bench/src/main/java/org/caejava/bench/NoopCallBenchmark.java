package org.caejava.bench;

import java.util.concurrent.TimeUnit;
import org.caejava.api.NativeLibrary;
import org.caejava.bindings.CaeNative;
import org.lwjgl.system.JNI;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.CompilerControl;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The cost of one trivial native call, {@code int32_t ffib_noop(int32_t x)} (returns x + 1),
 * through each binding technology, and of libcae's {@code cae_abi_version()} through our
 * jextract-generated bindings.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
@Fork(value = 2, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class NoopCallBenchmark {

    /** A field, not a constant, so the JIT cannot fold the argument. */
    public int x = 41;

    @Setup
    public void setup() {
        NativeLibrary.load();
        if (FfiBenchLibrary.PATH == null) {
            throw new AssertionError("libffibench not loaded");
        }
    }

    /** No FFI: an out-of-line Java call, the floor every other row is read against. */
    @Benchmark
    public int javaOutOfLine() {
        return javaNoop(x);
    }

    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    private static int javaNoop(int x) {
        return x + 1;
    }

    @Benchmark
    public int panama() throws Throwable {
        return (int) FfiBenchLibrary.NOOP.invokeExact(x);
    }

    @Benchmark
    public int panamaCritical() throws Throwable {
        return (int) FfiBenchLibrary.NOOP_CRITICAL.invokeExact(x);
    }

    @Benchmark
    public int jni() {
        return JniStubs.noop(x);
    }

    /** LWJGL 3.3.6's generic JNI trampoline {@code JNI.invokeI(int, long function)}. */
    @Benchmark
    public int lwjgl() {
        return JNI.invokeI(x, FfiBenchLibrary.NOOP_ADDRESS);
    }

    /** libcae's {@code int32_t cae_abi_version(void)} through the generated bindings (no argument). */
    @Benchmark
    public int caeBindingsAbiVersion() {
        return CaeNative.cae_abi_version();
    }
}
