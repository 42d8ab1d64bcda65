package org.caejava.eval;

import java.util.stream.IntStream;

/**
 * k-nearest-neighbour classification by majority vote under Euclidean distance.
 *
 * <p>Ties: among neighbours at the same distance the lower training index is nearer; when several
 * classes share the largest vote count, the tied class that holds the nearest neighbour wins.
 *
 * <p>Distances come from {@code |a - b|^2 = |a|^2 + |b|^2 - 2 a.b}, with the dot products computed
 * for a tile of 64 test rows against a block of 128 training rows at a time. The training rows are
 * stored transposed per block (one array of 128 values per feature), so the innermost loop is an
 * AXPY over 128 floats that the JIT vectorizes (about 4x the scalar speed on AVX2), and a block
 * (128 x D floats, 384 KB at D = 768) stays in cache while the 64 test rows use it. Test tiles run in parallel on the common fork-join pool; each test row scans the
 * training rows in index order, so the result does not depend on the thread count.
 *
 * <p>Immutable (it holds only k), owns nothing, safe to share between threads.
 */
public final class KnnClassifier {

    static final int TRAIN_BLOCK = 128;
    static final int TEST_TILE = 64;
    private static final int ROWS = 4;  // test rows sharing one pass over a block

    private final int k;

    /**
     * A classifier that votes among {@code k} neighbours.
     *
     * @param k the neighbours of each vote, at least 1
     * @throws IllegalArgumentException when {@code k} is less than 1
     */
    public KnnClassifier(int k) {
        if (k < 1) {
            throw new IllegalArgumentException("k = " + k + ", expected >= 1");
        }
        this.k = k;
    }

    /**
     * The neighbours of each vote.
     *
     * @return k
     */
    public int k() {
        return k;
    }

    /**
     * The predicted class of every test row. Labels are in [0, numClasses).
     *
     * @param train the training features, at least one row
     * @param trainLabels the class of each training row
     * @param numClasses the number of classes
     * @param test the test features, of the same dimension
     * @return the predicted class of each test row
     * @throws IllegalArgumentException when sizes differ or a label is out of range
     */
    public int[] predict(FeatureMatrix train, int[] trainLabels, int numClasses, FeatureMatrix test) {
        if (train.rows() != trainLabels.length) {
            throw new IllegalArgumentException(train.rows() + " training rows, " + trainLabels.length + " labels");
        }
        if (train.cols() != test.cols()) {
            throw new IllegalArgumentException("training features have " + train.cols() + " dimensions, test features "
                    + test.cols());
        }
        if (train.rows() < 1) {
            throw new IllegalArgumentException("k-NN needs at least one training row");
        }
        for (int i = 0; i < trainLabels.length; i++) {
            if (trainLabels[i] < 0 || trainLabels[i] >= numClasses) {
                throw new IllegalArgumentException("training label " + trainLabels[i] + " of row " + i
                        + " is outside [0, " + numClasses + ")");
            }
        }
        int kk = Math.min(k, train.rows());
        float[][][] blocks = transposedBlocks(train);
        float[] trainNorms = squaredNorms(train);
        int[] out = new int[test.rows()];
        int tiles = (test.rows() + TEST_TILE - 1) / TEST_TILE;
        IntStream.range(0, tiles).parallel().forEach(t -> {
            int from = t * TEST_TILE;
            int to = Math.min(test.rows(), from + TEST_TILE);
            Neighbours[] nb = nearest(train.rows(), train.cols(), blocks, trainNorms, test, from, to, kk);
            for (int r = from; r < to; r++) {
                out[r] = vote(nb[r - from], trainLabels, numClasses);
            }
        });
        return out;
    }

    /**
     * The share of test rows whose prediction equals the label.
     *
     * @param train the training features, at least one row
     * @param trainLabels the class of each training row
     * @param numClasses the number of classes
     * @param test the test features, of the same dimension
     * @param testLabels the class of each test row
     * @return the accuracy, in [0, 1]
     * @throws IllegalArgumentException when sizes differ or a label is out of range
     */
    public double accuracy(FeatureMatrix train, int[] trainLabels, int numClasses, FeatureMatrix test,
            int[] testLabels) {
        return Accuracy.of(predict(train, trainLabels, numClasses, test), testLabels);
    }

    /** The k nearest training rows of test rows [from, to), sorted nearest first. */
    private static Neighbours[] nearest(int nTrain, int d, float[][][] blocks, float[] trainNorms, FeatureMatrix test,
            int from, int to, int k) {
        int rows = to - from;
        Neighbours[] nb = new Neighbours[rows];
        float[] testNorms = new float[rows];
        float[] x = test.data();
        for (int r = 0; r < rows; r++) {
            nb[r] = new Neighbours(k);
            double s = 0;
            for (int j = 0, o = (from + r) * d; j < d; j++) {
                s += (double) x[o + j] * x[o + j];
            }
            testNorms[r] = (float) s;
        }
        float[][] acc = new float[ROWS][TRAIN_BLOCK];
        for (int b = 0; b < blocks.length; b++) {
            int base = b * TRAIN_BLOCK;
            int width = Math.min(TRAIN_BLOCK, nTrain - base);
            for (int r0 = 0; r0 < rows; r0 += ROWS) {
                int group = Math.min(ROWS, rows - r0);
                dots(x, (from + r0) * d, group, d, blocks[b], acc);
                for (int g = 0; g < group; g++) {
                    Neighbours n = nb[r0 + g];
                    float tn = testNorms[r0 + g];
                    float[] a = acc[g];
                    for (int j = 0; j < width; j++) {
                        float dist = tn + trainNorms[base + j] - 2 * a[j];
                        n.offer(Math.max(dist, 0f), base + j);
                    }
                }
            }
        }
        for (Neighbours n : nb) {
            n.sort();
        }
        return nb;
    }

