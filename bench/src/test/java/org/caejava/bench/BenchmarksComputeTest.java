package org.caejava.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.caejava.bindings.CaeNative;
import org.junit.jupiter.api.Test;
import org.lwjgl.system.JNI;
import org.openjdk.jmh.annotations.Benchmark;

/**
 * Calls every {@code @Benchmark} method once and checks its value, so the benchmarks cannot
 * silently time a broken call. A benchmark method added without an expected value here fails.
 */
class BenchmarksComputeTest {

    @Test
    void everyNoopRowReturnsItsArgumentPlusOne() throws Exception {
        NoopCallBenchmark b = new NoopCallBenchmark();
        b.setup();
        assertEquals(41, b.x);
        checkAll(b, Map.of(
                "javaOutOfLine", 42,
                "panama", 42,
                "panamaCritical", 42,
                "jni", 42,
                "lwjgl", 42,
                "caeBindingsAbiVersion", CaeNative.CAE_ABI_VERSION()));
    }

    @Test
    void everySumRowReturnsTheSumOfOneToSixteen() throws Exception {
        SumCallBenchmark b = new SumCallBenchmark();
        b.setup();
        try {
            float sum = SumCallBenchmark.EXPECTED_SUM;
            assertEquals(136f, sum);
            checkAll(b, Map.ofEntries(
                    Map.entry("panamaConfined", sum),
                    Map.entry("panamaAuto", sum),
                    Map.entry("panamaGlobal", sum),
                    Map.entry("panamaShared", sum),
                    Map.entry("criticalConfined", sum),
                    Map.entry("criticalAuto", sum),
                    Map.entry("criticalGlobal", sum),
                    Map.entry("criticalShared", sum),
                    Map.entry("criticalHeapArray", sum),
                    Map.entry("jniAddress", sum),
                    Map.entry("lwjglAddress", sum)));
        } finally {
            b.tearDown();
        }
    }

    @Test
    void sumReadsTheBufferNotAConstant() throws Throwable {
        // A second, different buffer through each technology: 16 x 0.5 = 8.
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(ValueLayout.JAVA_FLOAT, 16);
            for (int i = 0; i < 16; i++) {
                seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, 0.5f);
            }
            assertEquals(8f, (float) FfiBenchLibrary.SUM.invokeExact(seg, 16L));
            assertEquals(8f, (float) FfiBenchLibrary.SUM_CRITICAL.invokeExact(seg, 16L));
            assertEquals(8f, JniStubs.sum(seg.address(), 16));
            assertEquals(8f, JNI.invokePPF(seg.address(), 16L, FfiBenchLibrary.SUM_ADDRESS));
            assertEquals(3f, JniStubs.sum(seg.address(), 6));
        }
        float[] half = new float[16];
        Arrays.fill(half, 0.5f);
        assertEquals(8f, (float) FfiBenchLibrary.SUM_CRITICAL_HEAP.invokeExact(
                MemorySegment.ofArray(half), 16L));
    }

    private static void checkAll(Object benchmark, Map<String, Object> expected) throws Exception {
        Set<String> found = new TreeSet<>();
        for (Method m : benchmark.getClass().getDeclaredMethods()) {
            if (!m.isAnnotationPresent(Benchmark.class)) {
                continue;
            }
            found.add(m.getName());
            assertTrue(expected.containsKey(m.getName()),
                    () -> "no expected value for benchmark " + m.getName() + " in this test");
            assertEquals(expected.get(m.getName()), m.invoke(benchmark), () -> "benchmark " + m.getName());
        }
        assertEquals(new TreeSet<>(expected.keySet()), found,
                () -> "benchmarks expected but missing: " + expected.keySet().stream()
                        .filter(k -> !found.contains(k)).collect(Collectors.joining(", ")));
    }
}
