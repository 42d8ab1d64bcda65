package org.caejava.data;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * How much faster training reads prepared shards than the image folder they were made from:
 * images per second of {@link ImageDataset#load} (training augmentation, normalization, F32 CHW
 * out) over the same photos, from the folder (decoded with ImageIO each time) and from shards that
 * {@link ShardWriter} prepares at the output size first (memory-mapped, no decoding).
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp cae-java/target/cae-cli.jar org.caejava.data.ReadSpeed \
 *     PHOTOS [--sizes 224,64] [--threads 1,2] [--seconds 5]
 * </pre>
 *
 * Prints one line per size and thread count, and the time {@code cae prepare} took to make the shards.
 * PHOTOS is any folder of images; the numbers in bench/README.md were measured on 320 JPEGs: the
 * eight colour photos of scikit-image's sample data (astronaut, chelsea, coffee, motorcycle_left,
 * rocket, color, ihc, hubble_deep_field; 0.32 megapixels on average) re-encoded at JPEG quality
 * 0.9 at their own sizes, 40 copies of each.
 *
 * <p>A command-line tool with a {@code main} method only: it writes its shards to a temporary
 * folder that it deletes at the end, and runs its own loading threads.
 */
public final class ReadSpeed {

    private ReadSpeed() {}

    /**
     * Measures and prints the read speeds.
     *
     * @param args the photo folder, then the options {@code --sizes}, {@code --threads} and
     *     {@code --seconds}
     * @throws IOException when the photos cannot be read or the shards cannot be written
     */
    public static void main(String[] args) throws IOException {
        if (args.length < 1) {
            System.err.println("usage: ReadSpeed PHOTOS [--sizes 224,64] [--threads 1,2] [--seconds 5]");
            System.exit(2);
        }
        Path photos = Path.of(args[0]);
        int[] sizes = {224, 64};
        int[] threads = {1, Runtime.getRuntime().availableProcessors()};
        double seconds = 5;
        for (int i = 1; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--sizes" -> sizes = ints(args[i + 1]);
                case "--threads" -> threads = ints(args[i + 1]);
                case "--seconds" -> seconds = Double.parseDouble(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        Path tmp = Files.createTempDirectory("cae-readspeed");
        try (ImageFolderSource folder = ImageFolderSource.open(photos, 3)) {
            long pixels = 0;
            for (long i = 0; i < folder.size(); i++) {
                pixels += (long) folder.width(i) * folder.height(i);
            }
            System.out.printf(Locale.ROOT, "%d images in %s, %.2f megapixels on average; %s, %d cores%n",
                    folder.size(), photos, pixels / 1e6 / folder.size(), Runtime.version(),
                    Runtime.getRuntime().availableProcessors());
            for (int size : sizes) {
                Path dir = tmp.resolve("shards-" + size);
                ImageDataset plain = ImageDataset.builder(folder).size(size)
                        .augmentation(Augmentation.none()
                                .withInterpolation(Augmentation.defaultFor(size).interpolation()))
                        .normalization(Normalization.identity(3)).build();
                int prepareThreads = Runtime.getRuntime().availableProcessors();
                long t0 = System.nanoTime();
                try (ShardWriter w = ShardWriter.create(dir, size, size, 3, folder.classNames(),
                        ShardWriter.DEFAULT_SHARD_BYTES)) {
                    w.writeSplit("train", folder.size(), (i, dst) -> {
                        plain.loadPlainBytes(i, dst);
                        return folder.classNames().isEmpty() ? -1 : folder.label(i);
                    }, prepareThreads);
                }
                double prep = (System.nanoTime() - t0) / 1e9;
                System.out.printf(Locale.ROOT, "size %d: prepared %d images in %.1f s (%.0f images/s on %d threads)%n",
                        size, folder.size(), prep, folder.size() / prep, prepareThreads);
                try (ShardSource shards = ShardSource.open(dir, "train")) {
                    Augmentation aug = Augmentation.defaultFor(size);
                    ImageDataset fromFolder = ImageDataset.builder(folder).size(size).augmentation(aug)
                            .normalization(Normalization.imagenet()).build();
                    ImageDataset fromShards = ImageDataset.builder(shards).size(size).augmentation(aug)
                            .normalization(Normalization.imagenet()).build();
                    for (int t : threads) {
                        double f = imagesPerSecond(fromFolder, t, seconds);
                        double s = imagesPerSecond(fromShards, t, seconds);
                        System.out.printf(Locale.ROOT,
                                "size %d, %d thread%s: folder %.0f images/s, shards %.0f images/s: %.1fx%n", size, t,
                                t == 1 ? "" : "s", f, s, s / f);
                    }
                }
            }
        } finally {
            try (Stream<Path> s = Files.walk(tmp)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                    Files.delete(p);
                }
            }
        }
    }

    private static int[] ints(String csv) {
        return Stream.of(csv.split(",")).mapToInt(Integer::parseInt).toArray();
    }

    /** Loads samples in a loop on {@code threads} threads: a warm-up second, then {@code seconds} timed. */
    static double imagesPerSecond(ImageDataset d, int threads, double seconds) {
        run(d, threads, 1.0);
        return run(d, threads, seconds);
    }

    private static double run(ImageDataset d, int threads, double seconds) {
        AtomicLong next = new AtomicLong();
        long deadline = System.nanoTime() + (long) (seconds * 1e9);
        List<Thread> workers = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int t = 0; t < threads; t++) {
            Thread w = new Thread(() -> {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment dst = arena.allocate(d.floatsPerSample() * Float.BYTES, 64);
                    while (System.nanoTime() < deadline) {
                        long k = next.getAndIncrement();
                        d.load(k % d.size(), k / d.size(), 1, dst);
                    }
                }
            });
            w.start();
            workers.add(w);
        }
        for (Thread w : workers) {
            try {
                w.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        return next.get() / ((System.nanoTime() - t0) / 1e9);
    }
}
