package org.caejava.data;

import java.util.Objects;
import java.util.SplittableRandom;
import org.caejava.mask.Seeds;

/**
 * The training augmentation of CAE: a horizontal flip with probability {@link
 * #flipProbability()}, then a random resized crop as torchvision's {@code RandomResizedCrop}: up
 * to 10 tries to draw an area share in {@link #scaleMin()}..{@link #scaleMax()} and a log-uniform
 * aspect ratio (w/h) in {@link #ratioMin()}..{@link #ratioMax()} that fits the image, else the
 * centre crop of the whole image clamped to the ratio range. The crop is resized to the output
 * size with {@link #interpolation()}. Every draw comes from a {@link SplittableRandom} seeded with
 * {@link Seeds#mix}(seed, epoch, index), so a run replays exactly.
 *
 * <p>Two presets: {@link #official()} for images of 64 pixels and more, and {@link #smallImages()}
 * for 28x28-class data such as Fashion-MNIST; {@link #defaultFor} picks by output size. {@link
 * #none()} turns augmentation off (training then sees the plain path too).
 *
 * <p>The plain path (evaluation, {@code cae prepare}) resizes the shorter side to the output size
 * and takes the centre square, as torchvision's {@code Resize(S)} then {@code CenterCrop(S)}; no
 * randomness, and an image of the output size passes unchanged.
 *
 * <p>Immutable, owns nothing, safe to share between threads: the {@code with} methods return
 * changed copies, and every draw uses its own random stream.
 */
public final class Augmentation {

    /** How a crop is resized to the output size. Constants only: owns nothing, immutable, thread-safe. */
    public enum Interpolation {
        /** Bilinear (triangle) filtering. */
        BILINEAR(Resampler.Filter.BILINEAR),
        /** Bicubic filtering. */
        BICUBIC(Resampler.Filter.BICUBIC);

        final Resampler.Filter filter;

        Interpolation(Resampler.Filter filter) {
            this.filter = filter;
        }
    }

    /**
     * The crop of one sample, in source pixels, and whether it is mirrored. A plain value: owns
     * nothing, immutable, thread-safe.
     *
     * @param x the left edge of the crop in the (unflipped) source image
     * @param y the top edge of the crop
     * @param width the width of the crop
     * @param height the height of the crop
     * @param flip whether the output is mirrored left to right
     */
    public record Crop(int x, int y, int width, int height, boolean flip) {}

    /**
     * The source rectangle of the plain path, in source pixels (fractional edges). A plain value:
     * owns nothing, immutable, thread-safe.
     *
     * @param x0 the left edge
     * @param y0 the top edge
     * @param x1 the right edge, exclusive
     * @param y1 the bottom edge, exclusive
     */
    public record Box(double x0, double y0, double x1, double y1) {}

    private final double scaleMin;
    private final double scaleMax;
    private final double ratioMin;
    private final double ratioMax;
    private final double flip;
    private final Interpolation interpolation;
    private final boolean random;

    private Augmentation(double scaleMin, double scaleMax, double ratioMin, double ratioMax, double flip,
            Interpolation interpolation, boolean random) {
        if (!(scaleMin > 0 && scaleMin <= scaleMax && scaleMax <= 1)) {
            throw new IllegalArgumentException("crop scale must satisfy 0 < min <= max <= 1, got (" + scaleMin + ", "
                    + scaleMax + ")");
        }
        if (!(ratioMin > 0 && ratioMin <= ratioMax && Double.isFinite(ratioMax))) {
            throw new IllegalArgumentException("crop aspect ratio must satisfy 0 < min <= max, got (" + ratioMin
                    + ", " + ratioMax + ")");
        }
        if (!(flip >= 0 && flip <= 1)) {
            throw new IllegalArgumentException("flip probability must be in [0, 1], got " + flip);
        }
        this.scaleMin = scaleMin;
        this.scaleMax = scaleMax;
        this.ratioMin = ratioMin;
        this.ratioMax = ratioMax;
        this.flip = flip;
        this.interpolation = Objects.requireNonNull(interpolation, "interpolation");
        this.random = random;
    }

    /**
     * CAE's pretraining augmentation for ImageNet-sized images: scale (0.08, 1), ratio (3/4, 4/3),
     * flip 0.5, bicubic.
     *
     * @return the official augmentation
     */
    public static Augmentation official() {
        return new Augmentation(0.08, 1.0, 3.0 / 4, 4.0 / 3, 0.5, Interpolation.BICUBIC, true);
    }

