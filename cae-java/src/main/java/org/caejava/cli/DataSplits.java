package org.caejava.cli;

import java.io.IOException;
import java.nio.file.Path;
import org.caejava.CaeConfig;
import org.caejava.data.Augmentation;
import org.caejava.data.Datasets;
import org.caejava.data.ImageDataset;
import org.caejava.data.ImageSource;

/**
 * The training split (with the training augmentation) and the labeled test split (plain, with the
 * training split's normalization) of {@code --data}, or of Fashion-MNIST when no path is given,
 * at the model's image size and channel count. Closing releases the files and memory.
 */
record DataSplits(ImageDataset train, ImageDataset test, ImageSource trainSource, ImageSource testSource)
        implements AutoCloseable {

    /**
     * Opens the data; {@code test} is null when the data has no test/val split. {@code augmentation}
     * is the training split's, or null for {@link Augmentation#defaultFor} the image size.
     */
    static DataSplits open(Path data, CaeConfig config, Augmentation augmentation) throws IOException {
        ImageSource trainSource = data == null ? Datasets.fashionMnist("train") : openTrain(data, config.inChans());
        ImageSource testSource = null;
        try {
            testSource = data == null ? Datasets.fashionMnist("test") : openTestSplit(data, config);
            ImageDataset train = ImageDataset.builder(trainSource).size(config.imgSize()).channels(config.inChans())
                    .augmentation(augmentation).build();
            ImageDataset test = testSource == null ? null : ImageDataset.builder(testSource).size(config.imgSize())
                    .channels(config.inChans()).normalization(train.normalization()).augmentation(Augmentation.none())
                    .build();
            return new DataSplits(train, test, trainSource, testSource);
        } catch (IOException | RuntimeException e) {
            trainSource.close();
            if (testSource != null) {
                testSource.close();
            }
            throw e;
        }
    }

    /** The channel count of the training split's source, before any conversion. */
    static ImageSource peekTrain(Path data) throws IOException {
        return data == null ? Datasets.fashionMnist("train") : openTrain(data, 3);
    }

    /** The "train" split, or the first one when there is none of that name. */
    private static ImageSource openTrain(Path path, int channels) throws IOException {
        Datasets.Layout l = Datasets.inspect(path);
        return Datasets.open(path, l.splits().containsKey("train") ? "train" : l.splitNames().get(0), channels);
    }

    private static ImageSource openTestSplit(Path path, CaeConfig config) throws IOException {
        Datasets.Layout l = Datasets.inspect(path);
        for (String s : new String[] {"test", "val", "validation"}) {
            if (l.splits().containsKey(s)) {
                return Datasets.open(path, s, config.inChans());
            }
        }
        return null;
    }

    @Override
    public void close() {
        trainSource.close();
        if (testSource != null) {
            testSource.close();
        }
    }
}
