package org.caejava.data;

import com.google.flatbuffers.FlatBufferBuilder;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.caejava.data.shard.Shard;

/**
 * Writes a prepared dataset: FlatBuffers shards ({@code shard.fbs}) of fixed-size 8-bit images,
 * at most {@code maxShardBytes} each, and the {@code index.json} that lists each split's shards.
 * Each shard is built in one off-heap buffer: its image vector is created first, uninitialized,
 * and the images are decoded straight into it by several threads; then the labels, class names
 * and header fields are added and the buffer is written to a temporary file, flushed and renamed.
 * The index is written last (by {@link #close()}), so a folder without one is an unfinished write.
 *
 * <pre>{@code
 * try (ShardWriter w = ShardWriter.create(out, 64, 64, 3, classNames, ShardWriter.DEFAULT_SHARD_BYTES)) {
 *     w.writeSplit("train", n, (i, dst) -> { data.loadPlainBytes(i, dst); return data.label(i); }, 4);
 * }
 * }</pre>
 *
 * <p>A writer owns the files it writes in its folder (a failed {@link #writeSplit} deletes those
 * it wrote). During {@link #writeSplit} it runs a pool of daemon threads and holds one off-heap
 * shard buffer at a time; both are released before the call returns. Its methods are called by
 * one thread at a time.
 */
public final class ShardWriter implements AutoCloseable {

    /** 1 GiB, also the largest shard allowed. */
    public static final long DEFAULT_SHARD_BYTES = 1L << 30;
    static final int FORMAT_VERSION = 1;
    static final String IDENTIFIER = "CAES";
    /** Room for the table, vtable, offsets and padding beyond the vectors. */
    private static final long OVERHEAD = 4096;

    /**
     * Writes image {@code index} (HWC bytes) to {@code dst} and returns its label (-1: none). The
     * writer calls it from several of its threads at once, for different images.
     */
    @FunctionalInterface
    public interface ImageFill {
        /**
         * Writes one image.
         *
         * @param index the image, from 0 to the split's count - 1
         * @param dst exactly width * height * channels bytes of the shard's image vector
         * @return the image's label, or -1 when the writer has no class names
         */
        int fill(long index, MemorySegment dst);
    }

    /**
     * What {@link #writeSplit} wrote. A plain value: owns nothing, immutable, thread-safe.
     *
     * @param split the split's name
     * @param images the images written
     * @param shards the shard files written
     * @param bytes the total size of those files, in bytes
     */
    public record SplitSummary(String split, long images, int shards, long bytes) {}

    private final Path dir;
    private final int width;
    private final int height;
    private final int channels;
    private final List<String> classNames;
    private final long maxShardBytes;
    private final Map<String, List<ShardIndex.Entry>> splits = new LinkedHashMap<>();
    private final Map<String, String> info = new LinkedHashMap<>();
    private final List<Path> written = new ArrayList<>();
    private Normalization normalization;
    private int nextShard;
    private boolean failed;
    private boolean closed;

    private ShardWriter(Path dir, int width, int height, int channels, List<String> classNames, long maxShardBytes) {
        this.dir = dir;
        this.width = width;
        this.height = height;
        this.channels = channels;
        this.classNames = List.copyOf(classNames);
        this.maxShardBytes = maxShardBytes;
    }

