package org.caejava.report;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import javax.imageio.ImageIO;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.DType;
import org.caejava.api.Tensor;
import org.caejava.data.Dataset;
import org.caejava.mask.BlockMaskGenerator;
import org.caejava.mask.MaskGenerator;

/**
 * A picture of what the model reconstructs: for a few images (spread evenly over the dataset,
 * without augmentation), three rows: the original, the masked input (masked patches grey) and the
 * reconstruction (visible patches as given, masked patches from the decoder's predictions, see
 * {@link Reconstruction}). Small images are enlarged by nearest neighbour to about 112 pixels.
 */
public final class ReconstructionGrid {

    public static final String FILE = "reconstruction.png";
    /** Masked patches in the middle row. */
    public static final int GREY = 0x808080;

    static final int GAP = 8;
    /** Height of the line above each row that names it. */
    static final int LABEL_HEIGHT = 24;
    static final int TITLE_HEIGHT = 36;
    private static final String[] ROWS = {"original", "masked input", "reconstruction"};

    private ReconstructionGrid() {}

    /** The picture with {@code count} images and block masking of half the patches, like the trainer's default. */
    public static void write(Path png, CaeModel model, Dataset data, int count) throws IOException {
        CaeConfig c = model.config();
        int masked = (int) Math.round(0.5 * c.numPatches());
        write(png, model, data, count, new BlockMaskGenerator(c.gridSize(), masked), 0);
    }

    public static void write(Path png, CaeModel model, Dataset data, int count, MaskGenerator masks, long seed)
            throws IOException {
        BufferedImage img = render(model, data, count, masks, seed);
        Path parent = png.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        ImageIO.write(img, "png", png.toFile());
    }

    /** The top of the pictures of row r (0: original, 1: masked input, 2: reconstruction). */
    static int rowTop(int r, int tile) {
        return TITLE_HEIGHT + LABEL_HEIGHT + r * (tile + GAP + LABEL_HEIGHT);
    }

    /** The zoom factor of an image of {@code size} pixels: about 112 pixels on screen, at least 1. */
    public static int scale(int size) {
        return Math.max(1, Math.round(112f / size));
    }

    public static BufferedImage render(CaeModel model, Dataset data, int count, MaskGenerator masks, long seed) {
        CaeConfig c = model.config();
        if (data.channels() != c.inChans() || data.height() != c.imgSize() || data.width() != c.imgSize()) {
            throw new IllegalArgumentException("the dataset's images are " + data.channels() + "x" + data.height() + "x"
                    + data.width() + " (CxHxW) but the model expects " + c.inChans() + "x" + c.imgSize() + "x"
                    + c.imgSize());
        }
        if (masks.numPatches() != c.numPatches()) {
            throw new IllegalArgumentException("the mask generator covers " + masks.numPatches()
                    + " patches, the model has " + c.numPatches());
        }
        int n = (int) Math.min(count, data.size());
        if (n < 1) {
            throw new IllegalArgumentException("no images to reconstruct (count " + count + ", dataset of "
                    + data.size() + ")");
        }
        int size = c.imgSize();
        int ch = c.inChans();
        int per = ch * size * size;
        int pd = c.patchDim();
        int nm = masks.numMasked();
        float[][] originals = new float[n][];
        byte[][] maskRows = new byte[n][];
        float[][] preds = new float[n][];
        try (Arena arena = Arena.ofConfined()) {
            Tensor images = Tensor.allocate(arena, DType.F32, n, ch, size, size);
            Tensor mask = Tensor.allocate(arena, DType.U8, n, c.numPatches());
            Tensor pred = Tensor.allocate(arena, DType.F32, n, nm, pd);
            MemorySegment seg = images.segment();
            for (int i = 0; i < n; i++) {
                long index = (long) i * data.size() / n;
                data.loadPlain(index, seg.asSlice((long) i * per * Float.BYTES, (long) per * Float.BYTES));
                maskRows[i] = masks.generate(seed, 0, index);
                mask.select(i).copyFrom(maskRows[i]);
            }
            model.predict(images, mask, pred);
            for (int i = 0; i < n; i++) {
                originals[i] = images.select(i).toFloatArray();
                preds[i] = pred.select(i).toFloatArray();
            }
        }
        int scale = scale(size);
        int tile = size * scale;
        int width = n * tile + (n - 1) * GAP + 2 * GAP;
        int height = TITLE_HEIGHT + 3 * (LABEL_HEIGHT + tile) + 2 * GAP + GAP;
        BufferedImage out = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, width, height);
            g.setColor(new Color(0x22, 0x22, 0x22));
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 15));
            g.drawString(String.format(Locale.ROOT, "Reconstruction at step %d: %d of %d patches masked",
                    model.state().step(), nm, c.numPatches()), GAP, 24);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 14));
            for (int r = 0; r < 3; r++) {
                int y = rowTop(r, tile);
                g.setColor(new Color(0x44, 0x44, 0x44));
                g.drawString(ROWS[r], GAP, y - 7);
                for (int i = 0; i < n; i++) {
                    int x = GAP + i * (tile + GAP);
                    BufferedImage picture = switch (r) {
                        case 0 -> Reconstruction.toImage(originals[i], ch, size, data.normalization(), scale,
                                c.patchSize(), null, GREY);
                        case 1 -> Reconstruction.toImage(originals[i], ch, size, data.normalization(), scale,
                                c.patchSize(), maskRows[i], GREY);
                        default -> Reconstruction.toImage(Reconstruction.compose(originals[i], maskRows[i], preds[i],
                                ch, size, c.patchSize(), c.normPixEps()), ch, size, data.normalization(), scale,
                                c.patchSize(), null, GREY);
                    };
                    g.drawImage(picture, x, y, null);
                }
            }
        } finally {
            g.dispose();
        }
        return out;
    }
}
