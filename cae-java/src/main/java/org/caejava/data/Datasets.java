package org.caejava.data;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.net.URLConnection;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Opens image data by what a path holds:
 *
 * <ul>
 *   <li>IDX files: a folder with {@code PREFIX-images-idx3-ubyte[.gz]} (and
 *       {@code PREFIX-labels-idx1-ubyte[.gz]}), or such an images file; the prefix names the split
 *       ({@code train} is "train", {@code t10k} is "test", any other prefix is its own name);
 *   <li>a prepared dataset (a folder with {@code index.json}, see {@link ShardSource}), splits as
 *       written;
 *   <li>an image folder ({@link ImageFolderSource}): when its subfolders are all split names
 *       ({@code train}, {@code val}, {@code validation}, {@code test}), one split per subfolder,
 *       else one split "train".
 * </ul>
 *
 * And {@link #fashionMnist}: the full Fashion-MNIST of Debian's {@code dataset-fashion-mnist}
 * when installed, else the subset embedded in this library (10,000 training and 2,000 test images).
 *
 * <p>Static methods only, safe to call from any thread. The sources they open belong to the
 * caller, who closes them.
 */
public final class Datasets {

    /** Where Debian's dataset-fashion-mnist installs the full set. */
    public static final Path FASHION_MNIST_DIR = Path.of("/usr/share/datasets/fashion-mnist");

    /** The Fashion-MNIST classes, in label order. */
    public static final List<String> FASHION_MNIST_CLASSES = List.of("T-shirt/top", "Trouser", "Pullover", "Dress",
            "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot");

    /** Pixel statistics (pixel / 255) of the 60,000 Fashion-MNIST training images. */
    public static final Normalization FASHION_MNIST_NORMALIZATION = new Normalization(new float[] {0.28604f},
            new float[] {0.35302f});

    private static final String EMBEDDED = "/org/caejava/data/fashion-mnist/";
    private static final Pattern IDX_IMAGES = Pattern.compile("(.+)-images-idx3-ubyte(\\.gz)?");
    private static final Set<String> SPLIT_FOLDERS = Set.of("train", "val", "validation", "test");

    private Datasets() {}

    /** The kinds of data {@link #open} recognizes. Constants only: owns nothing, immutable, thread-safe. */
    public enum Format {
        /** IDX files, the MNIST format, gzipped or not. */
        IDX,
        /** A prepared dataset: shards and their {@code index.json}. */
        SHARDS,
        /** A folder of image files. */
        IMAGE_FOLDER
    }

    /**
     * What {@link #inspect} found at a path: the format, and where each split's data is, in order.
     * Immutable (the map is copied), owns nothing, thread-safe.
     *
     * @param path the path inspected
     * @param format the kind of data found there
     * @param splits each split's name to its data (a file or folder), train first
     */
    public record Layout(Path path, Format format, Map<String, Path> splits) {
        /** Copies the splits into an unmodifiable map that keeps their order. */
        public Layout {
            splits = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(splits));
        }

        /**
         * The names of the splits, in order.
         *
         * @return the split names, train first
         */
        public List<String> splitNames() {
            return List.copyOf(splits.keySet());
        }
    }

    /**
     * Recognizes the data at {@code path} and lists its splits.
     *
     * @param path a folder, or an IDX images file
     * @return the format and the splits found
     * @throws IOException when a folder cannot be listed or the index of shards cannot be read
     * @throws ImageDataException when the path holds no data of a known format
     */
    public static Layout inspect(Path path) throws IOException {
        if (Files.isRegularFile(path)) {
            Matcher m = IDX_IMAGES.matcher(path.getFileName().toString());
            if (!m.matches()) {
                throw new ImageDataException(path + ": a file, but not an IDX images file (*-images-idx3-ubyte[.gz]); "
                        + "give a folder of images, of IDX files or of shards");
            }
            return new Layout(path, Format.IDX, Map.of(splitName(m.group(1)), path));
        }
        if (!Files.isDirectory(path)) {
            throw new ImageDataException(path + ": no such file or folder");
        }
        if (Files.exists(path.resolve(ShardIndex.FILE))) {
            Map<String, Path> splits = new LinkedHashMap<>();
            ShardSource.splits(path).forEach(name -> splits.put(name, path));
            return new Layout(path, Format.SHARDS, splits);
        }
        Map<String, Path> idx = idxSplits(path);
        if (!idx.isEmpty()) {
            return new Layout(path, Format.IDX, idx);
        }
        List<String> splitDirs = new ArrayList<>();
        boolean other = false;
        try (Stream<Path> s = Files.list(path)) {
            for (Path p : s.sorted().toList()) {
                String n = p.getFileName().toString();
                if (n.startsWith(".")) {
                    continue;
                }
                if (Files.isDirectory(p) && SPLIT_FOLDERS.contains(n)) {
                    splitDirs.add(n);
                } else if (Files.isDirectory(p) || ImageFolderSource.isImage(p)) {
                    other = true;
                }
            }
        }
        if (!splitDirs.isEmpty() && !other) {
            splitDirs.sort((a, b) -> Integer.compare(splitOrder(a), splitOrder(b)));
            Map<String, Path> splits = new LinkedHashMap<>();
            splitDirs.forEach(name -> splits.put(name, path.resolve(name)));
            return new Layout(path, Format.IMAGE_FOLDER, splits);
        }
        if (ImageFolderSource.holdsImages(path)) {
            return new Layout(path, Format.IMAGE_FOLDER, Map.of("train", path));
        }
        throw new ImageDataException(path + ": holds no IDX files (*-images-idx3-ubyte[.gz]), no images (JPEG, PNG, "
                + "BMP, GIF) and no index.json of prepared shards");
    }

    private static int splitOrder(String s) {
        return switch (s) {
            case "train" -> 0;
            case "val", "validation" -> 1;
            default -> 2;
        };
    }

    /**
     * Opens the "train" split at {@code path} (the first split, where there is no "train"); image
     * folders are decoded as RGB.
     *
     * @param path a folder, or an IDX images file
     * @return the open source, to be closed by the caller
     * @throws IOException when the data cannot be read
     * @throws ImageDataException when the path holds no data of a known format, or it is malformed
     */
    public static ImageSource open(Path path) throws IOException {
        Layout l = inspect(path);
        return open(path, l.splits().containsKey("train") ? "train" : l.splitNames().get(0), 3);
    }

    /**
     * Opens split {@code split} at {@code path}. {@code folderChannels} (1 or 3) is the channel
     * count that image folders are decoded to; IDX data is gray and shards have the channels they
     * were prepared with.
     *
     * @param path a folder, or an IDX images file
     * @param split the split's name, as {@link #inspect} lists it
     * @param folderChannels 1 or 3: the channels of images decoded from an image folder
     * @return the open source, to be closed by the caller
     * @throws IOException when the data cannot be read
     * @throws ImageDataException when the split does not exist, or the data is malformed
     */
    public static ImageSource open(Path path, String split, int folderChannels) throws IOException {
        Layout l = inspect(path);
        Path where = l.splits().get(split);
        if (where == null) {
            throw new ImageDataException(path + ": no split \"" + split + "\"; it has " + l.splitNames());
        }
        return switch (l.format()) {
            case SHARDS -> ShardSource.open(where, split);
            case IMAGE_FOLDER -> ImageFolderSource.open(where, folderChannels);
            case IDX -> IdxSource.open(where, labelsFor(where));
        };
    }

    /** Split name -> images file of the IDX files in {@code dir}. */
    private static Map<String, Path> idxSplits(Path dir) throws IOException {
        Map<String, Path> out = new LinkedHashMap<>();
        try (Stream<Path> s = Files.list(dir)) {
            // train first, then validation, then test and others, by name.
            for (Path p : s.sorted(Comparator.comparing((Path q) -> splitOrder(idxSplitOf(q)))
                    .thenComparing(Path::toString)).toList()) {
                Matcher m = IDX_IMAGES.matcher(p.getFileName().toString());
                if (m.matches() && Files.isRegularFile(p)) {
                    Path old = out.put(splitName(m.group(1)), p);
                    if (old != null) {
                        throw new ImageDataException(dir + ": both " + old.getFileName() + " and " + p.getFileName()
                                + " hold split \"" + splitName(m.group(1)) + "\"; keep one");
                    }
                }
            }
        }
        return out;
    }

    private static String idxSplitOf(Path p) {
        Matcher m = IDX_IMAGES.matcher(p.getFileName().toString());
        return m.matches() ? splitName(m.group(1)) : "";
    }

    private static String splitName(String prefix) {
        return switch (prefix) {
            case "t10k", "test" -> "test";
            default -> prefix;
        };
    }

    /** The labels file beside an IDX images file, or null. */
    private static Path labelsFor(Path images) {
        String n = images.getFileName().toString().replace("-images-idx3-ubyte", "-labels-idx1-ubyte");
        for (String candidate : List.of(n, n.endsWith(".gz") ? n.substring(0, n.length() - 3) : n + ".gz")) {
            Path p = images.resolveSibling(candidate);
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        return null;
    }

    /**
     * Fashion-MNIST's "train" or "test" split, labeled, with {@link #FASHION_MNIST_CLASSES} and
     * {@link #FASHION_MNIST_NORMALIZATION}: the full set from {@link #FASHION_MNIST_DIR} when it is
     * installed, else the embedded subset (the first 10,000 training and 2,000 test images).
     *
     * @param split "train" or "test"
     * @return the open source, held in memory, to be closed by the caller
     * @throws IOException when the files cannot be read
     * @throws IllegalArgumentException for another split name
     */
    public static ImageSource fashionMnist(String split) throws IOException {
        return fashionMnist(split, !Files.isRegularFile(FASHION_MNIST_DIR.resolve(idxPrefix(split)
                + "-images-idx3-ubyte.gz")));
    }

    /**
     * Whether {@link #fashionMnist} reads the full set (else the embedded subset).
     *
     * @return true when both gzipped image files are in {@link #FASHION_MNIST_DIR}
     */
    public static boolean fullFashionMnistInstalled() {
        return Files.isRegularFile(FASHION_MNIST_DIR.resolve("train-images-idx3-ubyte.gz"))
                && Files.isRegularFile(FASHION_MNIST_DIR.resolve("t10k-images-idx3-ubyte.gz"));
    }

    static ImageSource fashionMnist(String split, boolean embedded) throws IOException {
        String prefix = idxPrefix(split);
        String images = prefix + "-images-idx3-ubyte.gz";
        String labels = prefix + "-labels-idx1-ubyte.gz";
        if (!embedded) {
            return IdxSource.open(FASHION_MNIST_DIR.resolve(images), FASHION_MNIST_DIR.resolve(labels),
                    FASHION_MNIST_CLASSES, FASHION_MNIST_NORMALIZATION);
        }
        URL imagesUrl = resource(images);
        URL labelsUrl = resource(labels);
        URLConnection ic = imagesUrl.openConnection();
        URLConnection lc = labelsUrl.openConnection();
        try (InputStream in = ic.getInputStream(); InputStream lin = lc.getInputStream()) {
            return IdxSource.read(in, "embedded Fashion-MNIST " + images, ic.getContentLengthLong(), lin,
                    "embedded Fashion-MNIST " + labels, lc.getContentLengthLong(), FASHION_MNIST_CLASSES,
                    FASHION_MNIST_NORMALIZATION);
        }
    }

    private static URL resource(String name) {
        URL u = Datasets.class.getResource(EMBEDDED + name);
        if (u == null) {
            throw new ImageDataException("the embedded Fashion-MNIST file " + EMBEDDED + name
                    + " is missing from the classpath (a jar built without resources?)");
        }
        return u;
    }

    private static String idxPrefix(String split) {
        return switch (split) {
            case "train" -> "train";
            case "test" -> "t10k";
            default -> throw new IllegalArgumentException("Fashion-MNIST has the splits \"train\" and \"test\", not \""
                    + split + "\"");
        };
    }
}
