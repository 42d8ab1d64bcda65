package org.caejava.eval;

import java.util.Arrays;

/**
 * A dense feature matrix [rows, cols] in one row-major float array: one row per image. Held on the
 * Java heap because the evaluation (standardization, k-NN, logistic regression) runs in Java;
 * 10k x 768 features are 30 MB.
 *
 * <p>The record owns only that heap array, and does not copy it: {@link #data()} is the matrix
 * itself, and a write through it is seen by every holder. Several threads may read a matrix while
 * none writes it.
 *
 * @param rows the number of rows, 0 or more
 * @param cols the number of columns, at least 1
 * @param data the values, row-major; exactly {@code rows * cols} of them
 */
public record FeatureMatrix(int rows, int cols, float[] data) {

    /**
     * Checks the sizes; the array is used as given.
     *
     * @throws IllegalArgumentException when a size is out of range or the array's length differs
     *     from {@code rows * cols}
     */
    public FeatureMatrix {
        if (rows < 0 || cols < 1) {
            throw new IllegalArgumentException("a feature matrix of " + rows + " x " + cols);
        }
        if ((long) rows * cols != data.length) {
            throw new IllegalArgumentException(rows + " x " + cols + " features need " + (long) rows * cols
                    + " values, got " + data.length);
        }
    }

    /**
     * A zero matrix.
     *
     * @param rows the number of rows
     * @param cols the number of columns, at least 1
     * @return a new matrix of zeros
     * @throws IllegalArgumentException when the matrix does not fit one Java array
     */
    public static FeatureMatrix zeros(int rows, int cols) {
        long n = (long) rows * cols;
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(rows + " x " + cols + " features do not fit one Java array; "
                    + "evaluate on fewer images (a limit on the train or test split)");
        }
        return new FeatureMatrix(rows, cols, new float[(int) n]);
    }

    /**
     * A matrix from rows of equal length (copied).
     *
     * @param rows the rows, at least one
     * @return a new matrix
     * @throws IllegalArgumentException when there are no rows or their lengths differ
     */
    public static FeatureMatrix of(float[][] rows) {
        if (rows.length == 0) {
            throw new IllegalArgumentException("no rows");
        }
        int cols = rows[0].length;
        FeatureMatrix m = zeros(rows.length, cols);
        for (int i = 0; i < rows.length; i++) {
            if (rows[i].length != cols) {
                throw new IllegalArgumentException("row " + i + " has " + rows[i].length + " values, row 0 has " + cols);
            }
            System.arraycopy(rows[i], 0, m.data, i * cols, cols);
        }
        return m;
    }

    /**
     * The rows of {@code a} and {@code b} side by side: [rows, a.cols + b.cols].
     *
     * @param a the left columns
     * @param b the right columns, as many rows as {@code a}
     * @return a new matrix
     * @throws IllegalArgumentException when the row counts differ
     */
    public static FeatureMatrix concatColumns(FeatureMatrix a, FeatureMatrix b) {
        if (a.rows != b.rows) {
            throw new IllegalArgumentException("cannot join " + a.rows + " rows with " + b.rows + " rows");
        }
        FeatureMatrix m = zeros(a.rows, a.cols + b.cols);
        for (int i = 0; i < a.rows; i++) {
            System.arraycopy(a.data, i * a.cols, m.data, i * m.cols, a.cols);
            System.arraycopy(b.data, i * b.cols, m.data, i * m.cols + a.cols, b.cols);
        }
        return m;
    }

    /**
     * One value.
     *
     * @param row the row
     * @param col the column
     * @return the value at ({@code row}, {@code col})
     * @throws ArrayIndexOutOfBoundsException when the position is outside the data
     */
    public float get(int row, int col) {
        return data[row * cols + col];
    }

    /**
     * A copy of one row.
     *
     * @param row the row
     * @return its {@code cols} values
     */
    public float[] row(int row) {
        return Arrays.copyOfRange(data, row * cols, (row + 1) * cols);
    }

    /**
     * A copy of the matrix.
     *
     * @return a new matrix with its own array
     */
    public FeatureMatrix copy() {
        return new FeatureMatrix(rows, cols, data.clone());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof FeatureMatrix m && m.rows == rows && m.cols == cols && Arrays.equals(m.data, data);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * rows + cols) + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "FeatureMatrix[" + rows + " x " + cols + "]";
    }
}