    /**
     * A writer into {@code dir}, which must be missing or empty. {@code classNames} may be empty
     * (unlabeled images).
     *
     * @param dir the folder to write; created when missing
     * @param width the width of every image, 1 to 65536
     * @param height the height of every image, 1 to 65536
     * @param channels 1 (gray) or 3 (RGB)
     * @param classNames the class names the labels index; empty for unlabeled images
     * @param maxShardBytes the largest shard file, at most {@link #DEFAULT_SHARD_BYTES}
     * @return the writer; close it to write the index
     * @throws IOException when the folder cannot be listed or created
     * @throws IllegalArgumentException when a size is out of range, one image does not fit a shard,
     *     or {@code dir} is a file or a folder that is not empty
     */
    public static ShardWriter create(Path dir, int width, int height, int channels, List<String> classNames,
            long maxShardBytes) throws IOException {
        Objects.requireNonNull(classNames, "classNames");
        if (width < 1 || height < 1 || width > 1 << 16 || height > 1 << 16 || (channels != 1 && channels != 3)) {
            throw new IllegalArgumentException("images " + width + "x" + height + "x" + channels
                    + ": sides 1..65536, 1 or 3 channels");
        }
        if (maxShardBytes > DEFAULT_SHARD_BYTES) {
            throw new IllegalArgumentException("shards hold at most " + DEFAULT_SHARD_BYTES + " bytes (1 GiB), not "
                    + maxShardBytes);
        }
        long image = (long) width * height * channels;
        if (image + 4 + overhead(classNames) > maxShardBytes) {
            throw new IllegalArgumentException("one " + width + "x" + height + "x" + channels + " image (" + image
                    + " bytes) does not fit in shards of " + maxShardBytes + " bytes");
        }
        if (Files.exists(dir)) {
            if (!Files.isDirectory(dir)) {
                throw new IllegalArgumentException(dir + " exists and is not a folder");
            }
            try (Stream<Path> s = Files.list(dir)) {
                if (s.findAny().isPresent()) {
                    throw new IllegalArgumentException(dir + " is not empty; give a new or empty folder");
                }
            }
        }
        Files.createDirectories(dir);
        return new ShardWriter(dir, width, height, channels, classNames, maxShardBytes);
    }

    private static long overhead(List<String> classNames) {
        long names = 0;
        for (String n : classNames) {
            names += 4 + 4 + n.getBytes(StandardCharsets.UTF_8).length + 1 + 3;
        }
        return OVERHEAD + names;
    }

    /** Images per shard: as many as fit in {@code maxShardBytes} with their labels. */
    long imagesPerShard() {
        long image = (long) width * height * channels + (classNames.isEmpty() ? 0 : 4);
        return Math.max(1, (maxShardBytes - overhead(classNames)) / image);
    }

    /**
     * Pixel statistics to record in the index (read back by {@link ShardSource#knownNormalization}).
     *
     * @param n the statistics, or null for none
     * @throws IllegalArgumentException when the channel count differs from the images'
     */
    public void normalization(Normalization n) {
        if (n != null && n.channels() != channels) {
            throw new IllegalArgumentException("statistics for " + n.channels() + " channels, the images have "
                    + channels);
        }
        this.normalization = n;
    }

    /**
     * A free-form note in the index's "info" (source folder, interpolation, ...).
     *
     * @param key the note's name; a later note of the same name replaces it
     * @param value the note
     */
    public void info(String key, String value) {
        info.put(key, value);
    }

