package org.caejava.eval;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.DType;
import org.caejava.api.Tensor;
import org.caejava.data.Dataset;

/**
 * Turns the images of a dataset into feature rows: the frozen encoder's cls token and mean patch
 * token (both after the encoder's final LayerNorm, one {@code cae_encode} call per batch), or the
 * raw normalized pixels as a baseline. Images are loaded without augmentation
 * ({@link Dataset#loadPlain}).
 *
 * <p>Static methods only. {@link #encode} and {@link #rawPixels} hold their off-heap buffers in a
 * confined arena that is closed before they return; {@link #encode} uses the model, so it runs on
 * a thread that may use the model at that time (one thread at a time, as for any model).
 */
public final class FeatureExtractor {

    /**
     * Encoder features of the same images: cls token and mean patch token, both [n, D]. Owns the
     * two heap matrices and follows their threading rules.
     *
     * @param cls the cls token of each image, [n, D]
     * @param mean the mean patch token of each image, [n, D]
     */
    public record Encoded(FeatureMatrix cls, FeatureMatrix mean) {
        /**
         * Both side by side, [cls ; mean]: [n, 2D].
         *
         * @return a new matrix
         */
        public FeatureMatrix clsMean() {
            return FeatureMatrix.concatColumns(cls, mean);
        }
    }

    private FeatureExtractor() {}

    /**
     * Every index of a dataset, or a seeded random subset of {@code limit} of them in ascending order.
     *
     * @param size the dataset's size
     * @param limit the subset's size; 0 or less, or {@code size} and more, for every index
     * @param seed the seed of the subset
     * @return the indices, ascending
     * @throws IllegalArgumentException when {@code size} exceeds 2^31 - 1
     */
    public static long[] subset(long size, long limit, long seed) {
        if (limit <= 0 || limit >= size) {
            return range(size);
        }
        if (size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("datasets of more than 2^31 images are not supported here");
        }
        // Partial Fisher-Yates: the first `limit` entries of a seeded shuffle, sorted for locality.
        int n = (int) size;
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        SplittableRandom rng = new SplittableRandom(seed);
        long[] out = new long[(int) limit];
        for (int i = 0; i < limit; i++) {
            int j = i + rng.nextInt(n - i);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
            out[i] = order[i];
        }
        Arrays.sort(out);
        return out;
    }

    static long[] range(long size) {
        if (size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("datasets of more than 2^31 images are not supported here");
        }
        long[] out = new long[(int) size];
        for (int i = 0; i < out.length; i++) {
            out[i] = i;
        }
        return out;
    }

    /**
     * The labels of the given samples; fails when a sample has none.
     *
     * @param data the dataset
     * @param indices the samples
     * @return the label of each sample
     * @throws IllegalArgumentException when a sample has no label
     */
    public static int[] labels(Dataset data, long[] indices) {
        int[] out = new int[indices.length];
        for (int i = 0; i < indices.length; i++) {
            int label = data.label(indices[i]);
            if (label < 0) {
                throw new IllegalArgumentException("sample " + indices[i] + " of the dataset has no label; "
                        + "the probe needs labeled data");
            }
            out[i] = label;
        }
        return out;
    }

