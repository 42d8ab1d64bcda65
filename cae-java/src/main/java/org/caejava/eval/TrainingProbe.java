package org.caejava.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Consumer;
import org.caejava.CaeModel;
import org.caejava.StepMetrics;
import org.caejava.TrainingListener;
import org.caejava.data.Dataset;

/**
 * A quick k-NN probe of the encoder while it trains, for a curve of representation quality by
 * step: at the end of every {@code everyEpochs}-th epoch and at the last step, the model encodes a
 * fixed seeded subset of the labeled training images (default {@value #DEFAULT_TRAIN}) and of the
 * test images (default {@value #DEFAULT_TEST}); the [cls ; mean patch token] features, standardized
 * with the training subset's mean and standard deviation, are scored by a k-NN vote (k from the
 * options, default 20). Each result goes to the sink (for instance {@code MetricsLog::append}) and
 * one line to the options' log.
 *
 * <p>Listeners run on the training thread between steps, so the probe encodes with the model while
 * no step runs; it changes neither the weights nor the training state. The subsets are drawn once,
 * as {@link ProbeReport} draws them (seeds {@code subsetSeed} and {@code subsetSeed + 1}), so every
 * point of a run, and of a resumed run, scores the same images. A probe that fails is logged and
 * ends the probing, not the training.
 *
 * <pre>{@code
 * TrainingListener probe = new TrainingProbe(model, train, test, train.size() / batch, 1,
 *         TrainingProbe.defaults().withLog(System.out::println), metricsLog::append);
 * }</pre>
 *
 * <p>A probe holds its subsets' indices and labels and its points on the Java heap; it does not
 * own the model or the datasets. It is used by one thread at a time: as a listener, the training
 * thread.
 */
public final class TrainingProbe implements TrainingListener {

    /** Training images of the default subset. */
    public static final int DEFAULT_TRAIN = 2000;
    /** Test images of the default subset. */
    public static final int DEFAULT_TEST = 1000;
    /** The features compared: the cls token and the mean patch token side by side. */
    public static final String FEATURES = "cls_mean";

    private final CaeModel model;
    private final Dataset train;
    private final Dataset test;
    private final long interval;
    private final long stepsPerEpoch;
    private final int batchSize;
    private final Consumer<KnnPoint> sink;
    private final Consumer<String> log;
    private final KnnClassifier knn;
    private final long[] trainIdx;
    private final long[] testIdx;
    private final int[] yTrain;
    private final int[] yTest;
    private final int classes;
    private final List<KnnPoint> points = new ArrayList<>();
    private boolean failed;

    /**
     * The default options: {@value #DEFAULT_TRAIN} training and {@value #DEFAULT_TEST} test images, k = 20.
     *
     * @return {@link ProbeOptions#defaults()} with those limits
     */
    public static ProbeOptions defaults() {
        return ProbeOptions.defaults().withLimits(DEFAULT_TRAIN, DEFAULT_TEST);
    }

    /**
     * A probe of {@code model}; draws the subsets and reads their labels now.
     *
     * @param model         the model being trained
     * @param train         the labeled training images (loaded without augmentation)
     * @param test          the labeled test images
     * @param stepsPerEpoch training steps per epoch (images / batch size)
     * @param everyEpochs   probe every this many epochs (>= 1), and at the last step
     * @param options       k, batch size, subset limits and seed, and the log (l2 and the optimizer are not used)
     * @param sink          receives every result
     * @throws IllegalArgumentException when a count is out of range, a subset is empty, or an image
     *     of a subset has no label
     */
    public TrainingProbe(CaeModel model, Dataset train, Dataset test, long stepsPerEpoch, int everyEpochs,
            ProbeOptions options, Consumer<KnnPoint> sink) {
        if (stepsPerEpoch < 1) {
            throw new IllegalArgumentException(stepsPerEpoch + " steps per epoch, expected >= 1");
        }
        if (everyEpochs < 1) {
            throw new IllegalArgumentException("probe every " + everyEpochs + " epochs, expected >= 1");
        }
        this.model = Objects.requireNonNull(model, "model");
        this.train = Objects.requireNonNull(train, "train");
        this.test = Objects.requireNonNull(test, "test");
        this.sink = Objects.requireNonNull(sink, "sink");
        this.stepsPerEpoch = stepsPerEpoch;
        this.interval = Math.multiplyExact(stepsPerEpoch, everyEpochs);
        this.batchSize = options.batchSize();
        this.log = options.log();
        this.knn = new KnnClassifier(options.k());
        trainIdx = FeatureExtractor.subset(train.size(), options.trainLimit(), options.subsetSeed());
        testIdx = FeatureExtractor.subset(test.size(), options.testLimit(), options.subsetSeed() + 1);
        if (trainIdx.length == 0 || testIdx.length == 0) {
            throw new IllegalArgumentException("the k-NN probe needs train and test images; got " + trainIdx.length
                    + " and " + testIdx.length);
        }
        yTrain = FeatureExtractor.labels(train, trainIdx);
        yTest = FeatureExtractor.labels(test, testIdx);
        classes = ProbeReport.classCount(train, test, yTrain, yTest);
    }

    /**
     * Whether the probe runs after {@code step} of {@code totalSteps}: at every interval's end and the last step.
     *
     * @param step the steps completed
     * @param totalSteps the steps of the run
     * @return true when a point is due
     */
    public boolean due(long step, long totalSteps) {
        return step > 0 && (step % interval == 0 || step == totalSteps);
    }

    @Override
    public void onStep(StepMetrics m) {
        if (failed || !due(m.step(), m.totalSteps())) {
            return;
        }
        KnnPoint p;
        try {
            p = probe(m.step());
        } catch (RuntimeException e) {
            failed = true;
            log.accept("k-NN probe at step " + m.step() + " failed, no more probes in this run: " + e);
            return;
        }
        sink.accept(p);
        log.accept(String.format(Locale.ROOT, "k-NN at step %d (epoch %d): %.2f%% (%.1f s)", p.step(), p.epoch(),
                100 * p.accuracy(), p.seconds()));
    }

    /**
     * Probes the model as it is now and records the result as the point of {@code step}. Runs
     * while no training step does: it uses the model.
     *
     * @param step the steps completed, for the point
     * @return the point
     * @throws org.caejava.api.CaeException when the native encoder fails
     */
    public KnnPoint probe(long step) {
        long t0 = System.nanoTime();
        FeatureMatrix trainFeatures = FeatureExtractor.encode(model, train, trainIdx, batchSize).clsMean();
        FeatureMatrix testFeatures = FeatureExtractor.encode(model, test, testIdx, batchSize).clsMean();
        Standardizer s = Standardizer.fit(trainFeatures);
        double accuracy = knn.accuracy(s.apply(trainFeatures), yTrain, classes, s.apply(testFeatures), yTest);
        KnnPoint p = new KnnPoint(step, step / stepsPerEpoch, accuracy, FEATURES, knn.k(), trainIdx.length,
                testIdx.length, (System.nanoTime() - t0) / 1e9);
        points.add(p);
        return p;
    }

    /**
     * The points of this probe so far, in order.
     *
     * @return a copy of the points
     */
    public List<KnnPoint> points() {
        return List.copyOf(points);
    }
}
