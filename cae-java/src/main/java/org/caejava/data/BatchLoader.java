package org.caejava.data;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.api.DType;
import org.caejava.api.Tensor;
import org.caejava.mask.MaskGenerator;

/**
 * Assembles training batches on worker threads, ahead of the training step: for step s of a run
 * it loads samples {@code order[e][(s % stepsPerEpoch) * B + i]} of epoch {@code e = s /
 * stepsPerEpoch} (the order drawn by {@link EpochOrder}) with their augmentation and masks, into
 * a small pool of off-heap batch buffers (at most {@code prefetch} batches ahead). Batches come
 * out in step order whatever the worker timing, so a run is the same with any number of workers.
 * In a data-parallel job each process loads only its {@link Share} of every batch.
 *
 * <p>Use: {@code Batch b = loader.next(); ... train on b ...; loader.release(b);}
 *
 * <p>A loader owns a pool of daemon worker threads ({@code cae-batch-loader-N}) and the off-heap
 * batch buffers, in an arena of its own (page-locked memory of the context on CUDA).
 * {@link #close()} stops the workers and frees the buffers: the batches it handed out are then
 * unusable. {@link #next}, {@link #release} and {@link #close} are called by one thread, the
 * training thread; {@link #unreadableImages()} and {@link #unreadableExamples()} may be called
 * from any thread.
 */
public final class BatchLoader implements AutoCloseable {

    /**
     * One batch: images F32 [B, C, H, W], mask U8 [B, N], and the time {@link #next} waited for it.
     * The tensors are the loader's buffers: valid until the batch is released or the loader closed.
     *
     * @param step the step the batch is for
     * @param epoch the epoch its samples come from, counted from 0
     * @param images the normalized, augmented images, F32 [rows, C, H, W]
     * @param mask the masks, U8 [rows, N], 1 = masked
     * @param waitMs the milliseconds {@link #next} waited for the batch
     * @param slot the buffers, handed back by {@link #release}
     */
    public record Batch(long step, long epoch, Tensor images, Tensor mask, double waitMs, Slot slot) {}

    /**
     * A reusable pair of batch buffers, opaque to callers. The buffers belong to the loader and
     * follow its threading rules.
     */
    public static final class Slot {
        final Tensor images;
        final Tensor mask;

        Slot(Tensor images, Tensor mask) {
            this.images = images;
            this.mask = mask;
        }
    }

    private final Dataset data;
    private final MaskGenerator masks;
    private final int batch;
    private final int rows;
    private final int rowOffset;
    private final long seed;
    private final long stepsPerEpoch;
    private final long endStep;
    private final Arena arena;
    /** Consecutive images tried in place of an unreadable one before giving up. */
    static final int MAX_REPLACEMENTS = 100;

    private final ExecutorService workers;
    private final boolean strict;
    private long unreadable;
    private final java.util.List<String> unreadableExamples = new java.util.ArrayList<>();
    private final java.util.concurrent.Executor executor;
    private final ArrayDeque<CompletableFuture<Batch>> pending = new ArrayDeque<>();
    private final ArrayDeque<Slot> free = new ArrayDeque<>();
    private long nextToSubmit;
    private long waitNanos;
    private final long createdNanos = System.nanoTime();
    private record Order(long epoch, int[] permutation) {}

    private volatile Order cachedOrder;

    /**
     * A loader of whole batches that replaces an unreadable image by the next one in the epoch's
     * order and counts it.
     *
     * @param ctx where batches are consumed: on CUDA the buffers are page-locked for fast uploads
     * @param data the images; at least one batch of them
     * @param masks draws each image's mask
     * @param batch the images per batch
     * @param seed the run seed, from which the epoch orders, augmentations and masks are drawn
     * @param startStep the first step to deliver (a resumed run starts past 0)
     * @param endStep one past the last step
     * @param threads worker threads (at least 1)
     * @param prefetch batches prepared ahead (at least 1)
     * @throws IllegalArgumentException when a count is out of range or the dataset holds less than
     *     one batch
     */
    public BatchLoader(Context ctx, Dataset data, MaskGenerator masks, int batch, long seed, long startStep,
            long endStep, int threads, int prefetch) {
        this(ctx, data, masks, batch, seed, startStep, endStep, threads, prefetch, false);
    }

    /**
     * As above; with {@code strict}, an image that cannot be read ({@link ImageDataException}) fails
     * the run instead of being replaced by the next one in the epoch's order and counted.
     *
     * @param ctx where batches are consumed: on CUDA the buffers are page-locked for fast uploads;
     *     null for plain host memory
     * @param data the images; at least one batch of them
     * @param masks draws each image's mask
     * @param batch the images per (global) batch
     * @param seed the run seed, from which the epoch orders, augmentations and masks are drawn
     * @param startStep the first step to deliver (a resumed run starts past 0)
     * @param endStep one past the last step
     * @param threads worker threads (at least 1)
     * @param prefetch batches prepared ahead (at least 1)
     * @param strict whether an unreadable image fails the run
     * @throws IllegalArgumentException when a count is out of range or the dataset holds less than
     *     one batch
     */
    public BatchLoader(Context ctx, Dataset data, MaskGenerator masks, int batch, long seed, long startStep,
            long endStep, int threads, int prefetch, boolean strict) {
        this(ctx, data, masks, batch, Share.WHOLE, seed, startStep, endStep, threads, prefetch, strict);
    }