    /**
     * A milder crop for 28x28-class images: scale (0.5, 1), ratio (3/4, 4/3), flip 0.5, bilinear.
     * At 28 pixels the official 8% crop is a 8x8 patch blown up 3.5 times: a blur that keeps little
     * of the object and that no test image looks like; half the area still moves and rescales
     * the object while keeping it recognisable (the small-image recipes of SimCLR/MAE-style CIFAR
     * runs use 0.2-0.35 at 32 pixels, on objects that do not fill the frame as Fashion-MNIST's
     * do). Clothes and shoes are left-right symmetric classes, so the flip keeps labels. Bilinear
     * because bicubic's overshoot rings visibly on the hard edges of 28-pixel images.
     *
     * @return the small-image augmentation
     */
    public static Augmentation smallImages() {
        return new Augmentation(0.5, 1.0, 3.0 / 4, 4.0 / 3, 0.5, Interpolation.BILINEAR, true);
    }

    /**
     * {@link #official()} for output sizes of 64 and more, else {@link #smallImages()}.
     *
     * @param outputSize the side of the training images, in pixels
     * @return the default augmentation for that size
     */
    public static Augmentation defaultFor(int outputSize) {
        return outputSize >= 64 ? official() : smallImages();
    }

    /**
     * No augmentation: training sees the plain path (bilinear; add a flip with {@link
     * #withFlipProbability}).
     *
     * @return augmentation that draws no crop and no flip
     */
    public static Augmentation none() {
        return new Augmentation(1, 1, 1, 1, 0, Interpolation.BILINEAR, false);
    }

    /**
     * A copy with another range of the crop's area share; it draws random crops.
     *
     * @param min the smallest share of the image's area, above 0
     * @param max the largest share, at most 1
     * @return the changed copy
     * @throws IllegalArgumentException unless {@code 0 < min <= max <= 1}
     */
    public Augmentation withScale(double min, double max) {
        return new Augmentation(min, max, ratioMin, ratioMax, flip, interpolation, true);
    }

    /**
     * A copy with another range of the crop's aspect ratio (width over height); it draws random crops.
     *
     * @param min the smallest ratio, above 0
     * @param max the largest ratio, finite
     * @return the changed copy
     * @throws IllegalArgumentException unless {@code 0 < min <= max} and max is finite
     */
    public Augmentation withRatio(double min, double max) {
        return new Augmentation(scaleMin, scaleMax, min, max, flip, interpolation, true);
    }

    /**
     * A copy with another probability of a horizontal flip.
     *
     * @param p the probability, in [0, 1]
     * @return the changed copy
     * @throws IllegalArgumentException when {@code p} is outside [0, 1]
     */
    public Augmentation withFlipProbability(double p) {
        return new Augmentation(scaleMin, scaleMax, ratioMin, ratioMax, p, interpolation, random);
    }

    /**
     * A copy with another resize filter.
     *
     * @param i the filter; not null
     * @return the changed copy
     */
    public Augmentation withInterpolation(Interpolation i) {
        return new Augmentation(scaleMin, scaleMax, ratioMin, ratioMax, flip, i, random);
    }

    /**
     * The smallest area share of a random crop.
     *
     * @return the share, in (0, 1]
     */
    public double scaleMin() {
        return scaleMin;
    }

    /**
     * The largest area share of a random crop.
     *
     * @return the share, in (0, 1]
     */
    public double scaleMax() {
        return scaleMax;
    }

    /**
     * The smallest aspect ratio (width over height) of a random crop.
     *
     * @return the ratio
     */
    public double ratioMin() {
        return ratioMin;
    }

    /**
     * The largest aspect ratio (width over height) of a random crop.
     *
     * @return the ratio
     */
    public double ratioMax() {
        return ratioMax;
    }

    /**
     * The probability of a horizontal flip.
     *
     * @return the probability, in [0, 1]
     */
    public double flipProbability() {
        return flip;
    }

    /**
     * The filter that resizes a crop to the output size.
     *
     * @return the filter
     */
    public Interpolation interpolation() {
        return interpolation;
    }

    /**
     * Whether a random resized crop is drawn (false for {@link #none()}: the plain path's crop).
     *
     * @return true when crops are drawn
     */
    public boolean isRandomCrop() {
        return random;
    }