    /**
     * acc[g][j] = x[row g] . train[block row j] for g < group: AXPYs over the block's columns
     * (col[c][j] = feature c of block row j), four test rows per pass. Every array in the inner
     * loop is indexed by j alone, which lets the JIT vectorize it.
     */
    private static void dots(float[] x, int rowOffset, int group, int d, float[][] cols, float[][] acc) {
        for (float[] a : acc) {
            java.util.Arrays.fill(a, 0f);
        }
        if (group == ROWS) {
            float[] c0 = acc[0];
            float[] c1 = acc[1];
            float[] c2 = acc[2];
            float[] c3 = acc[3];
            int o0 = rowOffset;
            int o1 = rowOffset + d;
            int o2 = rowOffset + 2 * d;
            int o3 = rowOffset + 3 * d;
            for (int c = 0; c < d; c++) {
                float a0 = x[o0 + c];
                float a1 = x[o1 + c];
                float a2 = x[o2 + c];
                float a3 = x[o3 + c];
                float[] col = cols[c];
                for (int j = 0; j < TRAIN_BLOCK; j++) {
                    float v = col[j];
                    c0[j] += a0 * v;
                    c1[j] += a1 * v;
                    c2[j] += a2 * v;
                    c3[j] += a3 * v;
                }
            }
        } else {
            for (int g = 0; g < group; g++) {
                int o = rowOffset + g * d;
                float[] c0 = acc[g];
                for (int c = 0; c < d; c++) {
                    float a = x[o + c];
                    float[] col = cols[c];
                    for (int j = 0; j < TRAIN_BLOCK; j++) {
                        c0[j] += a * col[j];
                    }
                }
            }
        }
    }

    /** Training rows in blocks of 128, each block as D columns of 128 values (zero-padded). */
    private static float[][][] transposedBlocks(FeatureMatrix train) {
        int n = train.rows();
        int d = train.cols();
        float[] x = train.data();
        float[][][] blocks = new float[(n + TRAIN_BLOCK - 1) / TRAIN_BLOCK][][];
        IntStream.range(0, blocks.length).parallel().forEach(b -> {
            float[][] cols = new float[d][TRAIN_BLOCK];
            int base = b * TRAIN_BLOCK;
            int width = Math.min(TRAIN_BLOCK, n - base);
            for (int j = 0; j < width; j++) {
                int o = (base + j) * d;
                for (int c = 0; c < d; c++) {
                    cols[c][j] = x[o + c];
                }
            }
            blocks[b] = cols;
        });
        return blocks;
    }

    private static float[] squaredNorms(FeatureMatrix m) {
        float[] out = new float[m.rows()];
        float[] x = m.data();
        int d = m.cols();
        for (int i = 0; i < out.length; i++) {
            double s = 0;
            for (int j = 0, o = i * d; j < d; j++) {
                s += (double) x[o + j] * x[o + j];
            }
            out[i] = (float) s;
        }
        return out;
    }

    /** Majority vote over neighbours sorted nearest first; ties go to the class of the nearest tied neighbour. */
    static int vote(Neighbours n, int[] labels, int numClasses) {
        int[] counts = new int[numClasses];
        int best = 0;
        for (int i = 0; i < n.size; i++) {
            best = Math.max(best, ++counts[labels[n.index[i]]]);
        }
        for (int i = 0; i < n.size; i++) {
            int c = labels[n.index[i]];
            if (counts[c] == best) {
                return c;
            }
        }
        throw new IllegalStateException("no neighbours");
    }

    /** A bounded max-heap of the k smallest (distance, index) pairs seen. */
    static final class Neighbours {
        final float[] dist;
        final int[] index;
        int size;

        Neighbours(int k) {
            dist = new float[k];
            index = new int[k];
        }

        /**
         * Offers training row {@code i} at {@code d}. Rows arrive in increasing index order, so a
         * row at the same distance as the current k-th never displaces it (lower index wins).
         */
        void offer(float d, int i) {
            if (size < dist.length) {
                int c = size++;
                dist[c] = d;
                index[c] = i;
                siftUp(c);
            } else if (d < dist[0]) {
                dist[0] = d;
                index[0] = i;
                siftDown(0);
            }
        }

        private boolean greater(int a, int b) {
            return dist[a] > dist[b] || (dist[a] == dist[b] && index[a] > index[b]);
        }

        private void siftUp(int c) {
            while (c > 0) {
                int p = (c - 1) / 2;
                if (!greater(c, p)) {
                    return;
                }
                swap(c, p);
                c = p;
            }
        }

        private void siftDown(int p) {
            while (true) {
                int l = 2 * p + 1;
                int r = l + 1;
                int m = p;
                if (l < size && greater(l, m)) {
                    m = l;
                }
                if (r < size && greater(r, m)) {
                    m = r;
                }
                if (m == p) {
                    return;
                }
                swap(p, m);
                p = m;
            }
        }

        private void swap(int a, int b) {
            float td = dist[a];
            dist[a] = dist[b];
            dist[b] = td;
            int ti = index[a];
            index[a] = index[b];
            index[b] = ti;
        }

        /** Sorts nearest first (distance, then index); the heap property is gone afterwards. */
        void sort() {
            for (int i = 1; i < size; i++) {  // insertion sort: k is small
                float d = dist[i];
                int x = index[i];
                int j = i - 1;
                while (j >= 0 && (dist[j] > d || (dist[j] == d && index[j] > x))) {
                    dist[j + 1] = dist[j];
                    index[j + 1] = index[j];
                    j--;
                }
                dist[j + 1] = d;
                index[j + 1] = x;
            }
        }
    }
}
