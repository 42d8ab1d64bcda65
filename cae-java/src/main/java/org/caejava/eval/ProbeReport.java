package org.caejava.eval;

import java.util.Locale;
import org.caejava.CaeModel;
import org.caejava.data.Dataset;

/**
 * Compares three encoders on one labeled train/test split with a k-NN vote and a linear probe on
 * frozen, standardized features: the pretrained model, a freshly initialized model of the same
 * configuration ({@code CaeModel.create(context, config, seed)} with the model's run seed unless
 * {@link ProbeOptions#randomInitSeed} says otherwise: the very weights the pretraining started
 * from), and the raw normalized pixels.
 *
 * <pre>{@code
 * ProbeResult r = ProbeReport.run(model, train, test, ProbeOptions.defaults().withLimits(10_000, 2_000));
 * System.out.print(r.toTable());
 * r.write(outDir.resolve("probe.json"));
 * }</pre>
 *
 * <p>Static methods only. {@link #run} works on the calling thread, with the k-NN votes and the
 * fits on the common fork-join pool; the randomly initialized model it creates in the model's
 * context is closed before it returns.
 */
public final class ProbeReport {

    private ProbeReport() {}

    /**
     * Encodes both splits with the three encoders and scores each.
     *
     * @param model the pretrained model; used from this thread while the probe runs
     * @param train the labeled training images, of the model's size
     * @param test the labeled test images, of the same size
     * @param o the probe's settings
     * @return the scores and the settings they were measured with
     * @throws IllegalArgumentException when the splits differ in shape, are empty, do not fit the
     *     model, or have unlabeled images
     * @throws org.caejava.api.CaeException when the native encoder fails
     */
    public static ProbeResult run(CaeModel model, Dataset train, Dataset test, ProbeOptions o) {
        long t0 = System.nanoTime();
        if (train.channels() != test.channels() || train.height() != test.height() || train.width() != test.width()) {
            throw new IllegalArgumentException("train images are " + shape(train) + ", test images " + shape(test));
        }
        long[] trainIdx = FeatureExtractor.subset(train.size(), o.trainLimit(), o.subsetSeed());
        long[] testIdx = FeatureExtractor.subset(test.size(), o.testLimit(), o.subsetSeed() + 1);
        if (trainIdx.length == 0 || testIdx.length == 0) {
            throw new IllegalArgumentException("the probe needs train and test images; got " + trainIdx.length
                    + " and " + testIdx.length);
        }
        int[] yTrain = FeatureExtractor.labels(train, trainIdx);
        int[] yTest = FeatureExtractor.labels(test, testIdx);
        int classes = classCount(train, test, yTrain, yTest);
        long seed = o.randomInitSeed() != null ? o.randomInitSeed() : model.state().seed();
        o.log().accept(String.format(Locale.ROOT, "probe: %d train / %d test images, %d classes", trainIdx.length,
                testIdx.length, classes));

        o.log().accept("encoding with the pretrained model");
        FeatureExtractor.Encoded preTrain = FeatureExtractor.encode(model, train, trainIdx, o.batchSize());
        FeatureExtractor.Encoded preTest = FeatureExtractor.encode(model, test, testIdx, o.batchSize());
        o.log().accept("encoding with a randomly initialized model (seed " + seed + ")");
        FeatureExtractor.Encoded randTrain;
        FeatureExtractor.Encoded randTest;
        try (CaeModel random = CaeModel.create(model.context(), model.config(), seed)) {
            randTrain = FeatureExtractor.encode(random, train, trainIdx, o.batchSize());
            randTest = FeatureExtractor.encode(random, test, testIdx, o.batchSize());
        }
        FeatureMatrix rawTrain = FeatureExtractor.rawPixels(train, trainIdx);
        FeatureMatrix rawTest = FeatureExtractor.rawPixels(test, testIdx);
        int pool = FeatureExtractor.rawPoolFactor(train.channels(), train.height(), train.width());
        String rawShape = train.channels() + "x" + train.height() / pool + "x" + train.width() / pool
                + (pool > 1 ? " (" + pool + "x" + pool + " average-pooled)" : "");

        ProbeScores pre = score(o, "pretrained", preTrain.clsMean(), yTrain, preTest.clsMean(), yTest, classes);
        ProbeScores preCls = score(o, "pretrained cls", preTrain.cls(), yTrain, preTest.cls(), yTest, classes);
        ProbeScores preMean = score(o, "pretrained mean", preTrain.mean(), yTrain, preTest.mean(), yTest, classes);
        ProbeScores rand = score(o, "random init", randTrain.clsMean(), yTrain, randTest.clsMean(), yTest, classes);
        ProbeScores randCls = score(o, "random init cls", randTrain.cls(), yTrain, randTest.cls(), yTest, classes);
        ProbeScores randMean = score(o, "random mean", randTrain.mean(), yTrain, randTest.mean(), yTest, classes);
        ProbeScores raw = score(o, "raw pixels", rawTrain, yTrain, rawTest, yTest, classes);
        return new ProbeResult(pre, preCls, preMean, rand, randCls, randMean, raw, ProbeResult.FEATURES, rawShape,
                seed, o.k(), o.l2(), o.optimizer().tolerance(), o.optimizer().maxIterations(), trainIdx.length,
                testIdx.length, classes, model.state().step(), (System.nanoTime() - t0) / 1e9);
    }

    private static ProbeScores score(ProbeOptions o, String name, FeatureMatrix train, int[] yTrain,
            FeatureMatrix test, int[] yTest, int classes) {
        long t = System.nanoTime();
        ProbeScores s = ProbeScores.evaluate(train, yTrain, test, yTest, classes, o.k(), o.l2(), o.optimizer());
        o.log().accept(String.format(Locale.ROOT, "%-16s k-NN %s, linear %s (%d iterations%s), %.1f s", name,
                ProbeResult.pct(s.knn()), ProbeResult.pct(s.linear()), s.iterations(),
                s.converged() ? "" : ", not converged", (System.nanoTime() - t) / 1e9));
        return s;
    }

    /** The classes a probe scores: as many as the datasets name or the labels reach, at least 2. */
    static int classCount(Dataset train, Dataset test, int[] yTrain, int[] yTest) {
        return Math.max(2, Math.max(Math.max(train.classNames().size(), test.classNames().size()),
                Math.max(max(yTrain), max(yTest)) + 1));
    }

    private static int max(int[] v) {
        int m = -1;
        for (int x : v) {
            m = Math.max(m, x);
        }
        return m;
    }

    private static String shape(Dataset d) {
        return d.channels() + "x" + d.height() + "x" + d.width();
    }
}
