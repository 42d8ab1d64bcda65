package org.caejava.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.caejava.mask.RandomMaskGenerator;
import org.junit.jupiter.api.Test;

class ImageDatasetTest {

    static float[] load(Dataset d, long index, long epoch, long seed) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dst = arena.allocate(d.floatsPerSample() * 4);
            d.load(index, epoch, seed, dst);
            return dst.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    static float[] plain(Dataset d, long index) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dst = arena.allocate(d.floatsPerSample() * 4);
            d.loadPlain(index, dst);
            return dst.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    @Test
    void fashionMnistStatisticsAreTheKnownOnes() throws IOException {
        try (ImageSource train = Datasets.fashionMnist("train", true)) {
            ImageDataset d = ImageDataset.builder(train).size(28).normalization(Normalization.identity(1)).build();
            Normalization all = d.computeStatistics(10_000);
            // Over the embedded 10,000 images (see the README beside them): 0.28631, 0.35402.
            assertEquals(0.28631, all.mean()[0], 1e-4);
            assertEquals(0.35402, all.std()[0], 1e-4);
            // A sample of 1,000 evenly spaced images comes close, and is the same every time.
            Normalization some = d.computeStatistics(1000);
            assertEquals(0.286, some.mean()[0], 0.005);
            assertEquals(0.353, some.std()[0], 0.005);
            assertEquals(some, d.computeStatistics(1000));
            // Without a normalization the source's known statistics are used.
            assertEquals(Datasets.FASHION_MNIST_NORMALIZATION, ImageDataset.builder(train).size(28).build()
                    .normalization());
        }
    }

    @Test
    void computedStatisticsOfAKnownImage() throws IOException {
        try (ImageSource photos = ImageFolderSource.open(Fixtures.images().resolve("formats"), 3)) {
            // Computed over the plain path when neither the caller nor the source gives statistics.
            ImageDataset d = ImageDataset.builder(photos).size(16).build();
            Normalization n = d.normalization();
            assertEquals(3, n.channels());
            for (int c = 0; c < 3; c++) {
                assertTrue(n.mean()[c] > 0.05 && n.mean()[c] < 0.95, n.toString());
                assertTrue(n.std()[c] > 0.05 && n.std()[c] < 0.6, n.toString());
            }
        }
        PixelStatistics s = new PixelStatistics(2);
        s.add(new byte[] {0, (byte) 255, (byte) 255, (byte) 255}, 4);
        // channel 0: {0, 255} -> mean 0.5, std 0.5; channel 1: {255, 255} -> mean 1, no spread -> std 1.
        assertArrayEquals(new float[] {0.5f, 1f}, s.normalization().mean());
        assertArrayEquals(new float[] {0.5f, 1f}, s.normalization().std());
    }

    @Test
    void plainPathOfAnImageAtTheOutputSizeIsItsPixelsNormalized() throws IOException {
        try (ImageSource train = Datasets.fashionMnist("train", true)) {
            Normalization norm = Datasets.FASHION_MNIST_NORMALIZATION;
            ImageDataset d = ImageDataset.builder(train).size(28).build();
            for (long i : new long[] {0, 17, 9999}) {
                float[] got = plain(d, i);
                byte[] px = train.view(i).toArray(ValueLayout.JAVA_BYTE);
                for (int p = 0; p < 784; p++) {
                    assertEquals(norm.apply(0, px[p] & 0xFF), got[p], 1e-6, "image " + i + " pixel " + p);
                }
            }
            // Three channels from gray: the same plane three times, each with its own statistics.
            ImageDataset rgb = ImageDataset.builder(train).size(28).channels(3)
                    .normalization(Normalization.imagenet()).build();
            float[] three = plain(rgb, 5);
            byte[] px = train.view(5).toArray(ValueLayout.JAVA_BYTE);
            for (int c = 0; c < 3; c++) {
                for (int p = 0; p < 784; p++) {
                    assertEquals(Normalization.imagenet().apply(c, px[p] & 0xFF), three[c * 784 + p], 1e-6);
                }
            }
        }
    }

    @Test
    void trainingSamplesReplayAndVary() throws IOException {
        try (ImageSource train = Datasets.fashionMnist("train", true)) {
            ImageDataset d = ImageDataset.builder(train).size(28).build();
            assertArrayEquals(load(d, 3, 2, 9), load(d, 3, 2, 9));
            int differ = 0;
            for (long e = 0; e < 10; e++) {
                differ += java.util.Arrays.equals(load(d, 3, e, 9), load(d, 3, e + 1, 9)) ? 0 : 1;
            }
            assertTrue(differ >= 9, "epochs give other crops: " + differ);
            // A flip-only augmentation mirrors the plain image exactly.
            ImageDataset flip = ImageDataset.builder(train).size(28)
                    .augmentation(Augmentation.none().withFlipProbability(1)).build();
            float[] p = plain(flip, 7);
            float[] f = load(flip, 7, 0, 1);
            for (int y = 0; y < 28; y++) {
                for (int x = 0; x < 28; x++) {
                    assertEquals(p[y * 28 + 27 - x], f[y * 28 + x]);
                }
            }
        }
    }

    @Test
    void photosResizeToTheOutputSize() throws IOException {
        try (ImageSource photos = ImageFolderSource.open(Fixtures.images().resolve("photos"), 3)) {
            ImageDataset d = ImageDataset.builder(photos).size(64).normalization(Normalization.identity(3)).build();
            assertEquals(64, d.height());
            assertEquals(Augmentation.official().toString(), d.augmentation().toString());
            for (long i = 0; i < d.size(); i++) {
                float[] a = load(d, i, 0, 1);
                assertEquals(3 * 64 * 64, a.length);
                for (float v : a) {
                    assertTrue(v >= 0 && v <= 1, "identity normalization keeps [0, 1]: " + v);
                }
                // Rounded to 8 bits before normalizing: values are multiples of 1/255.
                assertEquals(Math.round(a[100] * 255), a[100] * 255, 1e-3);
            }
            assertEquals(List.of("animals", "people", "things"), d.classNames());
            assertEquals(2, d.label(3));
        }
    }

    @Test
    void batchLoaderOnTwoThreadsGivesTheSameBatchesAsOne() throws IOException {
        try (ImageSource train = Datasets.fashionMnist("train", true)) {
            ImageDataset d = ImageDataset.builder(train).size(28).build();
            assertTrue(d.isAccessibleBy(new Thread(() -> {})));
            List<float[]> one = batches(d, 1);
            List<float[]> two = batches(d, 2);
            for (int s = 0; s < one.size(); s++) {
                assertArrayEquals(one.get(s), two.get(s), "step " + s);
            }
            assertFalse(java.util.Arrays.equals(one.get(0), one.get(1)));
        }
    }

    /** Steps 0..5 of a run (batch 16, seed 3), the images of each batch as one array. */
    private static List<float[]> batches(ImageDataset d, int threads) {
        List<float[]> out = new ArrayList<>();
        try (BatchLoader loader = new BatchLoader(null, d, new RandomMaskGenerator(49, 24), 16, 3, 0, 6, threads, 3)) {
            for (int s = 0; s < 6; s++) {
                BatchLoader.Batch b = loader.next();
                float[] images = b.images().toFloatArray();
                assertEquals(16 * 784, images.length);
                // Each sample is the dataset's own load of (index, epoch, seed).
                int[] order = EpochOrder.permutation(d.size(), 3, 0);
                assertArrayEquals(load(d, order[s * 16], 0, 3), java.util.Arrays.copyOf(images, 784));
                out.add(images);
                loader.release(b);
            }
        }
        return out;
    }
}
