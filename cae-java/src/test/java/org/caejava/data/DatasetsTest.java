package org.caejava.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DatasetsTest {

    @TempDir
    Path tmp;

    private static int[] labelCounts(ImageSource s) {
        int[] counts = new int[10];
        for (long i = 0; i < s.size(); i++) {
            counts[s.label(i)]++;
        }
        return counts;
    }

    @Test
    void embeddedFashionMnistHas10kTrainingAnd2kTestImages() throws IOException {
        try (ImageSource train = Datasets.fashionMnist("train", true);
                ImageSource test = Datasets.fashionMnist("test", true)) {
            assertEquals(10_000, train.size());
            assertEquals(2_000, test.size());
            for (ImageSource s : List.of(train, test)) {
                assertEquals(28, s.width(0));
                assertEquals(28, s.height(0));
                assertEquals(1, s.channels());
                assertEquals(Datasets.FASHION_MNIST_CLASSES, s.classNames());
                assertEquals(Datasets.FASHION_MNIST_NORMALIZATION, s.knownNormalization());
                for (int c : labelCounts(s)) {
                    // Fashion-MNIST is balanced: every class 0..9 is about a tenth of any prefix.
                    assertTrue(c > s.size() / 20 && c < s.size() / 5, "class share " + c + " of " + s.size());
                }
            }
            // The first images of both splits are ankle boots (label 9), as in the published files.
            assertEquals(9, train.label(0));
            assertEquals(9, test.label(0));
            assertEquals(0, train.label(1));
        }
        assertThrows(IllegalArgumentException.class, () -> Datasets.fashionMnist("val", true));
    }

    @Test
    void fullFashionMnistWhenInstalled() throws IOException {
        Assumptions.assumeTrue(Datasets.fullFashionMnistInstalled(), "dataset-fashion-mnist is not installed");
        try (ImageSource train = Datasets.fashionMnist("train"); ImageSource test = Datasets.fashionMnist("test");
                ImageSource embedded = Datasets.fashionMnist("train", true)) {
            assertEquals(60_000, train.size());
            assertEquals(10_000, test.size());
            // The embedded subset is the full set's first 10,000 images.
            for (long i : new long[] {0, 1, 4321, 9999}) {
                assertEquals(embedded.label(i), train.label(i));
                assertEquals(embedded.view(i).mismatch(train.view(i)), -1L, "image " + i);
            }
        }
    }

    private void copyEmbedded(Path dir, String name) throws IOException {
        try (InputStream in = Datasets.class.getResourceAsStream("/org/caejava/data/fashion-mnist/" + name)) {
            Files.copy(in, dir.resolve(name));
        }
    }

    @Test
    void recognizesIdxFolders() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("fmnist"));
        for (String f : List.of("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")) {
            copyEmbedded(dir, f);
        }
        Datasets.Layout l = Datasets.inspect(dir);
        assertEquals(Datasets.Format.IDX, l.format());
        assertEquals(List.of("train", "test"), l.splitNames());
        try (ImageSource train = Datasets.open(dir); ImageSource test = Datasets.open(dir, "test", 3)) {
            assertEquals(10_000, train.size());
            assertEquals(2_000, test.size());
            assertEquals(9, train.label(0));
            assertEquals(List.of("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"), train.classNames());
        }
        // An images file alone, its labels found beside it.
        try (ImageSource f = Datasets.open(dir.resolve("t10k-images-idx3-ubyte.gz"))) {
            assertEquals(2_000, f.size());
            assertEquals(9, f.label(0));
        }
        ImageDataException e = assertThrows(ImageDataException.class, () -> Datasets.open(dir, "val", 3));
        assertTrue(e.getMessage().contains("no split \"val\"") && e.getMessage().contains("[train, test]"),
                e.getMessage());
    }

    @Test
    void recognizesImageFoldersWithAndWithoutSplits() throws IOException {
        Path one = Fixtures.copy("photos", tmp.resolve("one"));
        Datasets.Layout l = Datasets.inspect(one);
        assertEquals(Datasets.Format.IMAGE_FOLDER, l.format());
        assertEquals(List.of("train"), l.splitNames());
        try (ImageSource s = Datasets.open(one)) {
            assertEquals(4, s.size());
            assertEquals(List.of("animals", "people", "things"), s.classNames());
        }
        Path split = tmp.resolve("split");
        Fixtures.copy("photos", split.resolve("train"));
        Fixtures.copy("photos", split.resolve("test"));
        Files.delete(split.resolve("test/things/rocket.jpg"));
        l = Datasets.inspect(split);
        assertEquals(List.of("train", "test"), l.splitNames());
        try (ImageSource train = Datasets.open(split, "train", 1); ImageSource test = Datasets.open(split, "test", 1)) {
            assertEquals(4, train.size());
            assertEquals(3, test.size());
            assertEquals(1, test.channels());
        }
    }

    @Test
    void refusesWhatItDoesNotKnow() throws IOException {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        Files.writeString(empty.resolve("readme.txt"), "hello");
        ImageDataException e = assertThrows(ImageDataException.class, () -> Datasets.open(empty));
        assertTrue(e.getMessage().startsWith(empty.toString()) && e.getMessage().contains("no IDX files"),
                e.getMessage());
        e = assertThrows(ImageDataException.class, () -> Datasets.open(tmp.resolve("missing")));
        assertTrue(e.getMessage().contains("no such file or folder"), e.getMessage());
        e = assertThrows(ImageDataException.class, () -> Datasets.open(empty.resolve("readme.txt")));
        assertTrue(e.getMessage().contains("not an IDX images file"), e.getMessage());
    }
}
