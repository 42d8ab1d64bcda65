package org.caejava.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;
import org.lwjgl.system.JNI;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The cost of a native call taking a buffer, {@code float ffib_sum(const float* p, int64_t n)}
 * over 16 floats (1, 2, ..., 16: the sum is 136), with the buffer from each kind of arena,
 * from a heap array, or as a raw address.
 *
 * <p>A segment argument is checked and kept alive for the call by its arena's scope: the kind
 * of arena is what differs between the rows of one technology.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Thread)
@Fork(value = 2, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class SumCallBenchmark {

    static final int N = 16;
    static final float EXPECTED_SUM = N * (N + 1) / 2f;

    /** Global memory is never freed: one buffer per JVM. */
    private static final MemorySegment GLOBAL = filled(Arena.global());

    /** Fields, not constants, so the JIT cannot fold the arguments. */
    public long n = N;
    public int nInt = N;

    private Arena confinedArena;
    private Arena sharedArena;
    private MemorySegment confined;
    private MemorySegment auto;
    private MemorySegment global;
    private MemorySegment shared;
    private float[] heap;
    private long address;

    /** Runs on the benchmark thread (Scope.Thread), which the confined arena is bound to. */
    @Setup
    public void setup() {
        confinedArena = Arena.ofConfined();
        sharedArena = Arena.ofShared();
        confined = filled(confinedArena);
        auto = filled(Arena.ofAuto());
        global = GLOBAL;
        shared = filled(sharedArena);
        heap = new float[N];
        for (int i = 0; i < N; i++) {
            heap[i] = i + 1;
        }
        address = confined.address();
        if (FfiBenchLibrary.PATH == null) {
            throw new AssertionError("libffibench not loaded");
        }
    }

    @TearDown
    public void tearDown() {
        confinedArena.close();
        sharedArena.close();
    }

    private static MemorySegment filled(Arena arena) {
        MemorySegment s = arena.allocate(ValueLayout.JAVA_FLOAT, N);
        for (int i = 0; i < N; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, i, i + 1);
        }
        return s;
    }

    // ---------------------------------------------------------------- Panama, plain downcall

    @Benchmark
    public float panamaConfined() throws Throwable {
        return (float) FfiBenchLibrary.SUM.invokeExact(confined, n);
    }

    @Benchmark
    public float panamaAuto() throws Throwable {
        return (float) FfiBenchLibrary.SUM.invokeExact(auto, n);
    }

    @Benchmark
    public float panamaGlobal() throws Throwable {
        return (float) FfiBenchLibrary.SUM.invokeExact(global, n);
    }

    @Benchmark
    public float panamaShared() throws Throwable {
        return (float) FfiBenchLibrary.SUM.invokeExact(shared, n);
    }

    // ---------------------------------------------------------------- Panama, critical(false)

    @Benchmark
    public float criticalConfined() throws Throwable {
        return (float) FfiBenchLibrary.SUM_CRITICAL.invokeExact(confined, n);
    }

    @Benchmark
    public float criticalAuto() throws Throwable {
        return (float) FfiBenchLibrary.SUM_CRITICAL.invokeExact(auto, n);
    }

    @Benchmark
    public float criticalGlobal() throws Throwable {
        return (float) FfiBenchLibrary.SUM_CRITICAL.invokeExact(global, n);
    }

    @Benchmark
    public float criticalShared() throws Throwable {
        return (float) FfiBenchLibrary.SUM_CRITICAL.invokeExact(shared, n);
    }

    /** critical(true) with a heap array, wrapped at the call as real code would. */
    @Benchmark
    public float criticalHeapArray() throws Throwable {
        return (float) FfiBenchLibrary.SUM_CRITICAL_HEAP.invokeExact(MemorySegment.ofArray(heap), n);
    }

    // ---------------------------------------------------------------- JNI, raw address

    @Benchmark
    public float jniAddress() {
        return JniStubs.sum(address, nInt);
    }

    /**
     * LWJGL 3.3.6's {@code JNI.invokePPF(long, long, long function)}: the second argument is
     * passed as a 64-bit value, matching {@code int64_t n} ({@code invokePF(long, int, long)}
     * would pass a 32-bit int where the C function reads 64 bits).
     */
    @Benchmark
    public float lwjglAddress() {
        return JNI.invokePPF(address, n, FfiBenchLibrary.SUM_ADDRESS);
    }
}