    /**
     * The crop of sample {@code index} in {@code epoch} of run {@code seed}, on a {@code width x height} image.
     *
     * @param width the source image's width, in pixels
     * @param height the source image's height, in pixels
     * @param seed the run seed
     * @param epoch the epoch
     * @param index the sample
     * @return the crop, the same for the same five numbers
     * @throws IllegalArgumentException when a size is less than 1
     */
    public Crop draw(int width, int height, long seed, long epoch, long index) {
        return draw(width, height, new SplittableRandom(Seeds.mix(seed, epoch, index)));
    }

    /**
     * Draws from {@code rng}: the flip first, then the crop (the official order).
     *
     * @param width the source image's width, in pixels
     * @param height the source image's height, in pixels
     * @param rng the random stream to draw from
     * @return the crop
     * @throws IllegalArgumentException when a size is less than 1
     */
    public Crop draw(int width, int height, SplittableRandom rng) {
        if (width < 1 || height < 1) {
            throw new IllegalArgumentException("image size " + width + "x" + height);
        }
        boolean mirrored = flip > 0 && rng.nextDouble() < flip;
        if (!random) {
            return new Crop(0, 0, width, height, mirrored);
        }
        double area = (double) width * height;
        double logLo = Math.log(ratioMin);
        double logHi = Math.log(ratioMax);
        for (int attempt = 0; attempt < 10; attempt++) {
            double target = area * uniform(rng, scaleMin, scaleMax);
            double aspect = Math.exp(uniform(rng, logLo, logHi));
            int w = (int) Math.rint(Math.sqrt(target * aspect));
            int h = (int) Math.rint(Math.sqrt(target / aspect));
            if (w > 0 && w <= width && h > 0 && h <= height) {
                int y = rng.nextInt(height - h + 1);
                int x = rng.nextInt(width - w + 1);
                return mirror(new Crop(x, y, w, h, mirrored), width);
            }
        }
        return mirror(fallback(width, height, mirrored), width);
    }

    /** torchvision's fallback: the centre crop of the whole image, its ratio clamped to the range. */
    Crop fallback(int width, int height, boolean mirrored) {
        double inRatio = (double) width / height;
        int w;
        int h;
        if (inRatio < ratioMin) {
            w = width;
            h = (int) Math.rint(w / ratioMin);
        } else if (inRatio > ratioMax) {
            h = height;
            w = (int) Math.rint(h * ratioMax);
        } else {
            w = width;
            h = height;
        }
        return new Crop((width - w) / 2, (height - h) / 2, w, h, mirrored);
    }

    /**
     * The crop was drawn on the flipped image; the same pixels of the unflipped image sit mirrored
     * about the vertical centre line.
     */
    private static Crop mirror(Crop c, int width) {
        return c.flip() ? new Crop(width - c.x() - c.width(), c.y(), c.width(), c.height(), true) : c;
    }

    private static double uniform(SplittableRandom rng, double lo, double hi) {
        return lo == hi ? lo : lo + (hi - lo) * rng.nextDouble();
    }

    /**
     * The plain path's source rectangle of a {@code width x height} image for a {@code size x size}
     * output: torchvision's Resize(size) (shorter side to size, the longer to {@code int(size *
     * long / short)}) and then CenterCrop(size) (offset {@code round((resized - size) / 2)}), as one
     * box in source pixels; resampling that box directly gives the same pixels as resizing the whole
     * image and cropping.
     *
     * @param width the source image's width, in pixels
     * @param height the source image's height, in pixels
     * @param size the side of the square output, in pixels
     * @return the source rectangle
     */
    public static Box plainBox(int width, int height, int size) {
        int rw;
        int rh;
        if ((width <= height && width == size) || (height <= width && height == size)) {
            rw = width;
            rh = height;
        } else if (width < height) {
            rw = size;
            rh = (int) ((long) size * height / width);
        } else {
            rh = size;
            rw = (int) ((long) size * width / height);
        }
        int left = (int) Math.rint((rw - size) / 2.0);
        int top = (int) Math.rint((rh - size) / 2.0);
        double sx = (double) width / rw;
        double sy = (double) height / rh;
        return new Box(left * sx, top * sy, (left + size) * sx, (top + size) * sy);
    }

    @Override
    public String toString() {
        return random ? String.format("Augmentation[flip %.2f, crop scale (%s, %s), ratio (%.4f, %.4f), %s]", flip,
                scaleMin, scaleMax, ratioMin, ratioMax, interpolation.name().toLowerCase())
                : String.format("Augmentation[flip %.2f, no crop, %s]", flip, interpolation.name().toLowerCase());
    }
}
