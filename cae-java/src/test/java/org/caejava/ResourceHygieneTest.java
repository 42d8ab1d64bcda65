package org.caejava;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.api.MemoryStats;
import org.caejava.api.NativeLibrary;
import org.caejava.api.Tensor;
import org.caejava.data.TensorDataset;
import org.junit.jupiter.api.Test;

/** Native memory returns to its baseline once everything is closed, and a long loop does not grow the process. */
class ResourceHygieneTest {

    private static long rssKb() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D+", ""));
            }
        }
        return -1;
    }

    private static void createTrainClose(Tensor images) {
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(2).build();
                CaeModel model = CaeTrainer.builder().context(ctx).config(CaeModelTest.TINY)
                        .data(TensorDataset.of(images)).steps(1).batchSize(8).build().fit();
                Arena arena = Arena.ofConfined()) {
            model.encode(images.slice(0, 2), arena);
        }
    }

    @Test
    void nativeMemoryReturnsToItsBaselineAndTheProcessDoesNotGrow() throws IOException {
        try (Arena arena = Arena.ofShared()) {
            Tensor images = CaeModelTest.randomImages(arena, 8, CaeModelTest.TINY, 1);
            MemoryStats baseline = NativeLibrary.memoryStats();
            for (int i = 0; i < 5; i++) {  // warm up: JIT, thread pools, per-thread scratch
                createTrainClose(images);
            }
            assertEquals(baseline, NativeLibrary.memoryStats(), "contexts, models and buffers all freed");
            System.gc();
            long before = rssKb();
            int rounds = 60;
            for (int i = 0; i < rounds; i++) {
                createTrainClose(images);
            }
            System.gc();
            long after = rssKb();
            assertEquals(baseline, NativeLibrary.memoryStats());
            System.out.printf("RSS %d kB -> %d kB after %d create/train/close rounds%n", before, after, rounds);
            // A model of this size holds ~2 MB of native memory; a leak per round would show as > 60 MB.
            assertTrue(after - before < 32 * 1024, "the process grew by " + (after - before) + " kB over " + rounds
                    + " rounds");
        }
    }
}
