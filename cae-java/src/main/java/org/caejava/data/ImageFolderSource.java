package org.caejava.data;

import java.awt.image.BufferedImage;
import java.awt.image.DataBuffer;
import java.awt.image.MultiPixelPackedSampleModel;
import java.awt.image.SampleModel;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.stream.Stream;
import javax.imageio.IIOException;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.stream.ImageInputStream;

/**
 * Images in a folder (JPEG, PNG, BMP, GIF), decoded with ImageIO each time one is read. When the
 * folder has subfolders, each subfolder is a class: its name is the class name (names sorted, the
 * label is the index), and its images are found at any depth below it; otherwise the folder's own
 * images (at any depth) are unlabeled. Files whose names start with a dot are skipped, as are
 * files of other types. Images are converted to the requested channel count (see {@link
 * RasterReader}); a GIF gives its first frame.
 *
 * <p>An image's size is read from its header before it is decoded, and images over {@link
 * #maxPixels()} are refused without decoding them, as are images whose decoded size is more than
 * {@link #MAX_EXPANSION} times their file's. A file that does not decode, or that ends early
 * (a truncated JPEG decodes with a warning that is treated as an error), is refused with an {@link
 * ImageDataException} naming it.
 *
 * <p>A source holds the list of files and the image sizes read so far; it owns no off-heap memory
 * and keeps no file open between reads ({@link #close()} does nothing). Any number of threads may
 * read at once.
 */
public final class ImageFolderSource implements ImageSource {

    /** The default bound on width * height: 100 megapixels (a 10000 x 10000 image). */
    public static final long DEFAULT_MAX_PIXELS = 100_000_000L;

    private static final Set<String> EXTENSIONS = Set.of("jpg", "jpeg", "png", "bmp", "gif");
    /** Decoded bytes per file byte beyond which an image's header cannot be telling the truth. */
    static final long MAX_EXPANSION = 4096;
    /** Decoded bytes allowed beyond the expansion bound, for tiny files. */
    private static final long EXPANSION_SLACK = 1 << 20;

    /** What to do with an alpha channel. Constants only: owns nothing, immutable, thread-safe. */
    public enum Alpha {
        /** Ignore it and keep the colour values, as PIL's {@code convert("RGB")} in the official loaders. */
        DROP,
        /** Composite the image over black ({@code c * alpha / 255}). */
        BLACK
    }

    private final Path root;
    private final List<Path> files;
    private final int[] labels;
    private final List<String> classNames;
    private final int channels;
    private final Alpha alpha;
    private final long maxPixels;
    /** width << 32 | height of each image once its header was read; 0 before. */
    private final AtomicLongArray sizes;

    private ImageFolderSource(Path root, List<Path> files, int[] labels, List<String> classNames, int channels,
            Alpha alpha, long maxPixels) {
        this.root = root;
        this.files = files;
        this.labels = labels;
        this.classNames = classNames;
        this.channels = channels;
        this.alpha = alpha;
        this.maxPixels = maxPixels;
        this.sizes = new AtomicLongArray(files.size());
    }

    /**
     * The images under {@code folder} as {@code channels} (1 = gray, 3 = RGB), alpha dropped.
     *
     * @param folder the folder of images, or of class subfolders
     * @param channels 1 for gray, 3 for RGB
     * @return the source, over {@link #DEFAULT_MAX_PIXELS}-bounded images
     * @throws IOException when the folder cannot be listed
     * @throws ImageDataException when the folder holds no images, a class folder is empty, or
     *     images lie beside class folders
     * @throws IllegalArgumentException when {@code channels} is not 1 or 3
     */
    public static ImageFolderSource open(Path folder, int channels) throws IOException {
        return open(folder, channels, Alpha.DROP, DEFAULT_MAX_PIXELS);
    }

