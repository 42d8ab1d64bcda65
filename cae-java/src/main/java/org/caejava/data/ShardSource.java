package org.caejava.data;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import org.caejava.data.shard.Shard;

/**
 * One split of a prepared dataset (written by {@link ShardWriter}, {@code cae prepare}): its
 * shards are memory-mapped and images are slices of the mapped files, read without copying
 * through Java arrays. Every shard is validated before use: its size against the index, every
 * offset the accessors follow (see {@link FlatBufferCheck}), the format version, split, first
 * index, image size, class names, and {@code count * height * width * channels} against the
 * length of the images vector, the labels' count and range.
 *
 * <p>A source owns the memory mappings of its shard files, in a shared arena that {@link #close()}
 * releases; the files are not kept open otherwise. Any number of threads may read at once; close
 * it when none is reading any more.
 */
public final class ShardSource implements ImageSource {

    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One mapped shard: images {@code first .. first + count - 1} of the split. */
    private record Mapped(String file, long first, long count, MemorySegment images, MemorySegment labels) {}

    private final Arena arena;
    private final Path dir;
    private final String split;
    private final ShardIndex index;
    private final Mapped[] shards;
    private final long[] starts;
    private final long total;
    private final long imageBytes;

    private ShardSource(Arena arena, Path dir, String split, ShardIndex index, Mapped[] shards) {
        this.arena = arena;
        this.dir = dir;
        this.split = split;
        this.index = index;
        this.shards = shards;
        this.starts = new long[shards.length];
        long t = 0;
        for (int i = 0; i < shards.length; i++) {
            starts[i] = t;
            t += shards[i].count();
        }
        this.total = t;
        this.imageBytes = (long) index.width() * index.height() * index.channels();
    }

    /**
     * The split names of the prepared dataset in {@code dir}, in the order they were written.
     *
     * @param dir the folder of the prepared dataset
     * @return the split names
     * @throws IOException when the index cannot be read
     * @throws ImageDataException when the index is malformed
     */
    public static List<String> splits(Path dir) throws IOException {
        return List.copyOf(ShardIndex.read(dir).splits().keySet());
    }