    /**
     * Encodes the given samples in batches of {@code batchSize} through the model's encoder
     * (no mask, no stochastic depth).
     *
     * @param model the model whose encoder is used
     * @param data the images, of the model's channels and size
     * @param indices the samples to encode
     * @param batchSize the images per encoder call, at least 1
     * @return the cls and mean-patch features, one row per index
     * @throws IllegalArgumentException when the images do not fit the model or the batch size is
     *     below 1
     * @throws org.caejava.api.CaeException when the encoder fails
     */
    public static Encoded encode(CaeModel model, Dataset data, long[] indices, int batchSize) {
        CaeConfig c = model.config();
        if (data.channels() != c.inChans() || data.height() != c.imgSize() || data.width() != c.imgSize()) {
            throw new IllegalArgumentException("the dataset's images are " + data.channels() + "x" + data.height() + "x"
                    + data.width() + " (CxHxW) but the model expects " + c.inChans() + "x" + c.imgSize() + "x"
                    + c.imgSize());
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size " + batchSize);
        }
        int n = indices.length;
        int dim = c.embedDim();
        FeatureMatrix cls = FeatureMatrix.zeros(n, dim);
        FeatureMatrix mean = FeatureMatrix.zeros(n, dim);
        long sample = data.floatsPerSample() * Float.BYTES;
        int b = Math.min(batchSize, Math.max(n, 1));
        try (Arena arena = Arena.ofConfined()) {
            Tensor images = Tensor.allocate(arena, DType.F32, b, c.inChans(), c.imgSize(), c.imgSize());
            Tensor clsOut = Tensor.allocate(arena, DType.F32, b, dim);
            Tensor meanOut = Tensor.allocate(arena, DType.F32, b, dim);
            MemorySegment seg = images.segment();
            for (int from = 0; from < n; from += b) {
                int count = Math.min(b, n - from);
                for (int i = 0; i < count; i++) {
                    data.loadPlain(indices[from + i], seg.asSlice(i * sample, sample));
                }
                Tensor in = count == b ? images : images.slice(0, count);
                Tensor co = count == b ? clsOut : clsOut.slice(0, count);
                Tensor mo = count == b ? meanOut : meanOut.slice(0, count);
                model.encode(in, co, mo);
                MemorySegment.copy(co.segment(), ValueLayout.JAVA_FLOAT, 0, cls.data(), from * dim, count * dim);
                MemorySegment.copy(mo.segment(), ValueLayout.JAVA_FLOAT, 0, mean.data(), from * dim, count * dim);
            }
        }
        return new Encoded(cls, mean);
    }

    /** Raw-pixel features are average-pooled down to at most this many values per image, where a factor allows. */
    public static final int MAX_RAW_DIM = 4096;

    /**
     * The smallest integer pooling factor f (dividing the image side) for which C * (H/f) * (W/f)
     * is at most {@link #MAX_RAW_DIM}: 1 for 28x28x1, 7 for 224x224x3 (32x32x3). Falls back to the
     * largest divisor when none is small enough.
     *
     * @param channels C
     * @param height H, in pixels
     * @param width W, in pixels
     * @return the pooling factor, at least 1
     */
    public static int rawPoolFactor(int channels, int height, int width) {
        int best = 1;
        for (int f = 1; f <= Math.min(height, width); f++) {
            if (height % f != 0 || width % f != 0) {
                continue;
            }
            best = f;
            if ((long) channels * (height / f) * (width / f) <= MAX_RAW_DIM) {
                return f;
            }
        }
        return best;
    }

    /**
     * The normalized pixels of each sample, flattened in (c, y, x) order: [n, C*H*W]; images whose
     * C*H*W exceeds {@link #MAX_RAW_DIM} are first average-pooled by {@link #rawPoolFactor}.
     *
     * @param data the images
     * @param indices the samples
     * @return one row of pixels per sample
     */
    public static FeatureMatrix rawPixels(Dataset data, long[] indices) {
        int ch = data.channels();
        int h = data.height();
        int w = data.width();
        int f = rawPoolFactor(ch, h, w);
        int ph = h / f;
        int pw = w / f;
        int d = ch * ph * pw;
        int per = Math.toIntExact(data.floatsPerSample());
        FeatureMatrix m = FeatureMatrix.zeros(indices.length, d);
        float[] img = new float[per];
        float scale = 1f / (f * f);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment tmp = arena.allocate(ValueLayout.JAVA_FLOAT, per);
            for (int i = 0; i < indices.length; i++) {
                data.loadPlain(indices[i], tmp);
                if (f == 1) {
                    MemorySegment.copy(tmp, ValueLayout.JAVA_FLOAT, 0, m.data(), i * d, d);
                    continue;
                }
                MemorySegment.copy(tmp, ValueLayout.JAVA_FLOAT, 0, img, 0, per);
                int o = i * d;
                for (int c = 0; c < ch; c++) {
                    for (int y = 0; y < ph; y++) {
                        for (int x = 0; x < pw; x++) {
                            float s = 0;
                            for (int dy = 0; dy < f; dy++) {
                                int row = (c * h + y * f + dy) * w + x * f;
                                for (int dx = 0; dx < f; dx++) {
                                    s += img[row + dx];
                                }
                            }
                            m.data()[o + (c * ph + y) * pw + x] = s * scale;
                        }
                    }
                }
            }
        }
        return m;
    }
}