    /**
     * Writes images {@code 0 .. count-1} of a split, filled by {@code fill} on {@code threads}
     * threads. Labels must be -1 when the writer has no class names, else index them.
     *
     * @param split the split's name, not empty and not written before
     * @param count the number of images, at least 1
     * @param fill writes each image and gives its label
     * @param threads the threads that call {@code fill}, at least 1
     * @return what was written
     * @throws IOException when a shard cannot be written; the shards written so far are deleted
     * @throws IllegalStateException when the writer is closed
     * @throws IllegalArgumentException when the name or a count is refused, or a label is out of range
     */
    public SplitSummary writeSplit(String split, long count, ImageFill fill, int threads) throws IOException {
        if (closed) {
            throw new IllegalStateException("the writer is closed");
        }
        if (split == null || split.isEmpty() || splits.containsKey(split)) {
            throw new IllegalArgumentException("split name \"" + split + "\" is empty or already written");
        }
        if (count < 1 || threads < 1) {
            throw new IllegalArgumentException("count " + count + ", threads " + threads);
        }
        long perShard = imagesPerShard();
        List<ShardIndex.Entry> entries = new ArrayList<>();
        long bytes = 0;
        ExecutorService pool = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "cae-shard-writer");
            t.setDaemon(true);
            return t;
        });
        try {
            for (long first = 0; first < count; first += perShard) {
                int n = (int) Math.min(perShard, count - first);
                String file = String.format("shard-%05d.fb", nextShard++);
                long written = writeShard(dir.resolve(file), split, first, n, fill, pool, threads);
                entries.add(new ShardIndex.Entry(file, n, written));
                bytes += written;
            }
        } catch (IOException | RuntimeException | Error e) {
            failed = true;
            deleteWritten();
            throw e;
        } finally {
            pool.shutdownNow();
        }
        splits.put(split, List.copyOf(entries));
        return new SplitSummary(split, count, entries.size(), bytes);
    }

    private long writeShard(Path file, String split, long first, int n, ImageFill fill, ExecutorService pool,
            int threads) throws IOException {
        long image = (long) width * height * channels;
        long imagesBytes = image * n;
        long capacity = imagesBytes + 4L * n + overhead(classNames) + 64;
        try (Arena arena = Arena.ofShared()) {
            FlatBufferBuilder b = new FlatBufferBuilder((int) capacity, new FlatBufferBuilder.ByteBufferFactory() {
                @Override
                public ByteBuffer newByteBuffer(int size) {
                    return arena.allocate(size, 64).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
                }
            });
            // Every field written, defaults too: shards of the same count have the same layout and size.
            b.forceDefaults(true);
            // The images vector first, at the end of the buffer: decoded straight into it.
            ByteBuffer vector = b.createUnintializedVector(1, (int) imagesBytes, 16);
            MemorySegment images = MemorySegment.ofBuffer(vector);
            int[] labels = new int[n];
            fillImages(split, first, n, image, images, labels, fill, pool, threads);
            int imagesOffset = b.endVector();
            int labelsOffset = classNames.isEmpty() ? 0 : Shard.createLabelsVector(b, labels);
            int[] names = new int[classNames.size()];
            for (int i = 0; i < names.length; i++) {
                names[i] = b.createString(classNames.get(i));
            }
            int namesOffset = Shard.createClassNamesVector(b, names);
            int splitOffset = b.createString(split);
            // Not Shard.createShard: with forceDefaults it would write an absent labels vector as offset 0.
            Shard.startShard(b);
            Shard.addFirstIndex(b, first);
            Shard.addImages(b, imagesOffset);
            if (labelsOffset != 0) {
                Shard.addLabels(b, labelsOffset);
            }
            Shard.addClassNames(b, namesOffset);
            Shard.addChannels(b, channels);
            Shard.addHeight(b, height);
            Shard.addWidth(b, width);
            Shard.addCount(b, n);
            Shard.addSplit(b, splitOffset);
            Shard.addFormatVersion(b, FORMAT_VERSION);
            int root = Shard.endShard(b);
            Shard.finishShardBuffer(b, root);
            ByteBuffer data = b.dataBuffer();
            Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            written.add(tmp);
            written.add(file);
            long size = data.remaining();
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                while (data.hasRemaining()) {
                    ch.write(data);
                }
                ch.force(true);
            }
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
            return size;
        }
    }

    private void fillImages(String split, long first, int n, long image, MemorySegment images, int[] labels,
            ImageFill fill, ExecutorService pool, int threads) throws IOException {
        AtomicLong next = new AtomicLong();
        List<Future<?>> tasks = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            tasks.add(pool.submit(() -> {
                for (long k; (k = next.getAndIncrement()) < n;) {
                    long index = first + k;
                    int label = fill.fill(index, images.asSlice(k * image, image));
                    if (classNames.isEmpty() ? label != -1 : label < 0 || label >= classNames.size()) {
                        throw new IllegalArgumentException("image " + index + " of split " + split + ": label "
                                + label + ", expected " + (classNames.isEmpty() ? "-1 (no class names)"
                                        : "0.." + (classNames.size() - 1)));
                    }
                    labels[(int) k] = label;
                }
                return null;
            }));
        }
        for (Future<?> f : tasks) {
            try {
                f.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while writing shards", e);
            } catch (ExecutionException e) {
                next.set(n);
                Throwable c = e.getCause();
                if (c instanceof RuntimeException re) {
                    throw re;
                }
                if (c instanceof Error err) {
                    throw err;
                }
                throw new IOException(c.getMessage(), c);
            }
        }
    }

    /** Removes the shards written so far: a failed write leaves the folder as it found it. */
    private void deleteWritten() {
        for (Path p : written) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // Best effort: the missing index already marks the folder as unfinished.
            }
        }
    }

    /**
     * Writes the index. Nothing is written after a failed {@link #writeSplit}, or when no split was.
     *
     * @throws IOException when the index cannot be written
     */
    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        if (failed || splits.isEmpty()) {
            return;
        }
        new ShardIndex(width, height, channels, classNames, normalization, splits, info).write(dir);
    }
}