    /**
     * The images under {@code folder} as {@code channels}, with an alpha rule and a size bound.
     *
     * @param folder the folder of images, or of class subfolders
     * @param channels 1 for gray, 3 for RGB
     * @param alpha what to do with an alpha channel; not null
     * @param maxPixels the largest width * height accepted, at least 1
     * @return the source
     * @throws IOException when the folder cannot be listed
     * @throws ImageDataException when the folder holds no images, a class folder is empty, or
     *     images lie beside class folders
     * @throws IllegalArgumentException when {@code channels} is not 1 or 3, or {@code maxPixels} is
     *     less than 1
     */
    public static ImageFolderSource open(Path folder, int channels, Alpha alpha, long maxPixels) throws IOException {
        Objects.requireNonNull(alpha, "alpha");
        if (channels != 1 && channels != 3) {
            throw new IllegalArgumentException("channels must be 1 (gray) or 3 (RGB), not " + channels);
        }
        if (maxPixels < 1) {
            throw new IllegalArgumentException("maxPixels must be positive, not " + maxPixels);
        }
        if (!Files.isDirectory(folder)) {
            throw new ImageDataException(folder + ": not a folder");
        }
        List<Path> classDirs = new ArrayList<>();
        List<Path> rootImages = new ArrayList<>();
        try (Stream<Path> s = Files.list(folder)) {
            for (Path p : s.sorted().toList()) {
                if (hidden(p)) {
                    continue;
                }
                if (Files.isDirectory(p)) {
                    classDirs.add(p);
                } else if (isImage(p)) {
                    rootImages.add(p);
                }
            }
        }
        List<Path> files = new ArrayList<>();
        List<Integer> labels = new ArrayList<>();
        List<String> names = new ArrayList<>();
        if (classDirs.isEmpty()) {
            files.addAll(rootImages);
        } else {
            if (!rootImages.isEmpty()) {
                throw new ImageDataException(folder + ": holds images (" + rootImages.get(0).getFileName()
                        + ") beside class subfolders (" + classDirs.get(0).getFileName()
                        + "); put every image in a class subfolder, or use a folder without subfolders");
            }
            for (Path dir : classDirs) {
                List<Path> found = imagesBelow(dir);
                if (found.isEmpty()) {
                    throw new ImageDataException(dir + ": class folder without images (JPEG, PNG, BMP or GIF)");
                }
                for (Path f : found) {
                    files.add(f);
                    labels.add(names.size());
                }
                names.add(dir.getFileName().toString());
            }
        }
        if (files.isEmpty()) {
            throw new ImageDataException(folder + ": no images (JPEG, PNG, BMP or GIF) in it");
        }
        int[] l = classDirs.isEmpty() ? null : labels.stream().mapToInt(Integer::intValue).toArray();
        return new ImageFolderSource(folder, List.copyOf(files), l, List.copyOf(names), channels, alpha, maxPixels);
    }

    /** Whether {@code folder} directly or in subfolders holds at least one image file. */
    static boolean holdsImages(Path folder) throws IOException {
        try (Stream<Path> s = Files.walk(folder)) {
            return s.anyMatch(p -> Files.isRegularFile(p) && isImage(p) && !hidden(p));
        }
    }

