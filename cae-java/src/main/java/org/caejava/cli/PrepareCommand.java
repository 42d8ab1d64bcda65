package org.caejava.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.caejava.data.Augmentation;
import org.caejava.data.Datasets;
import org.caejava.data.ImageDataException;
import org.caejava.data.ImageDataset;
import org.caejava.data.ImageSource;
import org.caejava.data.Normalization;
import org.caejava.data.PixelStatistics;
import org.caejava.data.ShardWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code cae prepare}: decode and resize images once into memory-mapped shards for fast training. */
@Command(name = "prepare", mixinStandardHelpOptions = true,
        description = {"Decode a folder of images (or IDX files), resize each (shorter side to SIZE, then the centre "
                + "square, as evaluation does) and write them as FlatBuffers shards with their labels and class "
                + "names, which training reads memory-mapped, without decoding. To keep room for the random "
                + "crops, prepare somewhat larger than the training size (e.g. 256 for 224).",
            "A folder with train/ (val/, test/) subfolders gives one split each; in a split, class subfolders "
                + "give the labels. The pixel statistics of the first split are stored for normalization."})
public final class PrepareCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--images", required = true, paramLabel = "DIR",
            description = "The images: a folder of JPEG/PNG/BMP/GIF (class subfolders, optional train/ and test/), "
                    + "or IDX files.")
    Path images;

    @Option(names = "--out", required = true, paramLabel = "SHARDS", description = "A new or empty folder.")
    Path out;

    @Option(names = "--size", required = true, paramLabel = "S", description = "Side of the stored square images.")
    int size;

    @Option(names = "--channels", paramLabel = "1|3",
            description = "1 (gray) or 3 (RGB); default 3 for image folders, the source's own otherwise.")
    Integer channels;

    @Option(names = "--shard-bytes", paramLabel = "N", defaultValue = "1G", converter = ByteSize.class,
            description = "Largest shard file, in bytes or with K/M/G (default ${DEFAULT-VALUE}, the most allowed).")
    long shardBytes;

    @Option(names = "--interpolation", paramLabel = "bilinear|bicubic",
            description = "Resize filter; default bicubic from S = 64 up, bilinear below.")
    String interpolation;

    @Option(names = "--threads", paramLabel = "T", description = "Decoding threads (default: the CPU cores).")
    int threads = Runtime.getRuntime().availableProcessors();

    /** Parses 1048576, 512K, 256M, 1G (powers of 1024). */
    static final class ByteSize implements CommandLine.ITypeConverter<Long> {
        @Override
        public Long convert(String v) {
            String s = v.trim().toUpperCase(Locale.ROOT);
            long unit = 1;
            if (s.endsWith("K") || s.endsWith("M") || s.endsWith("G")) {
                unit = switch (s.charAt(s.length() - 1)) {
                    case 'K' -> 1L << 10;
                    case 'M' -> 1L << 20;
                    default -> 1L << 30;
                };
                s = s.substring(0, s.length() - 1);
            }
            try {
                return Math.multiplyExact(Long.parseLong(s), unit);
            } catch (NumberFormatException | ArithmeticException e) {
                throw new CommandLine.TypeConversionException("\"" + v + "\" is not a byte count (e.g. 1G, 256M)");
            }
        }
    }

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        try {
            return prepare(spec.commandLine().getOut());
        } catch (ImageDataException | IllegalArgumentException | IOException e) {
            err.println("cae prepare: " + e.getMessage());
            err.flush();
            return 1;
        }
    }

    private int prepare(PrintWriter pw) throws IOException {
        if (size < 1 || size > 1 << 16) {
            throw new IllegalArgumentException("--size must be 1..65536, not " + size);
        }
        if (channels != null && channels != 1 && channels != 3) {
            throw new IllegalArgumentException("--channels must be 1 or 3, not " + channels);
        }
        if (threads < 1) {
            throw new IllegalArgumentException("--threads must be at least 1, not " + threads);
        }
        Augmentation.Interpolation interp = parseInterpolation();
        Datasets.Layout layout = Datasets.inspect(images);
        List<ImageSource> sources = new ArrayList<>();
        try {
            for (String split : layout.splitNames()) {
                sources.add(Datasets.open(images, split, channels == null ? 3 : channels));
            }
            ImageSource first = sources.get(0);
            int c = channels != null ? channels : first.channels();
            List<String> classes = first.classNames();
            for (int i = 1; i < sources.size(); i++) {
                if (!sources.get(i).classNames().equals(classes)) {
                    throw new ImageDataException(images + ": split \"" + layout.splitNames().get(i)
                            + "\" has the classes " + sources.get(i).classNames() + ", split \""
                            + layout.splitNames().get(0) + "\" " + classes + "; prepare them separately");
                }
            }
            long t0 = System.nanoTime();
            try (ShardWriter w = ShardWriter.create(out, size, size, c, classes, shardBytes)) {
                w.info("source", images.toAbsolutePath().toString());
                w.info("resize", "shorter side to " + size + ", centre crop, "
                        + interp.name().toLowerCase(Locale.ROOT));
                for (int i = 0; i < sources.size(); i++) {
                    String split = layout.splitNames().get(i);
                    ImageSource src = sources.get(i);
                    ImageDataset data = ImageDataset.builder(src).size(size).channels(c)
                            .augmentation(Augmentation.none().withInterpolation(interp))
                            .normalization(Normalization.identity(c)).build();
                    PixelStatistics stats = new PixelStatistics(c);
                    long imageBytes = (long) size * size * c;
                    boolean labeled = !classes.isEmpty();
                    long t = System.nanoTime();
                    ShardWriter.SplitSummary s = w.writeSplit(split, src.size(), (index, dst) -> {
                        data.loadPlainBytes(index, dst);
                        stats.add(dst, imageBytes);
                        return labeled ? src.label(index) : -1;
                    }, threads);
                    double seconds = (System.nanoTime() - t) / 1e9;
                    if (i == 0) {
                        w.normalization(stats.normalization());
                    }
                    pw.printf(Locale.ROOT, "%s: %d images of %dx%dx%d -> %d shard%s, %.1f MB (%.0f images/s)%n", split,
                            s.images(), size, size, c, s.shards(), s.shards() == 1 ? "" : "s", s.bytes() / 1e6,
                            s.images() / seconds);
                    pw.flush();
                }
            }
            pw.printf(Locale.ROOT, "wrote %s: %d split%s %s, %s, in %.1f s%n", out, sources.size(),
                    sources.size() == 1 ? "" : "s", layout.splitNames(), classes.isEmpty() ? "unlabeled"
                            : classes.size() + " classes", (System.nanoTime() - t0) / 1e9);
            pw.flush();
            return 0;
        } finally {
            for (ImageSource s : sources) {
                s.close();
            }
        }
    }

    private Augmentation.Interpolation parseInterpolation() {
        if (interpolation == null) {
            return Augmentation.defaultFor(size).interpolation();
        }
        return switch (interpolation.toLowerCase(Locale.ROOT)) {
            case "bilinear" -> Augmentation.Interpolation.BILINEAR;
            case "bicubic" -> Augmentation.Interpolation.BICUBIC;
            default -> throw new IllegalArgumentException("--interpolation must be bilinear or bicubic, not \""
                    + interpolation + "\"");
        };
    }
}