    /**
     * Opens split {@code split} of the prepared dataset in {@code dir}.
     *
     * @param dir the folder of the prepared dataset
     * @param split the split's name
     * @return the open source, to be closed by the caller
     * @throws IOException when the index or a shard cannot be read
     * @throws ImageDataException when the split does not exist, or the index or a shard fails validation
     */
    public static ShardSource open(Path dir, String split) throws IOException {
        ShardIndex index = ShardIndex.read(dir);
        List<ShardIndex.Entry> entries = index.splits().get(split);
        if (entries == null) {
            throw new ImageDataException(dir + ": no split \"" + split + "\"; it has " + index.splits().keySet());
        }
        Arena arena = Arena.ofShared();
        try {
            Mapped[] shards = new Mapped[entries.size()];
            long first = 0;
            for (int i = 0; i < shards.length; i++) {
                shards[i] = map(dir, split, index, entries.get(i), first, arena);
                first += entries.get(i).count();
            }
            return new ShardSource(arena, dir, split, index, shards);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Mapped map(Path dir, String split, ShardIndex index, ShardIndex.Entry e, long first, Arena arena)
            throws IOException {
        Path file = dir.resolve(e.file());
        MemorySegment seg;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size != e.bytes()) {
                throw new ImageDataException(file + ": " + size + " bytes, the index says " + e.bytes()
                        + " (truncated or replaced?)");
            }
            seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
        } catch (NoSuchFileException x) {
            throw new ImageDataException(file + ": missing, but listed in " + ShardIndex.FILE + " for split \""
                    + split + "\"");
        }
        String name = file.toString();
        FlatBufferCheck check = new FlatBufferCheck(seg, name);
        long table = check.root(ShardWriter.IDENTIFIER);
        // Field slots as in the generated Shard: 4 + 2 * (field id).
        long version = check.u32Field(table, 4, 0);
        String shardSplit = check.string(table, 6, "the split name");
        long firstIndex = check.u64Field(table, 8, 0);
        long count = check.u32Field(table, 10, 0);
        long width = check.u32Field(table, 12, 0);
        long height = check.u32Field(table, 14, 0);
        long channels = check.u32Field(table, 16, 0);
        List<String> names = check.strings(table, 18, "class name");
        FlatBufferCheck.Vector labels = check.vector(table, 20, 4, "the labels vector");
        FlatBufferCheck.Vector images = check.vector(table, 22, 1, "the images vector");
        if (version != ShardWriter.FORMAT_VERSION) {
            throw new ImageDataException(name + ": format version " + version + ", this reader knows "
                    + ShardWriter.FORMAT_VERSION);
        }
        if (!split.equals(shardSplit) || firstIndex != first || count != e.count()) {
            throw new ImageDataException(name + ": holds images " + firstIndex + ".." + (firstIndex + count - 1)
                    + " of split \"" + shardSplit + "\", the index lists it for images " + first + ".."
                    + (first + e.count() - 1) + " of \"" + split + "\"");
        }
        if (width != index.width() || height != index.height() || channels != index.channels()) {
            throw new ImageDataException(name + ": images " + width + "x" + height + "x" + channels
                    + ", the index says " + index.width() + "x" + index.height() + "x" + index.channels());
        }
        if (!names.equals(index.classNames())) {
            throw new ImageDataException(name + ": class names " + names + " differ from the index's "
                    + index.classNames());
        }
        // count * width * height * channels can exceed 2^64: compared exactly, a wrapped product cannot match.
        BigInteger needed = BigInteger.valueOf(count).multiply(BigInteger.valueOf(width * height * channels));
        if (images == null || !needed.equals(BigInteger.valueOf(images.length()))) {
            throw new ImageDataException(name + ": the images vector holds " + (images == null ? 0 : images.length())
                    + " bytes, " + count + " images of " + width + "x" + height + "x" + channels + " need "
                    + needed);
        }
        long expected = images.length();
        long labelCount = labels == null ? 0 : labels.length();
        if (names.isEmpty() ? labelCount != 0 : labelCount != count) {
            throw new ImageDataException(name + ": " + labelCount + " labels for " + count + " images and "
                    + names.size() + " classes");
        }
        // The generated accessors, over the now validated buffer, locate the vectors to slice.
        Shard shard = Shard.getRootAsShard(seg.asByteBuffer());
        long imagesAt = shard.imagesAsByteBuffer().position();
        if (imagesAt != images.start() || shard.imagesLength() != expected) {
            throw new IllegalStateException(name + ": the accessor and the check disagree on the images vector");
        }
        MemorySegment labelSeg = null;
        if (labelCount > 0) {
            labelSeg = seg.asSlice(shard.labelsAsByteBuffer().position(), 4 * count);
            for (long i = 0; i < count; i++) {
                int l = labelSeg.get(I32, 4 * i);
                if (l < -1 || l >= names.size()) {
                    throw new ImageDataException(name + ": image " + (first + i) + " has label " + l + ", expected -1.."
                            + (names.size() - 1));
                }
            }
        }
        return new Mapped(name, first, count, seg.asSlice(imagesAt, expected), labelSeg);
    }

    /**
     * The name of this split.
     *
     * @return the split name
     */
    public String split() {
        return split;
    }

    /**
     * The folder of the prepared dataset.
     *
     * @return the folder given to {@link #open}
     */
    public Path folder() {
        return dir;
    }

    /**
     * The number of shard files of this split.
     *
     * @return the shard count
     */
    public int shardCount() {
        return shards.length;
    }

    @Override
    public long size() {
        return total;
    }

    @Override
    public int channels() {
        return index.channels();
    }

    @Override
    public int width(long i) {
        return index.width();
    }

    @Override
    public int height(long i) {
        return index.height();
    }

    private int shardOf(long i) {
        Objects.checkIndex(i, total);
        int s = Arrays.binarySearch(starts, i);
        return s >= 0 ? s : -s - 2;
    }

    @Override
    public MemorySegment view(long i) {
        int s = shardOf(i);
        return shards[s].images().asSlice((i - starts[s]) * imageBytes, imageBytes);
    }

    @Override
    public void read(long i, MemorySegment dst) {
        MemorySegment.copy(view(i), 0, dst, 0, imageBytes);
    }

    @Override
    public int label(long i) {
        int s = shardOf(i);
        MemorySegment l = shards[s].labels();
        return l == null ? -1 : l.get(I32, 4 * (i - starts[s]));
    }

    @Override
    public List<String> classNames() {
        return index.classNames();
    }

    @Override
    public Normalization knownNormalization() {
        return index.normalization();
    }

    @Override
    public String describe(long i) {
        int s = shardOf(i);
        return "image " + (i - starts[s]) + " of " + shards[s].file();
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "ShardSource[" + dir + " split " + split + ", " + total + " images " + index.width() + "x"
                + index.height() + "x" + index.channels() + " in " + shards.length + " shards]";
    }
}