    /**
     * The rows of each global batch that one process of a data-parallel job trains on: rows
     * {@code [offset, offset + rows)} of every batch of {@code batch} images. The ranks of a job
     * together load each global batch once, in the same order as one process would. A plain
     * value: owns nothing, immutable, thread-safe.
     *
     * @param offset the first row of the share
     * @param rows the number of rows; -1 for the whole batch
     */
    public record Share(int offset, int rows) {
        /** The whole batch (rows = -1: as many as the batch has). */
        public static final Share WHOLE = new Share(0, -1);

        /**
         * Rank {@code rank}'s share of a batch of {@code batch} images split evenly over {@code ranks}.
         *
         * @param batch the images of the global batch
         * @param rank this process's rank, from 0 to ranks - 1
         * @param ranks the number of processes
         * @return rows {@code [rank * batch / ranks, (rank + 1) * batch / ranks)}
         * @throws IllegalArgumentException when the rank is out of range or {@code ranks} does not
         *     divide {@code batch}
         */
        public static Share of(int batch, int rank, int ranks) {
            if (ranks < 1 || rank < 0 || rank >= ranks || batch % ranks != 0) {
                throw new IllegalArgumentException("a batch of " + batch + " images cannot be split evenly over "
                        + ranks + " ranks (rank " + rank + ")");
            }
            return new Share(rank * (batch / ranks), batch / ranks);
        }
    }

