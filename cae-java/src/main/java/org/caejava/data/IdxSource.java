package org.caejava.data;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * Images (and labels) from IDX files, the format of MNIST and Fashion-MNIST, raw or gzipped: an
 * images file {@code *-images-idx3-ubyte} (magic 0x00000803, then count, rows, columns as
 * big-endian 32-bit integers, then count * rows * columns pixel bytes) and an optional labels
 * file {@code *-labels-idx1-ubyte} (magic 0x00000801, count, then one byte per image). The pixels
 * are loaded into one off-heap segment; images are views into it.
 *
 * <p>A source owns that off-heap memory (pixels and labels, in a shared arena), freed by
 * {@link #close()}; the files are read whole when opened and not kept open. Any number of threads
 * may read at once; close it when none is reading any more.
 */
public final class IdxSource implements ImageSource {

    static final int IMAGES_MAGIC = 0x00000803;
    static final int LABELS_MAGIC = 0x00000801;
    /** Deflate expands at most about 1032:1; a gzip file cannot hold more than this per byte. */
    private static final long MAX_DEFLATE_RATIO = 1032;
    private static final long MAX_PAYLOAD = 1L << 36;

    private final Arena arena;
    private final MemorySegment pixels;
    private final MemorySegment labels;
    private final int count;
    private final int rows;
    private final int cols;
    private final String name;
    private final List<String> classNames;
    private final Normalization known;

    private IdxSource(Arena arena, MemorySegment pixels, MemorySegment labels, int count, int rows, int cols,
            String name, List<String> classNames, Normalization known) {
        this.arena = arena;
        this.pixels = pixels;
        this.labels = labels;
        this.count = count;
        this.rows = rows;
        this.cols = cols;
        this.name = name;
        this.classNames = classNames;
        this.known = known;
    }

    /**
     * Opens an images file and, when {@code labels} is not null, its labels file. The class names
     * are the label values ("0", "1", ... up to the largest label).
     *
     * @param images the images file, raw or gzipped
     * @param labels the labels file, raw or gzipped; or null for an unlabeled source
     * @return the open source, to be closed by the caller
     * @throws IOException when a file cannot be read
     * @throws ImageDataException naming the file, when a file is not valid IDX or the two disagree
     */
    public static IdxSource open(Path images, Path labels) throws IOException {
        return open(images, labels, null, null);
    }

    /**
     * As {@link #open(Path, Path)}, with class names (labels must index them) and known statistics.
     *
     * @param images the images file, raw or gzipped
     * @param labels the labels file, raw or gzipped; or null for an unlabeled source
     * @param classNames the class names in label order; or null for the label values
     * @param known the dataset's known pixel statistics; or null
     * @return the open source, to be closed by the caller
     * @throws IOException when a file cannot be read
     * @throws ImageDataException naming the file, when a file is not valid IDX, the two disagree, or a
     *     label has no class name
     */
    public static IdxSource open(Path images, Path labels, List<String> classNames, Normalization known)
            throws IOException {
        Objects.requireNonNull(images, "images");
        try (InputStream in = Files.newInputStream(images);
                InputStream lin = labels == null ? null : Files.newInputStream(labels)) {
            return read(in, images.toString(), Files.size(images), lin, labels == null ? null : labels.toString(),
                    labels == null ? 0 : Files.size(labels), classNames, known);
        }
    }

    /**
     * Reads IDX streams (raw or gzipped; {@code labels} may be null). {@code *Bytes} are the stream
     * lengths when known (to refuse headers that promise more than the stream can hold before
     * allocating), else -1.
     */
    static IdxSource read(InputStream images, String imagesName, long imagesBytes, InputStream labels,
            String labelsName, long labelsBytes, List<String> classNames, Normalization known) throws IOException {
        Arena arena = Arena.ofShared();
        try {
            Payload img = readPayload(images, imagesName, imagesBytes, IMAGES_MAGIC, 3, arena);
            int n = img.dims()[0];
            MemorySegment lab = null;
            List<String> names = List.of();
            if (labels != null) {
                Payload l = readPayload(labels, labelsName, labelsBytes, LABELS_MAGIC, 1, arena);
                if (l.dims()[0] != n) {
                    throw new ImageDataException(labelsName + ": " + l.dims()[0] + " labels for the " + n
                            + " images of " + imagesName);
                }
                lab = l.data();
                int max = 0;
                for (long i = 0; i < n; i++) {
                    max = Math.max(max, Byte.toUnsignedInt(lab.get(ValueLayout.JAVA_BYTE, i)));
                }
                if (classNames != null) {
                    if (max >= classNames.size()) {
                        throw new ImageDataException(labelsName + ": label " + max + " but only "
                                + classNames.size() + " class names " + classNames);
                    }
                    names = List.copyOf(classNames);
                } else {
                    List<String> numbers = new ArrayList<>();
                    for (int c = 0; c <= max; c++) {
                        numbers.add(Integer.toString(c));
                    }
                    names = List.copyOf(numbers);
                }
            }
            if (known != null && known.channels() != 1) {
                throw new IllegalArgumentException("IDX images have 1 channel, the statistics " + known.channels());
            }
            return new IdxSource(arena, img.data(), lab, n, img.dims()[1], img.dims()[2], imagesName, names, known);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private record Payload(int[] dims, MemorySegment data) {}

    private static Payload readPayload(InputStream raw, String name, long streamBytes, int magic, int rank,
            Arena arena) throws IOException {
        BufferedInputStream buffered = new BufferedInputStream(raw, 1 << 16);
        buffered.mark(2);
        boolean gzip = buffered.read() == 0x1f && buffered.read() == 0x8b;
        buffered.reset();
        InputStream in;
        try {
            in = gzip ? new GZIPInputStream(buffered, 1 << 16) : buffered;
        } catch (ZipException | EOFException e) {
            throw new ImageDataException(name + ": not a readable gzip file (" + e.getMessage() + ")", e);
        }
        try {
            DataInputStream data = new DataInputStream(in);
            int headerBytes = 4 + 4 * rank;
            int m;
            int[] dims = new int[rank];
            try {
                m = data.readInt();
                if (m != magic) {
                    throw new ImageDataException(String.format("%s: magic number 0x%08X, expected 0x%08X (%s)", name,
                            m, magic, magic == IMAGES_MAGIC ? "IDX images: unsigned bytes, 3 dimensions"
                                    : "IDX labels: unsigned bytes, 1 dimension"));
                }
                for (int d = 0; d < rank; d++) {
                    dims[d] = data.readInt();
                }
            } catch (EOFException e) {
                throw new ImageDataException(name + ": ends inside its " + headerBytes + "-byte IDX header", e);
            }
            // Three dimensions below 2^31 can overflow a long: the product is exact, then bounded.
            BigInteger announced = BigInteger.ONE;
            for (int d = 0; d < rank; d++) {
                if (dims[d] <= 0) {
                    throw new ImageDataException(name + ": dimension " + d + " is " + Integer.toUnsignedString(dims[d])
                            + " in the header " + describeDims(dims)
                            + "; every dimension must be positive and below 2^31");
                }
                announced = announced.multiply(BigInteger.valueOf(dims[d]));
            }
            long bound = streamBytes < 0 ? MAX_PAYLOAD
                    : gzip ? Math.min(MAX_PAYLOAD, streamBytes * MAX_DEFLATE_RATIO) : streamBytes - headerBytes;
            if (announced.compareTo(BigInteger.valueOf(bound)) > 0) {
                throw new ImageDataException(name + ": the header " + describeDims(dims) + " announces " + announced
                        + " bytes of data, but the file " + (gzip ? "cannot hold more than " + bound + " (gzipped)"
                                : "has " + bound));
            }
            long payload = announced.longValueExact();
            MemorySegment seg = arena.allocate(payload, 64);
            byte[] chunk = new byte[1 << 16];
            long filled = 0;
            while (filled < payload) {
                int n = in.read(chunk, 0, (int) Math.min(chunk.length, payload - filled));
                if (n < 0) {
                    throw new ImageDataException(name + ": holds " + filled + " bytes of data, the header "
                            + describeDims(dims) + " announces " + payload);
                }
                MemorySegment.copy(chunk, 0, seg, ValueLayout.JAVA_BYTE, filled, n);
                filled += n;
            }
            long extra = 0;
            int n;
            while ((n = in.read(chunk)) > 0) {
                extra += n;
            }
            if (extra > 0) {
                throw new ImageDataException(name + ": " + extra + " bytes past the " + payload + " bytes of data that "
                        + "the header " + describeDims(dims) + " announces");
            }
            return new Payload(dims, seg);
        } catch (ZipException | EOFException e) {
            throw new ImageDataException(name + ": corrupt gzip data (" + e.getMessage() + ")", e);
        }
    }

    private static String describeDims(int[] dims) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < dims.length; i++) {
            sb.append(i == 0 ? "" : "x").append(Integer.toUnsignedString(dims[i]));
        }
        return sb.toString();
    }

    @Override
    public long size() {
        return count;
    }

    @Override
    public int channels() {
        return 1;
    }

    @Override
    public int width(long index) {
        return cols;
    }

    @Override
    public int height(long index) {
        return rows;
    }

    @Override
    public void read(long index, MemorySegment dst) {
        MemorySegment src = view(index);
        MemorySegment.copy(src, 0, dst, 0, src.byteSize());
    }

    @Override
    public MemorySegment view(long index) {
        Objects.checkIndex(index, count);
        long bytes = (long) rows * cols;
        return pixels.asSlice(index * bytes, bytes);
    }

    @Override
    public int label(long index) {
        Objects.checkIndex(index, count);
        return labels == null ? -1 : Byte.toUnsignedInt(labels.get(ValueLayout.JAVA_BYTE, index));
    }

    @Override
    public List<String> classNames() {
        return classNames;
    }

    @Override
    public Normalization knownNormalization() {
        return known;
    }

    @Override
    public String describe(long index) {
        return "image " + index + " of " + name;
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "IdxSource[" + name + ", " + count + " images " + cols + "x" + rows + (labels != null ? ", labeled" : "")
                + "]";
    }
}
