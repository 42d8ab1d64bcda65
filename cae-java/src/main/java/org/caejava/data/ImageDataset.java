package org.caejava.data;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Objects;
import java.util.stream.IntStream;

/**
 * Images of an {@link ImageSource} as training samples: square {@code size x size} images of
 * {@code channels} channels, normalized F32 [C, H, W].
 *
 * <p>{@link #load} draws the {@link Augmentation} from (seed, epoch, index), crops and resizes,
 * mirrors, rounds to 8 bits and normalizes; {@link #loadPlain} takes the plain path (shorter side
 * to {@code size}, centre square). Pixels come from the source's memory in place where it has
 * them (IDX, shards), else they are decoded into an off-heap buffer of the loading thread. Gray
 * sources become RGB by repeating the channel, RGB sources gray by ITU-R 601-2 luma.
 *
 * <pre>{@code
 * try (ImageSource train = Datasets.fashionMnist("train")) {
 *     ImageDataset data = ImageDataset.builder(train).size(28).build();
 *     CaeTrainer.builder().data(data) ...
 * }
 * }</pre>
 *
 * <p>Any number of threads may load at once. Each loading thread keeps its own scratch buffers
 * (off-heap memory of an automatic arena, freed by the garbage collector). The dataset does not
 * own its source: the caller closes the source after the last load.
 */
public final class ImageDataset implements Dataset {

    /** Images sampled to compute the statistics when no normalization is given (the default). */
    public static final int DEFAULT_STATISTICS_IMAGES = 1000;