    /**
     * As above, loading only this process's {@code share} of every batch of {@code batch} images.
     *
     * @param ctx where batches are consumed: on CUDA the buffers are page-locked for fast uploads;
     *     null for plain host memory
     * @param data the images; at least one batch of them
     * @param masks draws each image's mask
     * @param batch the images per (global) batch
     * @param share the rows of every batch this process loads
     * @param seed the run seed, from which the epoch orders, augmentations and masks are drawn
     * @param startStep the first step to deliver (a resumed run starts past 0)
     * @param endStep one past the last step
     * @param threads worker threads (at least 1)
     * @param prefetch batches prepared ahead (at least 1)
     * @param strict whether an unreadable image fails the run
     * @throws IllegalArgumentException when a count is out of range or the dataset holds less than
     *     one batch, or the share is not inside the batch
     */
    public BatchLoader(Context ctx, Dataset data, MaskGenerator masks, int batch, Share share, long seed,
            long startStep, long endStep, int threads, int prefetch, boolean strict) {
        this.strict = strict;
        this.data = Objects.requireNonNull(data, "data");
        this.masks = Objects.requireNonNull(masks, "masks");
        if (batch < 1 || threads < 1 || prefetch < 1) {
            throw new IllegalArgumentException("batch " + batch + ", threads " + threads + ", prefetch " + prefetch);
        }
        this.batch = batch;
        this.rows = share.rows() < 0 ? batch : share.rows();
        this.rowOffset = share.offset();
        if (rowOffset < 0 || rows < 1 || rowOffset + rows > batch) {
            throw new IllegalArgumentException("rows " + rowOffset + " to " + (rowOffset + rows - 1)
                    + " are not inside a batch of " + batch);
        }
        this.seed = seed;
        this.stepsPerEpoch = data.size() / batch;
        if (stepsPerEpoch < 1) {
            throw new IllegalArgumentException("the dataset has " + data.size() + " images, fewer than one batch of "
                    + batch);
        }
        this.endStep = endStep;
        this.nextToSubmit = startStep;
        this.arena = Arena.ofShared();
        boolean pinned = ctx != null && ctx.isOpen() && ctx.backend() == Backend.CUDA;
        long[] shape = {rows, data.channels(), data.height(), data.width()};
        for (int i = 0; i < prefetch; i++) {
            Tensor images = pinned ? Tensor.allocatePinned(ctx, arena, DType.F32, shape)
                    : Tensor.allocate(arena, DType.F32, shape);
            free.add(new Slot(images, Tensor.allocate(arena, DType.U8, rows, masks.numPatches())));
        }
        AtomicInteger n = new AtomicInteger();
        java.util.concurrent.ThreadFactory factory = r -> {
            Thread t = new Thread(r, "cae-batch-loader-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
        this.workers = Executors.newFixedThreadPool(threads, factory);
        // Data confined to the caller's thread is loaded there, when a buffer frees up.
        this.executor = data.isAccessibleBy(factory.newThread(() -> {})) ? workers : Runnable::run;
        submitWhileFree();
    }

    /**
     * The steps of one epoch: the full batches of the dataset (the last partial batch is dropped).
     *
     * @return the dataset's size divided by the batch size
     */
    public long stepsPerEpoch() {
        return stepsPerEpoch;
    }

    /**
     * The next batch in step order; blocks until it is ready.
     *
     * @return the batch, to be handed back by {@link #release} after its step
     * @throws IllegalStateException when no step is left, the wait was interrupted, or loading failed
     * @throws ImageDataException when an image cannot be read (in strict mode, or when its
     *     replacements cannot be read either)
     */
    public Batch next() {
        CompletableFuture<Batch> f = pending.poll();
        if (f == null) {
            throw new IllegalStateException("no batch left: the run ends at step " + endStep);
        }
        long t0 = System.nanoTime();
        Batch b;
        try {
            b = f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for a batch", e);
        } catch (ExecutionException | CancellationException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw cause instanceof RuntimeException re ? re
                    : new IllegalStateException("loading a batch failed: " + cause.getMessage(), cause);
        }
        long waited = System.nanoTime() - t0;
        waitNanos += waited;
        return new Batch(b.step(), b.epoch(), b.images(), b.mask(), waited / 1e6, b.slot());
    }

    /**
     * Returns a batch's buffers for reuse (after the step that used them).
     *
     * @param b a batch from {@link #next}, not used afterwards
     */
    public void release(Batch b) {
        free.add(b.slot());
        submitWhileFree();
    }

    /**
     * The share of the loader's lifetime that {@link #next} spent waiting for data.
     *
     * @return a fraction from 0 to 1
     */
    public double waitShare() {
        long life = System.nanoTime() - createdNanos;
        return life <= 0 ? 0 : (double) waitNanos / life;
    }

    /**
     * The time {@link #next} has spent waiting for data.
     *
     * @return the total wait, in seconds
     */
    public double waitSeconds() {
        return waitNanos / 1e9;
    }

    private void submitWhileFree() {
        while (nextToSubmit < endStep && !free.isEmpty()) {
            Slot slot = free.poll();
            long step = nextToSubmit++;
            pending.add(CompletableFuture.supplyAsync(() -> fill(step, slot), executor));
        }
    }

    private Batch fill(long step, Slot slot) {
        long epoch = step / stepsPerEpoch;
        long position = step % stepsPerEpoch;
        int[] o = orderOf(epoch);
        MemorySegment images = slot.images.segment();
        MemorySegment maskBytes = slot.mask.segment();
        long sampleBytes = data.floatsPerSample() * Float.BYTES;
        int n = masks.numPatches();
        for (int i = 0; i < rows; i++) {
            int at = (int) (position * batch + rowOffset + i);
            long index = o[at];
            MemorySegment dst = images.asSlice(i * sampleBytes, sampleBytes);
            // An unreadable image is replaced by the next ones in the epoch's order (deterministic,
            // so a run still replays), and counted; strict mode fails instead.
            for (int attempt = 0; ; attempt++) {
                try {
                    data.load(index, epoch, seed, dst);
                    break;
                } catch (ImageDataException e) {
                    if (strict || attempt + 1 >= MAX_REPLACEMENTS) {
                        throw new ImageDataException("loading image " + index + " (epoch " + epoch + ", step " + step
                                + "): " + e.getMessage() + (strict ? "" : "; and " + attempt + " replacements failed too"),
                                e);
                    }
                    recordUnreadable(index, e);
                    index = o[(at + attempt + 1) % o.length];
                } catch (RuntimeException e) {
                    throw new IllegalStateException("loading image " + index + " (epoch " + epoch + ", step " + step
                            + "): " + e.getMessage(), e);
                }
            }
            masks.generate(seed, epoch, index, maskBytes.asSlice((long) i * n, n));
        }
        return new Batch(step, epoch, slot.images, slot.mask, 0, slot);
    }

    private synchronized void recordUnreadable(long index, ImageDataException e) {
        unreadable++;
        if (unreadableExamples.size() < 5) {
            unreadableExamples.add(e.getMessage());
        }
    }

    /**
     * Images that could not be read and were replaced (each time one was met).
     *
     * @return the count so far
     */
    public synchronized long unreadableImages() {
        return unreadable;
    }

    /**
     * The messages of the first few unreadable images.
     *
     * @return at most 5 messages, a copy
     */
    public synchronized java.util.List<String> unreadableExamples() {
        return java.util.List.copyOf(unreadableExamples);
    }

    private int[] orderOf(long epoch) {
        Order c = cachedOrder;
        if (c != null && c.epoch() == epoch) {
            return c.permutation();
        }
        // Two workers may both compute a new epoch's order; they compute the same one.
        int[] p = EpochOrder.permutation(data.size(), seed, epoch);
        cachedOrder = new Order(epoch, p);
        return p;
    }

    /**
     * Cancels the batches not yet taken, stops the workers (waiting up to 30 seconds for them) and
     * frees the batch buffers.
     */
    @Override
    public void close() {
        for (CompletableFuture<Batch> f : pending) {
            f.cancel(false);
        }
        workers.shutdownNow();
        try {
            workers.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
