package org.caejava.data;

import java.lang.foreign.MemorySegment;
import org.caejava.api.DType;
import org.caejava.api.Location;
import org.caejava.api.Tensor;

/**
 * A dataset over an F32 host tensor [N, C, H, W] of already normalized images (no augmentation),
 * with optional labels. The tensor is used in place, not copied: it stays owned by its arena,
 * which must stay open while the dataset is used; the labels are copied. Loads may run on any
 * thread the tensor's memory is accessible from ({@link #isAccessibleBy}).
 */
public final class TensorDataset implements Dataset {

    private final Tensor images;
    private final int[] labels;

    private TensorDataset(Tensor images, int[] labels) {
        if (images.dtype() != DType.F32 || images.rank() != 4 || images.location() != Location.HOST) {
            throw new IllegalArgumentException("a TensorDataset needs an F32 host tensor [N, C, H, W], got " + images);
        }
        if (labels != null && labels.length != images.size(0)) {
            throw new IllegalArgumentException(labels.length + " labels for " + images.size(0) + " images");
        }
        this.images = images;
        this.labels = labels == null ? null : labels.clone();
    }

    /**
     * An unlabeled dataset over {@code images}.
     *
     * @param images an F32 host tensor [N, C, H, W] of normalized images
     * @return the dataset
     * @throws IllegalArgumentException when the tensor is not an F32 host tensor of rank 4
     */
    public static TensorDataset of(Tensor images) {
        return new TensorDataset(images, null);
    }

    /**
     * A labeled dataset over {@code images}.
     *
     * @param images an F32 host tensor [N, C, H, W] of normalized images
     * @param labels one label per image, or null for none
     * @return the dataset
     * @throws IllegalArgumentException when the tensor is not an F32 host tensor of rank 4, or the
     *     label count differs from N
     */
    public static TensorDataset of(Tensor images, int[] labels) {
        return new TensorDataset(images, labels);
    }

    @Override
    public long size() {
        return images.size(0);
    }

    @Override
    public int channels() {
        return (int) images.size(1);
    }

    @Override
    public int height() {
        return (int) images.size(2);
    }

    @Override
    public int width() {
        return (int) images.size(3);
    }

    @Override
    public void load(long index, long epoch, long seed, MemorySegment dst) {
        MemorySegment src = images.select(index).segment();
        MemorySegment.copy(src, 0, dst, 0, src.byteSize());
    }

    @Override
    public boolean isAccessibleBy(Thread t) {
        return images.segment().isAccessibleBy(t);
    }

    @Override
    public int label(long index) {
        return labels == null ? -1 : labels[Math.toIntExact(index)];
    }
}
