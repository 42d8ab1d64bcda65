package org.caejava.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.caejava.cli.PrepareCommand;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class PrepareCommandTest {

    @TempDir
    Path tmp;

    record Run(int code, String out, String err) {}

    static Run prepare(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new PrepareCommand());
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute(args);
        return new Run(code, out.toString(), err.toString());
    }

    @Test
    void preparedShardsHoldThePlainPathOfEveryImage() throws IOException {
        Path photos = Fixtures.copy("photos", tmp.resolve("photos"));
        Path out = tmp.resolve("shards");
        // 32x32x3 images (3072 bytes and a 4-byte label) beside ~4 KB of table: 12K holds 2 per shard.
        Run r = prepare("--images", photos.toString(), "--out", out.toString(), "--size", "32",
                "--shard-bytes", "12K", "--threads", "2");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().startsWith("train: 4 images of 32x32x3 -> 2 shards"), r.out());
        assertTrue(r.out().contains("1 split [train], 3 classes"), r.out());
        try (ImageFolderSource folder = ImageFolderSource.open(photos, 3);
                ShardSource shards = ShardSource.open(out, "train"); Arena arena = Arena.ofConfined()) {
            assertEquals(2, shards.shardCount());
            assertEquals(folder.size(), shards.size());
            assertEquals(folder.classNames(), shards.classNames());
            ImageDataset fromFolder = ImageDataset.builder(folder).size(32)
                    .augmentation(Augmentation.none().withInterpolation(Augmentation.Interpolation.BILINEAR))
                    .normalization(Normalization.imagenet()).build();
            ImageDataset fromShards = ImageDataset.builder(shards).size(32)
                    .augmentation(Augmentation.none()).normalization(Normalization.imagenet()).build();
            MemorySegment expected = arena.allocate(32 * 32 * 3);
            for (long i = 0; i < folder.size(); i++) {
                fromFolder.loadPlainBytes(i, expected);
                assertEquals(-1L, expected.mismatch(shards.view(i)), "image " + i + " pixel-equal");
                assertEquals(folder.label(i), shards.label(i));
                // And the training path over the shards (the identity at 32x32) gives the same floats.
                assertArrayEquals(ImageDatasetTest.plain(fromFolder, i), ImageDatasetTest.plain(fromShards, i));
            }
            // The statistics of the prepared images are stored and used by default.
            Normalization stored = shards.knownNormalization();
            assertEquals(3, stored.channels());
            assertEquals(stored, ImageDataset.builder(shards).size(32).build().normalization());
            assertEquals(ImageDataset.builder(folder).size(32)
                    .augmentation(Augmentation.none().withInterpolation(Augmentation.Interpolation.BILINEAR)).build()
                    .normalization(), stored);
        }
    }

    @Test
    void trainAndTestSubfoldersBecomeSplits() throws IOException {
        Path data = tmp.resolve("data");
        Fixtures.copy("photos", data.resolve("train"));
        Fixtures.copy("photos", data.resolve("test"));
        Files.delete(data.resolve("test/people/astronaut.png"));
        Files.createDirectories(data.resolve("test/people"));
        Files.copy(Fixtures.images().resolve("formats/camera-gray.png"), data.resolve("test/people/camera.png"));
        Path out = tmp.resolve("out");
        Run r = prepare("--images", data.toString(), "--out", out.toString(), "--size", "24", "--channels", "1");
        assertEquals(0, r.code(), r.err());
        assertEquals(List.of("train", "test"), ShardSource.splits(out));
        try (ShardSource test = ShardSource.open(out, "test")) {
            assertEquals(4, test.size());
            assertEquals(1, test.channels());
            assertEquals(24, test.width(0));
            assertEquals(List.of(0, 1, 2, 2), List.of(test.label(0), test.label(1), test.label(2), test.label(3)));
        }
    }

    @Test
    void errorsAreOneClearLine() throws IOException {
        Run r = prepare("--images", tmp.resolve("nowhere").toString(), "--out", tmp.resolve("o1").toString(),
                "--size", "32");
        assertEquals(1, r.code());
        assertEquals("cae prepare: " + tmp.resolve("nowhere") + ": no such file or folder", r.err().strip());

        Path bad = Fixtures.copy("photos", tmp.resolve("bad"));
        Files.copy(Fixtures.images().resolve("corrupt/truncated.jpg"), bad.resolve("things/truncated.jpg"));
        Path out = tmp.resolve("o2");
        r = prepare("--images", bad.toString(), "--out", out.toString(), "--size", "32");
        assertEquals(1, r.code());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().startsWith("cae prepare: " + bad.resolve("things/truncated.jpg")), r.err());
        assertTrue(!Files.exists(out.resolve("index.json")), "no index after a failure");

        Path used = Files.createDirectories(tmp.resolve("used"));
        Files.writeString(used.resolve("keep.txt"), "mine");
        r = prepare("--images", Fixtures.images().resolve("photos").toString(), "--out", used.toString(),
                "--size", "32");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("is not empty"), r.err());

        r = prepare("--images", Fixtures.images().resolve("photos").toString(), "--out", tmp.resolve("o3").toString(),
                "--size", "32", "--shard-bytes", "lots");
        assertEquals(2, r.code(), "bad usage");
        assertTrue(r.err().contains("\"lots\" is not a byte count"), r.err());
    }
}