    private final ImageSource source;
    private final int size;
    private final int channels;
    private final Augmentation augmentation;
    private final Normalization normalization;
    /** lut[c][v]: the normalized value of byte v in channel c. */
    private final float[][] lut;
    private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);

    /** Buffers of one loading thread. */
    private static final class Scratch {
        final Resampler.Work work = new Resampler.Work();
        MemorySegment image = MemorySegment.NULL;
        float[] pixels = new float[0];
        float[] chw = new float[0];
        byte[] bytes = new byte[0];

        MemorySegment image(long bytes) {
            if (image.byteSize() < bytes) {
                image = Arena.ofAuto().allocate(Math.max(bytes, image.byteSize() * 3 / 2), 64);
            }
            return image;
        }
    }

    private ImageDataset(ImageSource source, int size, int channels, Augmentation augmentation,
            Normalization normalization) {
        this.source = source;
        this.size = size;
        this.channels = channels;
        this.augmentation = augmentation;
        this.normalization = normalization;
        float[] mean = normalization.mean();
        float[] std = normalization.std();
        this.lut = new float[channels][256];
        for (int c = 0; c < channels; c++) {
            for (int v = 0; v < 256; v++) {
                lut[c][v] = (v / 255f - mean[c]) / std[c];
            }
        }
    }

    /**
     * A builder of a dataset over {@code source}.
     *
     * @param source the images; it stays the caller's
     * @return a new builder
     * @throws NullPointerException when {@code source} is null
     */
    public static Builder builder(ImageSource source) {
        return new Builder(source);
    }

    /**
     * The source the images come from.
     *
     * @return the source given to the builder
     */
    public ImageSource source() {
        return source;
    }

    /**
     * The training augmentation {@link #load} applies.
     *
     * @return the augmentation
     */
    public Augmentation augmentation() {
        return augmentation;
    }

    @Override
    public long size() {
        return source.size();
    }

    @Override
    public int channels() {
        return channels;
    }

    @Override
    public int height() {
        return size;
    }

    @Override
    public int width() {
        return size;
    }

    @Override
    public int label(long index) {
        return source.label(index);
    }

    @Override
    public List<String> classNames() {
        return source.classNames();
    }

    @Override
    public Normalization normalization() {
        return normalization;
    }

    @Override
    public void load(long index, long epoch, long seed, MemorySegment dst) {
        checkFloats(dst);
        Scratch s = scratch.get();
        int w = source.width(index);
        int h = source.height(index);
        Augmentation.Crop crop = augmentation.draw(w, h, seed, epoch, index);
        MemorySegment px = pixels(index, w, h, s);
        if (augmentation.isRandomCrop()) {
            resampleCrop(px, w, crop, s);
        } else {
            resamplePlain(px, w, h, s);
        }
        storeFloats(s, crop.flip(), dst);
    }

    @Override
    public void loadPlain(long index, MemorySegment dst) {
        checkFloats(dst);
        Scratch s = scratch.get();
        int w = source.width(index);
        int h = source.height(index);
        resamplePlain(pixels(index, w, h, s), w, h, s);
        storeFloats(s, false, dst);
    }

    /**
     * Writes image {@code index} through the plain path as {@code size * size * channels} bytes
     * (HWC, 8 bits) at the start of {@code dst}: what {@code cae prepare} stores.
     *
     * @param index the image, from 0 to {@link #size()} - 1
     * @param dst memory of at least {@code size * size * channels} bytes
     * @throws IllegalArgumentException when {@code dst} is too small
     * @throws ImageDataException when the image cannot be read
     */
    public void loadPlainBytes(long index, MemorySegment dst) {
        long n = (long) size * size * channels;
        if (dst.byteSize() < n) {
            throw new IllegalArgumentException("a " + size + "x" + size + "x" + channels + " image needs " + n
                    + " bytes, the buffer has " + dst.byteSize());
        }
        byte[] out = plainBytes(index, scratch.get());
        MemorySegment.copy(out, 0, dst, ValueLayout.JAVA_BYTE, 0, (int) n);
    }

    /** The plain path of image {@code index} as size * size * channels bytes at the start of s.bytes. */
    private byte[] plainBytes(long index, Scratch s) {
        int w = source.width(index);
        int h = source.height(index);
        resamplePlain(pixels(index, w, h, s), w, h, s);
        int c = source.channels();
        int pixels = size * size;
        int n = pixels * channels;
        if (s.bytes.length < n) {
            s.bytes = new byte[n];
        }
        byte[] out = s.bytes;
        float[] v = s.pixels;
        for (int p = 0; p < pixels; p++) {
            if (c == channels) {
                for (int k = 0; k < c; k++) {
                    out[p * c + k] = (byte) quantize(v[p * c + k]);
                }
            } else if (c == 1) {
                byte g = (byte) quantize(v[p]);
                out[3 * p] = g;
                out[3 * p + 1] = g;
                out[3 * p + 2] = g;
            } else {
                out[p] = (byte) RasterReader.luma(quantize(v[3 * p]), quantize(v[3 * p + 1]), quantize(v[3 * p + 2]));
            }
        }
        return out;
    }

    @Override
    public boolean isAccessibleBy(Thread t) {
        return true;
    }

    private void checkFloats(MemorySegment dst) {
        long bytes = floatsPerSample() * Float.BYTES;
        if (dst.byteSize() < bytes) {
            throw new IllegalArgumentException("a " + channels + "x" + size + "x" + size + " sample needs " + bytes
                    + " bytes, the buffer has " + dst.byteSize());
        }
    }

    private MemorySegment pixels(long index, int w, int h, Scratch s) {
        MemorySegment view = source.view(index);
        if (view != null) {
            return view;
        }
        MemorySegment buf = s.image((long) w * h * source.channels());
        source.read(index, buf);
        return buf;
    }

    private float[] out(Scratch s) {
        int n = size * size * source.channels();
        if (s.pixels.length < n) {
            s.pixels = new float[n];
        }
        return s.pixels;
    }

    private void resampleCrop(MemorySegment px, int w, Augmentation.Crop crop, Scratch s) {
        int c = source.channels();
        if (crop.width() == size && crop.height() == size) {
            Resampler.copy(px, w, c, crop.x(), crop.y(), size, size, s.work, out(s));
        } else {
            Resampler.resample(px, w, c, crop.x(), crop.y(), crop.width(), crop.height(), 0, 0, crop.width(),
                    crop.height(), size, size, augmentation.interpolation().filter, s.work, out(s));
        }
    }

    private void resamplePlain(MemorySegment px, int w, int h, Scratch s) {
        int c = source.channels();
        if (w == size && h == size) {
            Resampler.copy(px, w, c, 0, 0, size, size, s.work, out(s));
        } else {
            Augmentation.Box b = Augmentation.plainBox(w, h, size);
            Resampler.resample(px, w, c, 0, 0, w, h, b.x0(), b.y0(), b.x1(), b.y1(), size, size,
                    augmentation.interpolation().filter, s.work, out(s));
        }
    }

    /** s.pixels (HWC, source channels, [0, 255] unrounded) -> rounded, normalized CHW floats in dst. */
    private void storeFloats(Scratch s, boolean flip, MemorySegment dst) {
        int c = source.channels();
        int plane = size * size;
        int n = plane * channels;
        if (s.chw.length < n) {
            s.chw = new float[n];
        }
        float[] chw = s.chw;
        float[] v = s.pixels;
        for (int y = 0; y < size; y++) {
            for (int x = 0; x < size; x++) {
                int p = (y * size + (flip ? size - 1 - x : x)) * c;
                int o = y * size + x;
                if (c == channels) {
                    for (int k = 0; k < c; k++) {
                        chw[k * plane + o] = lut[k][quantize(v[p + k])];
                    }
                } else if (c == 1) {
                    int g = quantize(v[p]);
                    chw[o] = lut[0][g];
                    chw[plane + o] = lut[1][g];
                    chw[2 * plane + o] = lut[2][g];
                } else {
                    chw[o] = lut[0][RasterReader.luma(quantize(v[p]), quantize(v[p + 1]), quantize(v[p + 2]))];
                }
            }
        }
        MemorySegment.copy(chw, 0, dst, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, n);
    }

    /** Rounds a resampled value to a byte, clamped to [0, 255]. */
    private static int quantize(float v) {
        int q = (int) (v + 0.5f);
        return q < 0 ? 0 : Math.min(q, 255);
    }

    /**
     * Per-channel mean and standard deviation of pixel / 255 over up to {@code maxImages} images
     * of this dataset's plain path, evenly spaced through the source (all when it has fewer), so
     * the result does not depend on threads or runs. The images are read in parallel on the
     * common fork-join pool.
     *
     * @param maxImages the most images to read, at least 1
     * @return the statistics of this dataset's channels
     * @throws IllegalArgumentException when {@code maxImages} is less than 1
     * @throws ImageDataException when an image cannot be read
     */
    public Normalization computeStatistics(int maxImages) {
        if (maxImages < 1) {
            throw new IllegalArgumentException("maxImages must be positive, not " + maxImages);
        }
        long total = source.size();
        int n = (int) Math.min(total, maxImages);
        int bytes = size * size * channels;
        PixelStatistics stats = new PixelStatistics(channels);
        // Buffers per pool thread, for this call only (the common pool's threads outlive it).
        ThreadLocal<Scratch> local = ThreadLocal.withInitial(Scratch::new);
        IntStream.range(0, n).parallel().forEach(k ->
                stats.add(plainBytes((long) ((double) k * total / n), local.get()), bytes));
        return stats.normalization();
    }

    @Override
    public String toString() {
        return "ImageDataset[" + source + ", " + channels + "x" + size + "x" + size + ", " + augmentation + ", "
                + normalization + "]";
    }

    /**
     * Options of an {@link ImageDataset}. A plain mutable object; it does not own the source. Used
     * by one thread at a time.
     */
    public static final class Builder {
        private final ImageSource source;
        private int size;
        private int channels;
        private Augmentation augmentation;
        private Normalization normalization;
        private int statisticsImages = DEFAULT_STATISTICS_IMAGES;

        private Builder(ImageSource source) {
            this.source = Objects.requireNonNull(source, "source");
        }

        /**
         * The output side in pixels (required).
         *
         * @param v the side of the square samples
         * @return this builder
         */
        public Builder size(int v) { size = v; return this; }
        /**
         * 1 (gray) or 3 (RGB); default the source's.
         *
         * @param v the channels of the samples
         * @return this builder
         */
        public Builder channels(int v) { channels = v; return this; }
        /**
         * The training augmentation. Default {@link Augmentation#defaultFor}(size).
         *
         * @param v the augmentation, or null for the default
         * @return this builder
         */
        public Builder augmentation(Augmentation v) { augmentation = v; return this; }
        /**
         * Default: the statistics the source knows ({@link ImageSource#knownNormalization}), else
         * computed over {@link #statisticsImages} images ({@link #computeStatistics}). Evaluation
         * data should take the training data's {@code normalization()}.
         *
         * @param v the normalization, or null for the default
         * @return this builder
         */
        public Builder normalization(Normalization v) { normalization = v; return this; }
        /**
         * Images sampled when statistics are computed (default 1000).
         *
         * @param v the number of images, at least 1
         * @return this builder
         */
        public Builder statisticsImages(int v) { statisticsImages = v; return this; }

        /**
         * Makes the dataset, computing the statistics first when neither given nor known.
         *
         * @return the dataset
         * @throws IllegalArgumentException when the size is not set, a channel count is not 1 or 3,
         *     or the normalization has another channel count
         * @throws ImageDataException when an image read for the statistics cannot be read
         */
        public ImageDataset build() {
            if (size < 1) {
                throw new IllegalArgumentException("the output size must be set and positive, not " + size);
            }
            int c = channels == 0 ? source.channels() : channels;
            if (c != 1 && c != 3) {
                throw new IllegalArgumentException("channels must be 1 or 3, not " + c);
            }
            if (source.channels() != 1 && source.channels() != 3) {
                throw new IllegalArgumentException(source + " has " + source.channels() + " channels, not 1 or 3");
            }
            Augmentation aug = augmentation != null ? augmentation : Augmentation.defaultFor(size);
            Normalization norm = normalization;
            if (norm == null) {
                Normalization known = source.knownNormalization();
                if (known != null && known.channels() == c) {
                    norm = known;
                }
            }
            if (norm == null) {
                norm = new ImageDataset(source, size, c, aug, Normalization.identity(c)).computeStatistics(
                        statisticsImages);
            }
            if (norm.channels() != c) {
                throw new IllegalArgumentException("the normalization has " + norm.channels() + " channels, the data "
                        + c);
            }
            return new ImageDataset(source, size, c, aug, norm);
        }
    }
}
