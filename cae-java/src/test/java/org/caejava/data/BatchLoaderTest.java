package org.caejava.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.caejava.api.DType;
import org.caejava.api.Tensor;
import org.caejava.mask.RandomMaskGenerator;
import org.junit.jupiter.api.Test;

class BatchLoaderTest {

    /** Image i is filled with the value i, so a batch tells which samples it holds. */
    static TensorDataset indexed(Arena arena, int n) {
        Tensor t = Tensor.allocate(arena, DType.F32, n, 1, 2, 2);
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < 4; k++) {
                t.setFloat(i, i, 0, k / 2, k % 2);
            }
        }
        return TensorDataset.of(t);
    }

    static List<float[]> run(TensorDataset data, int threads, long start, long end) {
        List<float[]> out = new ArrayList<>();
        try (BatchLoader loader = new BatchLoader(null, data, new RandomMaskGenerator(4, 2), 5, 7, start, end,
                threads, 3)) {
            for (long s = start; s < end; s++) {
                BatchLoader.Batch b = loader.next();
                assertEquals(s, b.step());
                assertEquals(s / 4, b.epoch());
                float[] ids = new float[5];
                for (int i = 0; i < 5; i++) {
                    ids[i] = b.images().getFloat(i, 0, 0, 0);
                    int masked = 0;
                    for (int p = 0; p < 4; p++) {
                        masked += b.mask().getInt(i, p);
                    }
                    assertEquals(2, masked);
                }
                out.add(ids);
                loader.release(b);
            }
            assertTrue(loader.waitShare() >= 0 && loader.waitShare() <= 1);
        }
        return out;
    }

    @Test
    void batchesComeInStepOrderWhateverTheWorkers() {
        try (Arena arena = Arena.ofShared()) {
            TensorDataset data = indexed(arena, 22);  // 4 steps per epoch, 2 images dropped
            List<float[]> one = run(data, 1, 0, 12);
            List<float[]> three = run(data, 3, 0, 12);
            for (int s = 0; s < 12; s++) {
                assertArrayEquals(one.get(s), three.get(s), "step " + s);
            }
            // An epoch visits distinct samples; epochs differ in order.
            Set<Float> epoch0 = new HashSet<>();
            for (int s = 0; s < 4; s++) {
                for (float v : one.get(s)) {
                    assertTrue(epoch0.add(v), "sample " + v + " twice in epoch 0");
                }
            }
            assertTrue(!java.util.Arrays.equals(one.get(0), one.get(4)), "epoch 1 starts with another batch");
            // Starting later gives the same batches as running through.
            List<float[]> resumed = run(data, 2, 5, 9);
            for (int s = 5; s < 9; s++) {
                assertArrayEquals(one.get(s), resumed.get(s - 5), "step " + s + " after a resume");
            }
        }
    }

    /** Images and masks of steps [0, steps) of the given share of batches of 6, as bytes. */
    static List<byte[]> shareOf(TensorDataset data, BatchLoader.Share share, int steps) {
        List<byte[]> out = new ArrayList<>();
        try (BatchLoader loader = new BatchLoader(null, data, new RandomMaskGenerator(4, 2), 6, share, 7, 0, steps, 2,
                3, false)) {
            for (int s = 0; s < steps; s++) {
                BatchLoader.Batch b = loader.next();
                byte[] images = b.images().segment().toArray(ValueLayout.JAVA_BYTE);
                byte[] mask = b.mask().segment().toArray(ValueLayout.JAVA_BYTE);
                byte[] both = java.util.Arrays.copyOf(images, images.length + mask.length);
                System.arraycopy(mask, 0, both, images.length, mask.length);
                out.add(both);
                loader.release(b);
            }
        }
        return out;
    }

    @Test
    void theSharesOfThreeRanksTogetherAreTheWholeBatch() {
        try (Arena arena = Arena.ofShared()) {
            TensorDataset data = indexed(arena, 25);  // 4 steps of 6 per epoch
            List<byte[]> whole = shareOf(data, BatchLoader.Share.WHOLE, 9);
            List<List<byte[]>> ranks = new ArrayList<>();
            for (int r = 0; r < 3; r++) {
                ranks.add(shareOf(data, BatchLoader.Share.of(6, r, 3), 9));
            }
            int imageBytes = 4 * Float.BYTES;
            for (int s = 0; s < 9; s++) {
                byte[] w = whole.get(s);
                for (int r = 0; r < 3; r++) {
                    byte[] part = ranks.get(r).get(s);
                    // rank r: images of rows 2r, 2r+1, then their masks
                    byte[] wantImages = java.util.Arrays.copyOfRange(w, 2 * r * imageBytes, (2 * r + 2) * imageBytes);
                    byte[] wantMask = java.util.Arrays.copyOfRange(w, 6 * imageBytes + 2 * r * 4,
                            6 * imageBytes + (2 * r + 2) * 4);
                    assertArrayEquals(wantImages, java.util.Arrays.copyOfRange(part, 0, 2 * imageBytes),
                            "images of rank " + r + " at step " + s);
                    assertArrayEquals(wantMask, java.util.Arrays.copyOfRange(part, 2 * imageBytes, part.length),
                            "masks of rank " + r + " at step " + s);
                }
            }
        }
    }

    @Test
    void aBatchThatDoesNotSplitEvenlyIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BatchLoader.Share.of(6, 0, 4));
        assertTrue(e.getMessage().contains("6 images cannot be split evenly over 4 ranks"), e.getMessage());
    }

    @Test
    void confinedDataIsLoadedOnTheCallersThread() {
        try (Arena arena = Arena.ofConfined()) {
            TensorDataset data = indexed(arena, 22);
            assertEquals(6, run(data, 2, 0, 6).size());
        }
    }

    @Test
    void loadErrorsNameTheImage() {
        Dataset broken = new Dataset() {
            public long size() { return 8; }
            public int channels() { return 1; }
            public int height() { return 2; }
            public int width() { return 2; }
            public void load(long index, long epoch, long seed, MemorySegment dst) {
                if (index == 3) {
                    throw new IllegalArgumentException("corrupt pixels");
                }
                dst.set(ValueLayout.JAVA_FLOAT, 0, index);
            }
        };
        try (BatchLoader loader = new BatchLoader(null, broken, new RandomMaskGenerator(4, 1), 8, 1, 0, 1, 1, 1)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, loader::next);
            assertTrue(e.getMessage().contains("loading image 3") && e.getMessage().contains("corrupt pixels"),
                    e.getMessage());
        }
    }

    @Test
    void anUnreadableImageIsReplacedAndCountedUnlessStrict() {
        Dataset flaky = new Dataset() {
            public long size() { return 8; }
            public int channels() { return 1; }
            public int height() { return 2; }
            public int width() { return 2; }
            public void load(long index, long epoch, long seed, MemorySegment dst) {
                if (index == 3) {
                    throw new ImageDataException("photos/cat.jpg: truncated JPEG");
                }
                dst.set(ValueLayout.JAVA_FLOAT, 0, index);
            }
        };
        try (BatchLoader loader = new BatchLoader(null, flaky, new RandomMaskGenerator(4, 1), 8, 1, 0, 2, 1, 1)) {
            for (int s = 0; s < 2; s++) {
                BatchLoader.Batch b = loader.next();
                Set<Float> seen = new HashSet<>();
                for (int i = 0; i < 8; i++) {
                    seen.add(b.images().getFloat(i, 0, 0, 0));
                }
                assertTrue(!seen.contains(3f), "image 3 never reaches a batch");
                assertEquals(7, seen.size(), "one image appears twice, in place of image 3");
                loader.release(b);
            }
            assertEquals(2, loader.unreadableImages());
            assertTrue(loader.unreadableExamples().get(0).contains("photos/cat.jpg"));
        }
        try (BatchLoader strict = new BatchLoader(null, flaky, new RandomMaskGenerator(4, 1), 8, 1, 0, 1, 1, 1, true)) {
            ImageDataException e = assertThrows(ImageDataException.class, strict::next);
            assertTrue(e.getMessage().contains("loading image 3") && e.getMessage().contains("photos/cat.jpg"),
                    e.getMessage());
        }
    }
}