    private static List<Path> imagesBelow(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(p -> Files.isRegularFile(p) && isImage(p) && !hiddenBelow(dir, p)).sorted().toList();
        }
    }

    private static boolean hiddenBelow(Path dir, Path p) {
        for (Path part : dir.relativize(p)) {
            if (part.toString().startsWith(".")) {
                return true;
            }
        }
        return false;
    }

    private static boolean hidden(Path p) {
        return p.getFileName().toString().startsWith(".");
    }

    static boolean isImage(Path p) {
        String n = p.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot > 0 && EXTENSIONS.contains(n.substring(dot + 1).toLowerCase(Locale.ROOT));
    }

    /**
     * The folder the source was opened on.
     *
     * @return the folder
     */
    public Path root() {
        return root;
    }

    /**
     * The file of image {@code index}.
     *
     * @param index the image, from 0 to {@link #size()} - 1
     * @return its path
     * @throws IndexOutOfBoundsException when {@code index} is out of range
     */
    public Path file(long index) {
        return files.get(Math.toIntExact(index));
    }

    /**
     * What is done with an alpha channel.
     *
     * @return the alpha rule
     */
    public Alpha alpha() {
        return alpha;
    }

    /**
     * The largest width * height accepted.
     *
     * @return the bound, in pixels
     */
    public long maxPixels() {
        return maxPixels;
    }

    @Override
    public long size() {
        return files.size();
    }

    @Override
    public int channels() {
        return channels;
    }

    @Override
    public int width(long index) {
        return (int) (dimensions(index) >>> 32);
    }

    @Override
    public int height(long index) {
        return (int) dimensions(index);
    }

    /** {@code width << 32 | height}, read from the header once. */
    private long dimensions(long index) {
        int i = Math.toIntExact(index);
        long s = sizes.get(i);
        if (s == 0) {
            Path f = files.get(i);
            try (ImageInputStream in = open(f)) {
                ImageReader reader = reader(f, in);
                try {
                    s = checkedSize(f, reader);
                } finally {
                    reader.dispose();
                }
            } catch (ImageDataException e) {
                throw e;
            } catch (IOException | RuntimeException e) {
                throw new ImageDataException(f + ": cannot read the image header (" + e.getMessage() + ")", e);
            }
            sizes.set(i, s);
        }
        return s;
    }

    @Override
    public void read(long index, MemorySegment dst) {
        int i = Math.toIntExact(index);
        Path f = files.get(i);
        long s = dimensions(index);
        long bytes = (s >>> 32) * (int) s * channels;
        if (dst.byteSize() < bytes) {
            throw new IllegalArgumentException(f + " needs " + bytes + " bytes, the buffer has " + dst.byteSize());
        }
        try (ImageInputStream in = open(f)) {
            ImageReader reader = reader(f, in);
            try {
                if (checkedSize(f, reader) != s) {
                    throw new ImageDataException(f + ": changed since its size was read (" + (s >>> 32) + "x" + (int) s
                            + " then, " + reader.getWidth(0) + "x" + reader.getHeight(0) + " now)");
                }
                List<String> warnings = new ArrayList<>();
                reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
                BufferedImage img = reader.read(0);
                for (String w : warnings) {
                    String lower = w.toLowerCase(Locale.ROOT);
                    if (lower.contains("truncat") || lower.contains("premature end")) {
                        throw new ImageDataException(f + ": the image is cut short (" + w + ")");
                    }
                }
                if (img.getWidth() != (int) (s >>> 32) || img.getHeight() != (int) s) {
                    throw new ImageDataException(f + ": decoded " + img.getWidth() + "x" + img.getHeight()
                            + ", the header says " + (s >>> 32) + "x" + (int) s);
                }
                RasterReader.read(img, channels, alpha, dst);
            } finally {
                reader.dispose();
            }
        } catch (ImageDataException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            // ImageIO reports corrupt data as IIOException, and sometimes as an unchecked exception.
            throw new ImageDataException(f + ": cannot decode the image (" + e.getMessage() + ")", e);
        }
    }

    private static ImageInputStream open(Path f) throws IOException {
        if (!Files.isReadable(f)) {
            throw new ImageDataException(f + ": missing or not readable");
        }
        ImageInputStream in = ImageIO.createImageInputStream(f.toFile());
        if (in == null) {
            throw new ImageDataException(f + ": ImageIO cannot open it");
        }
        return in;
    }

    private static ImageReader reader(Path f, ImageInputStream in) {
        Iterator<ImageReader> it = ImageIO.getImageReaders(in);
        if (!it.hasNext()) {
            throw new ImageDataException(f + ": not an image ImageIO can read (JPEG, PNG, BMP or GIF)");
        }
        ImageReader reader = it.next();
        reader.setInput(in, true, true);
        return reader;
    }

    private long checkedSize(Path f, ImageReader reader) throws IOException {
        int w = reader.getWidth(0);
        int h = reader.getHeight(0);
        if (w <= 0 || h <= 0) {
            throw new ImageDataException(f + ": the header claims " + w + "x" + h + " pixels");
        }
        if ((long) w * h > maxPixels) {
            throw new ImageDataException(f + ": " + w + "x" + h + " is " + (long) w * h + " pixels, more than the "
                    + maxPixels + " allowed; downscale it first");
        }
        checkDecodedBytes(f, reader, w, h);
        return (long) w << 32 | h;
    }

    /**
     * Refuses an image whose decoded raster would be larger than its file can encode, so that a small
     * file with a lying header cannot make the decoder (which allocates the raster before it reads the
     * pixel data) or a caller (which sizes buffers by {@link #width} and {@link #height}) allocate up
     * to {@link #maxPixels()} times 8 bytes. Deflate (PNG) expands at most about 1032:1, baseline and
     * progressive JPEG about 1366:1 (one bit per 8x8 block per component), LZW (GIF) about 2731:1;
     * {@link #MAX_EXPANSION} leaves room above all three. Only run-length BMPs that skip most of their
     * pixels could exceed it.
     */
    private static void checkDecodedBytes(Path f, ImageReader reader, long w, long h) throws IOException {
        Iterator<ImageTypeSpecifier> types;
        try {
            types = reader.getImageTypes(0);
        } catch (IIOException e) {
            return;  // a type ImageIO cannot decode: refused by read(), before it allocates
        }
        if (!types.hasNext()) {
            return;
        }
        SampleModel sm = types.next().getSampleModel(1, 1);
        long bits = sm instanceof MultiPixelPackedSampleModel packed ? packed.getPixelBitStride()
                : (long) DataBuffer.getDataTypeSize(sm.getDataType()) * sm.getNumDataElements();
        long rowBytes = (w * bits + 7) / 8;
        long fileBytes = Files.size(f);
        if (rowBytes > (MAX_EXPANSION * fileBytes + EXPANSION_SLACK) / h) {
            throw new ImageDataException(f + ": " + w + "x" + h + " pixels of " + bits + " bits decode to "
                    + BigInteger.valueOf(rowBytes).multiply(BigInteger.valueOf(h)) + " bytes, more than its "
                    + fileBytes + " bytes can encode (at most " + MAX_EXPANSION + ":1)");
        }
    }

    @Override
    public int label(long index) {
        return labels == null ? -1 : labels[Math.toIntExact(index)];
    }

    @Override
    public List<String> classNames() {
        return classNames;
    }

    @Override
    public String describe(long index) {
        return file(index).toString();
    }

    @Override
    public String toString() {
        return "ImageFolderSource[" + root + ", " + files.size() + " images" + (labels != null ? ", "
                + classNames.size() + " classes" : "") + ", " + channels + " channels]";
    }
}
