package org.caejava.io;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A fuzzing campaign against one reader. Each try runs on a worker thread under a time limit and
 * ends in one of three ways:
 *
 * <ul>
 *   <li>a success: the read returned, and the try's own checks of what it read passed;
 *   <li>a clean refusal: an exception of one of the reader's documented kinds whose message is one
 *       line naming the input file;
 *   <li>a defect: any other exception or error (IndexOutOfBounds, NegativeArraySize, Arithmetic,
 *       NullPointer, BufferUnderflow, OutOfMemoryError, an FFM IllegalStateException, a failed
 *       check), a message that does not name the file or spans several lines, a try over the time
 *       limit, or a try that allocated more heap than its limit (measured per thread with
 *       {@code com.sun.management.ThreadMXBean}) or grew the process's resident memory, heap and
 *       native, by more than its limit (the peak resident size, reset before each try; Linux only).
 * </ul>
 *
 * The inputs come from {@link #random()}, seeded with a fixed seed, so a failure reproduces; each
 * defect's input is kept under {@code target/fuzz-defects/}. {@link #finish()} prints a one-line
 * summary and fails the test when there was any defect.
 */
public final class FuzzCampaign implements AutoCloseable {

    /** One read of a (mutated) input and the checks of what it read. */
    @FunctionalInterface
    public interface Read {
        void run() throws Exception;
    }

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private static final int KEEP_DEFECTS = 20;
    private static final Path STATUS = Path.of("/proc/self/status");
    private static final Path CLEAR_REFS = Path.of("/proc/self/clear_refs");
    /** Whether the peak resident size can be reset and read: then each try's growth is measured. */
    private static final boolean RSS = peakResetWorks();

    private final String reader;
    private final long seed;
    private final List<Class<? extends Throwable>> refusals;
    private final long timeLimitMillis;
    private final long heapLimit;
    private final long rssLimit;
    private final Random random;
    private final long started = System.nanoTime();
    private final Map<String, Integer> refusedByKind = new TreeMap<>();
    private final List<String> defects = new ArrayList<>();
    private ExecutorService worker = newWorker();
    private int tries;
    private int successes;
    private long maxHeap;
    private long maxRss;
    private long slowestNanos;

    /**
     * @param reader what is fuzzed, for the summary
     * @param refusals the exception classes (and their subclasses) the reader documents
     * @param timeLimitMillis the limit of one try
     * @param heapLimit the most heap one try may allocate, in bytes
     * @param rssLimit the most one try may grow the process's resident memory, in bytes
     */
    public FuzzCampaign(String reader, long seed, List<Class<? extends Throwable>> refusals, long timeLimitMillis,
            long heapLimit, long rssLimit) {
        this.reader = reader;
        this.seed = seed;
        this.refusals = List.copyOf(refusals);
        this.timeLimitMillis = timeLimitMillis;
        this.heapLimit = heapLimit;
        this.rssLimit = rssLimit;
        this.random = new Random(seed);
    }

    private static ExecutorService newWorker() {
        return Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "fuzz-try");
            t.setDaemon(true);
            return t;
        });
    }

    /** The generator of this campaign's inputs. */
    public Random random() {
        return random;
    }

    public int tries() {
        return tries;
    }

    /**
     * Runs one try: {@code read} reads {@code file} (whose bytes are {@code input}, kept when the
     * try is a defect; the refusal's message must name {@code file}) and checks what it read.
     * {@code what} describes the mutation.
     */
    public void attempt(String what, Path file, byte[] input, Read read) {
        int n = ++tries;
        long[] used = new long[2];
        Future<?> f = worker.submit(() -> {
            long rss = resetPeak();
            long before = THREADS.getCurrentThreadAllocatedBytes();
            try {
                read.run();
            } finally {
                used[0] = THREADS.getCurrentThreadAllocatedBytes() - before;
                used[1] = RSS ? status("VmHWM:") - rss : 0;
            }
            return null;
        });
        long start = System.nanoTime();
        try {
            f.get(timeLimitMillis, TimeUnit.MILLISECONDS);
            if (measured(n, what, file, input, used, start)) {
                successes++;
            }
        } catch (TimeoutException e) {
            f.cancel(true);
            worker.shutdownNow();
            worker = newWorker();
            defect(n, what, file, input, "still running after " + timeLimitMillis + " ms", null);
        } catch (ExecutionException e) {
            if (measured(n, what, file, input, used, start)) {
                classify(n, what, file, input, e.getCause());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Records what a finished try used; false (and a defect) when it went over a limit. */
    private boolean measured(int n, String what, Path file, byte[] input, long[] used, long start) {
        slowestNanos = Math.max(slowestNanos, System.nanoTime() - start);
        maxHeap = Math.max(maxHeap, used[0]);
        maxRss = Math.max(maxRss, used[1]);
        if (used[0] > heapLimit || used[1] > rssLimit) {
            defect(n, what, file, input, "allocated " + (used[0] >> 20) + " MB of heap and grew the process by "
                    + (used[1] >> 20) + " MB; the limits are " + (heapLimit >> 20) + " and " + (rssLimit >> 20)
                    + " MB", null);
            return false;
        }
        return true;
    }

    private void classify(int n, String what, Path file, byte[] input, Throwable t) {
        for (Class<? extends Throwable> kind : refusals) {
            if (kind.isInstance(t)) {
                String m = t.getMessage();
                if (m == null || !m.contains(file.getFileName().toString())) {
                    defect(n, what, file, input, t.getClass().getSimpleName() + " with a message that does not "
                            + "name the file", t);
                } else if (m.contains("\n")) {
                    defect(n, what, file, input, t.getClass().getSimpleName() + " with a message of several lines",
                            t);
                } else {
                    refusedByKind.merge(t.getClass().getSimpleName(), 1, Integer::sum);
                }
                return;
            }
        }
        defect(n, what, file, input, "threw " + t.getClass().getName(), t);
    }

    private void defect(int n, String what, Path file, byte[] input, String problem, Throwable t) {
        StringBuilder sb = new StringBuilder("try " + n + " (" + what + "): " + problem);
        if (t != null) {
            StringWriter w = new StringWriter();
            t.printStackTrace(new PrintWriter(w));
            sb.append("\n    ").append(String.join("\n    ", w.toString().lines().limit(12).toList()));
        }
        if (defects.size() < KEEP_DEFECTS && input != null) {
            try {
                Path dir = Files.createDirectories(Path.of("target", "fuzz-defects"));
                Path kept = dir.resolve(reader.replaceAll("\\W", "_") + "-" + seed + "-try" + n + "-"
                        + file.getFileName());
                Files.write(kept, input);
                sb.append("\n    input kept in ").append(kept.toAbsolutePath());
            } catch (IOException e) {
                sb.append("\n    (input not kept: ").append(e).append(')');
            }
        }
        defects.add(sb.toString());
    }

    private static boolean peakResetWorks() {
        try {
            Files.writeString(CLEAR_REFS, "5");
            return status("VmHWM:") > 0;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** Resets the peak resident size to the current one, which it returns (0 where unsupported). */
    private static long resetPeak() throws IOException {
        if (!RSS) {
            return 0;
        }
        Files.writeString(CLEAR_REFS, "5");
        return status("VmRSS:");
    }

    /** A size from /proc/self/status, in bytes. */
    private static long status(String key) throws IOException {
        for (String line : Files.readAllLines(STATUS)) {
            if (line.startsWith(key)) {
                return Long.parseLong(line.substring(key.length()).replace("kB", "").strip()) << 10;
            }
        }
        throw new IOException(key + " not in " + STATUS);
    }

    /** Prints the summary and fails when a try was a defect. */
    public void finish() {
        double seconds = (System.nanoTime() - started) / 1e9;
        int refused = refusedByKind.values().stream().mapToInt(Integer::intValue).sum();
        String summary = String.format("fuzz %s: %d tries (seed %d) in %.1f s: %d read, %d refused %s, %d defects;"
                + " per try at most %d ms, %d KB of heap, %s", reader, tries, seed, seconds, successes, refused,
                refusedByKind, defects.size(), slowestNanos / 1_000_000, maxHeap >> 10,
                RSS ? (maxRss >> 20) + " MB of process growth" : "process growth not measured");
        System.out.println(summary);
        if (!defects.isEmpty()) {
            fail(summary + "\n" + String.join("\n", defects.subList(0, Math.min(defects.size(), KEEP_DEFECTS))));
        }
    }

    @Override
    public void close() {
        worker.shutdownNow();
    }
}
