package org.caejava.api;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.caejava.bindings.CaeNative;
import org.caejava.bindings.cae_context_info;
import org.caejava.bindings.cae_context_options;

/**
 * A compute context of libcae: one backend (CPU threads, or one CUDA device), with the run
 * seed. Device tensors and models are made from a context; close it when done.
 *
 * <pre>{@code
 * try (Context ctx = Context.builder().backend(Backend.CPU).threads(2).build()) {
 *     ...
 * }
 * }</pre>
 *
 * <p>A context owns one native handle ({@code cae_context}), released by {@link #close()}; the
 * tensors and models made from it own their own memory. A context is used by one thread at a time. Use after {@link #close()} throws
 * {@link IllegalStateException}.
 */
public final class Context implements AutoCloseable {

    private final Arena arena;
    private final MemorySegment handle;
    private final Backend requested;
    private final Backend backend;
    private final int deviceIndex;
    private final int threads;
    private final long seed;
    private final String description;

    private Context(Builder b) {
        NativeLibrary.load();
        String what = "creating a " + b.backend + " context (device " + b.device + ", threads " + b.threads + ")";
        MemorySegment raw;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment options = cae_context_options.allocate(call);
            Native.check(CaeNative.cae_context_options_init(options), what);
            cae_context_options.backend(options, b.backend.code());
            cae_context_options.device_index(options, b.device);
            cae_context_options.num_threads(options, b.threads);
            cae_context_options.seed(options, b.seed);
            MemorySegment out = call.allocate(ValueLayout.ADDRESS);
            Native.check(CaeNative.cae_context_create(options, out), what);
            raw = out.get(ValueLayout.ADDRESS, 0);
        }
        // The handle lives in this context's own arena; closing it destroys the native context.
        this.arena = Arena.ofShared();
        this.handle = raw.reinterpret(arena, CaeNative::cae_context_destroy);
        try (Arena call = Arena.ofConfined()) {
            MemorySegment info = cae_context_info.allocate(call);
            Native.check(CaeNative.cae_context_query(handle, info), "querying the new context");
            this.requested = b.backend;
            this.backend = Backend.of(cae_context_info.backend(info));
            this.deviceIndex = cae_context_info.device_index(info);
            this.threads = cae_context_info.num_threads(info);
            this.seed = cae_context_info.seed(info);
            this.description = cae_context_info.description(info).getString(0);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * A context on the best backend here (CUDA if usable, else all CPU cores), seed 0.
     *
     * @return a new open context
     * @throws CaeException when libcae cannot create the context
     */
    public static Context create() {
        return builder().build();
    }

    /**
     * A builder with the defaults: backend AUTO, device 0, every available core, seed 0.
     *
     * @return a new builder
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The backend chosen (AUTO is resolved at creation).
     *
     * @return CPU or CUDA, never AUTO
     */
    public Backend backend() {
        return backend;
    }

    /**
     * The backend asked for: {@link Backend#AUTO} when the choice was left to the library, which may
     * then move work to the CPU when the device disagrees with it.
     *
     * @return the backend given to the builder
     */
    public Backend requestedBackend() {
        return requested;
    }

    /**
     * The CUDA device ordinal of the context.
     *
     * @return the ordinal; 0 on the CPU
     */
    public int deviceIndex() {
        return deviceIndex;
    }

    /**
     * CPU worker threads (1 on CUDA, where kernels run on the device).
     *
     * @return the number of threads the context computes with
     */
    public int threads() {
        return threads;
    }

    /**
     * The run seed the context was created with.
     *
     * @return the seed
     */
    public long seed() {
        return seed;
    }

    /**
     * A one-line description, e.g. "cpu: 2 threads, GEMM openblas".
     *
     * @return the description libcae gave the context
     */
    public String description() {
        return description;
    }

    /**
     * Waits until all work queued on this context has finished.
     *
     * @throws CaeException when the backend reports an error
     * @throws IllegalStateException when the context is closed
     */
    public void synchronize() {
        Native.check(CaeNative.cae_context_synchronize(handle()), "synchronizing " + this);
    }

    /**
     * The fp32 matrix-multiply rate of this context in GFLOP/s: the best of {@code repeats} timed
     * products of m x k by k x n on the backend. The peak that model FLOP utilization is measured
     * against, taken in the same run.
     *
     * @param m the rows of the left operand
     * @param n the columns of the right operand
     * @param k the columns of the left operand and rows of the right one
     * @param repeats how many products are timed (after one untimed warm-up)
     * @return the best rate, in GFLOP/s (2 m n k operations per product)
     * @throws CaeException when a size is out of range or the backend fails
     */
    public double measureGemmGflops(int m, int n, int k, int repeats) {
        return measureGemmGflops(Precision.FP32, m, n, k, repeats);
    }

    /**
     * As {@link #measureGemmGflops(int, int, int, int)} at a precision: for {@link Precision#BF16}
     * the rate of bf16 products with both operands already rounded (the tensor cores' rate on
     * CUDA), the peak a bf16 step's utilization is measured against.
     *
     * @param precision the arithmetic of the products
     * @param m the rows of the left operand
     * @param n the columns of the right operand
     * @param k the columns of the left operand and rows of the right one
     * @param repeats how many products are timed (after one untimed warm-up)
     * @return the best rate, in GFLOP/s (2 m n k operations per product)
     * @throws CaeException when a size is out of range or the backend fails
     */
    public double measureGemmGflops(Precision precision, int m, int n, int k, int repeats) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment out = call.allocate(ValueLayout.JAVA_DOUBLE);
            Native.check(CaeNative.cae_context_measure_gemm(handle(), precision.code(), m, n, k, repeats, out),
                    "measuring the " + precision + " GEMM rate of " + this);
            return out.get(ValueLayout.JAVA_DOUBLE, 0);
        }
    }

    /**
     * Whether the context is still open.
     *
     * @return false once {@link #close()} was called
     */
    public boolean isOpen() {
        return arena.scope().isAlive();
    }

    /**
     * The native handle, for the wrappers of this library. Throws when the context is closed.
     *
     * @return the {@code cae_context} handle, valid until {@link #close()}
     * @throws IllegalStateException when the context is closed
     */
    public MemorySegment handle() {
        if (!isOpen()) {
            throw new IllegalStateException("the context (" + description + ") is closed");
        }
        return handle;
    }

    /**
     * Releases the native context; device memory made from it is freed with its tensors. Calling
     * it again does nothing.
     */
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "Context[" + description + (isOpen() ? "" : ", closed") + "]";
    }

    /**
     * Options of a new context. A plain mutable object that owns nothing until {@link #build()};
     * used by one thread at a time.
     */
    public static final class Builder {
        private Backend backend = Backend.AUTO;
        private int device = 0;
        private int threads = 0;
        private long seed = 0;

        private Builder() {}

        /**
         * The backend to compute on (default {@link Backend#AUTO}).
         *
         * @param backend the backend; not null
         * @return this builder
         */
        public Builder backend(Backend backend) {
            this.backend = java.util.Objects.requireNonNull(backend, "backend");
            return this;
        }

        /**
         * The CUDA device ordinal (0 on the CPU).
         *
         * @param index the ordinal, as {@link NativeLibrary#devices()} numbers the devices
         * @return this builder
         */
        public Builder device(int index) {
            this.device = index;
            return this;
        }

        /**
         * CPU threads; 0 (the default) uses every available core.
         *
         * @param threads the number of worker threads
         * @return this builder
         */
        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        /**
         * The root of every random stream drawn in the context (default 0).
         *
         * @param seed the run seed
         * @return this builder
         */
        public Builder seed(long seed) {
            this.seed = seed;
            return this;
        }

        /**
         * Creates the context. Loads libcae first if needed.
         *
         * @return a new open context, to be closed by the caller
         * @throws CaeException when the backend is not usable here or the options are out of range
         */
        public Context build() {
            return new Context(this);
        }
    }
}
