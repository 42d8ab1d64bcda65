package org.caejava;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.data.Dataset;
import org.caejava.data.TensorDataset;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** NaN or Inf in the loss or the gradients skips the step; too many in a row stop the run. */
class NonFiniteStepsTest {

    static Context ctx;

    @TempDir
    Path dir;

    @BeforeAll
    static void open() {
        ctx = Context.builder().backend(Backend.CPU).threads(2).build();
    }

    @AfterAll
    static void close() {
        ctx.close();
    }

    /** The data of {@code base}, with NaN in the images whose index {@code poisoned} selects. */
    static Dataset poisoned(Dataset base, java.util.function.LongPredicate poisoned) {
        return new Dataset() {
            public long size() { return base.size(); }
            public int channels() { return base.channels(); }
            public int height() { return base.height(); }
            public int width() { return base.width(); }
            public void load(long index, long epoch, long seed, MemorySegment dst) {
                base.load(index, epoch, seed, dst);
                if (poisoned.test(index)) {
                    dst.set(ValueLayout.JAVA_FLOAT, 4, Float.NaN);
                }
            }
        };
    }

    @Test
    void aPoisonedBatchIsSkippedAndTrainingGoesOn() {
        try (Arena arena = Arena.ofShared()) {
            Dataset data = poisoned(TensorDataset.of(CaeModelTest.randomImages(arena, 40, CaeModelTest.TINY, 1)),
                    i -> i == 7);
            List<StepMetrics> steps = new ArrayList<>();
            CaeTrainer trainer = CaeTrainer.builder().context(ctx).config(CaeModelTest.TINY).data(data).steps(10)
                    .batchSize(8).seed(2).listener(steps::add).build();
            try (CaeModel m = trainer.fit()) {
                long skipped = steps.stream().filter(StepMetrics::skipped).count();
                assertEquals(2, skipped, "image 7 is in one batch of each of the 2 epochs");
                assertEquals(2, trainer.skippedSteps());
                assertEquals(8, m.state().optimizerSteps(), "skipped steps are not optimizer steps");
                assertEquals(10, m.state().step());
                for (StepMetrics s : steps) {
                    assertTrue(s.skipped() != Float.isFinite(s.loss()), "step " + s.step() + " loss " + s.loss());
                }
                for (float v : m.parameter("encoder.blocks.0.attn.qkv.weight")) {
                    assertTrue(Float.isFinite(v));
                }
            }
        }
    }

    @Test
    void consecutiveBadStepsStopTheRunAndKeepTheLastGoodWeights() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            Dataset clean = TensorDataset.of(CaeModelTest.randomImages(arena, 16, CaeModelTest.TINY, 1));
            Path ckpt = dir.resolve("ckpt.safetensors");
            float[] good;
            try (CaeModel m = CaeTrainer.builder().context(ctx).config(CaeModelTest.TINY).data(clean).steps(4)
                    .batchSize(8).seed(3).checkpoint(ckpt, 2).build().fit()) {
                good = m.parameter("decoder.head.weight");
            }
            try (CaeModel m = CaeModel.load(ctx, ckpt)) {
                CaeTrainer trainer = CaeTrainer.builder().model(m).data(poisoned(clean, i -> true)).steps(100)
                        .batchSize(8).maxBadSteps(3).checkpoint(ckpt, 1).build();
                NonFiniteLossException e = assertThrows(NonFiniteLossException.class, trainer::fit);
                assertEquals(3, e.consecutive());
                assertEquals(7, e.step());
                assertTrue(e.getMessage().contains("3 consecutive steps") && e.getMessage().contains(ckpt.toString()),
                        e.getMessage());
                assertArrayEquals(good, m.parameter("decoder.head.weight"), "nothing changed the weights");
            }
            try (CaeModel last = CaeModel.load(ctx, ckpt)) {
                assertEquals(4, last.state().step(), "the checkpoint is still the last good one");
                assertArrayEquals(good, last.parameter("decoder.head.weight"));
            }
            assertTrue(Files.exists(ckpt));
        }
    }
}
