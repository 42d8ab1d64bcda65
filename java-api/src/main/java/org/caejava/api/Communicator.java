package org.caejava.api;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.caejava.bindings.CaeNative;
import org.caejava.bindings.cae_comm_info;

/**
 * The processes of a data-parallel job, as libcae sees them ({@code cae_comm}): rank, size, and
 * the collectives a training run needs on host memory (sum, broadcast, barrier, abort). A model
 * given a communicator of more than one rank ({@link NativeModel#setCommunicator}) averages its
 * gradients over the ranks in every training step.
 *
 * <p>{@link #fromEnvironment()} gives MPI's world when a launcher ({@code mpirun}, {@code srun})
 * started this process in a job of more than one process, else a communicator of this process
 * alone. MPI is opened at run time (Open MPI's {@code libmpi.so.40}, or the library named by
 * {@code CAE_MPI_LIBRARY}), initialized on first use and finalized when the process exits.
 *
 * <p>Collectives must be called by every rank, in the same order, by one thread at a time. The
 * communicator owns a native handle: close it when done (a model it is attached to keeps the
 * native communicator alive until the model closes). The MPI library, once opened, belongs to the
 * process, not to one communicator.
 */
public final class Communicator implements AutoCloseable {

    /**
     * Which communicator to create ({@code cae_comm_kind}). Constants only: owns nothing,
     * immutable, safe to use from any thread.
     */
    public enum Kind {
        /** MPI when started by an MPI launcher in a job of more than one process, else SINGLE. */
        AUTO(CaeNative.CAE_COMM_AUTO()),
        /** This process alone: rank 0 of 1, every collective a no-op. */
        SINGLE(CaeNative.CAE_COMM_SINGLE()),
        /** MPI's world. */
        MPI(CaeNative.CAE_COMM_MPI());

        private final int code;

        Kind(int code) {
            this.code = code;
        }

        /**
         * The number the C ABI uses for this kind.
         *
         * @return 0 for AUTO, 1 for SINGLE, 2 for MPI
         */
        public int code() {
            return code;
        }

        static Kind of(int code) {
            for (Kind k : values()) {
                if (k.code == code) {
                    return k;
                }
            }
            throw new IllegalArgumentException("unknown communicator kind " + code);
        }
    }

    private final Arena arena;
    private final MemorySegment handle;
    private final Kind kind;
    private final int rank;
    private final int size;
    private final int localRank;
    private final int localSize;
    private final String library;

    private Communicator(Kind requested) {
        NativeLibrary.load();
        MemorySegment raw;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment out = call.allocate(ValueLayout.ADDRESS);
            Native.check(CaeNative.cae_comm_create(requested.code(), out), "creating a " + requested + " communicator");
            raw = out.get(ValueLayout.ADDRESS, 0);
        }
        this.arena = Arena.ofShared();
        this.handle = raw.reinterpret(arena, CaeNative::cae_comm_destroy);
        try (Arena call = Arena.ofConfined()) {
            MemorySegment info = cae_comm_info.allocate(call);
            Native.check(CaeNative.cae_comm_query(handle, info), "querying the new communicator");
            this.kind = Kind.of(cae_comm_info.kind(info));
            this.rank = cae_comm_info.rank(info);
            this.size = cae_comm_info.size(info);
            this.localRank = cae_comm_info.local_rank(info);
            this.localSize = cae_comm_info.local_size(info);
            this.library = cae_comm_info.library(info).getString(0);
        }
    }

    /**
     * A new communicator of the given kind; {@link Status#UNSUPPORTED} when MPI is asked for and none can be opened.
     *
     * @param kind the kind of communicator; not null
     * @return a new open communicator, to be closed by the caller
     * @throws CaeException when the communicator cannot be created (status {@link Status#UNSUPPORTED}
     *     when MPI cannot be opened)
     */
    public static Communicator create(Kind kind) {
        return new Communicator(java.util.Objects.requireNonNull(kind, "kind"));
    }

    /**
     * MPI's world when an MPI launcher started this process with others, else this process alone.
     *
     * @return a new open communicator, to be closed by the caller
     * @throws CaeException when MPI is needed and cannot be opened or initialized
     */
    public static Communicator fromEnvironment() {
        return create(Kind.AUTO);
    }

    /**
     * This process alone.
     *
     * @return a new open communicator of one rank, to be closed by the caller
     */
    public static Communicator single() {
        return create(Kind.SINGLE);
    }

    /**
     * The kind this communicator is.
     *
     * @return SINGLE or MPI ({@link Kind#AUTO} is resolved at creation)
     */
    public Kind kind() {
        return kind;
    }

    /**
     * This process's rank in the job.
     *
     * @return the rank, from 0 to {@link #size()} - 1
     */
    public int rank() {
        return rank;
    }

    /**
     * The number of processes in the job.
     *
     * @return the number of ranks, 1 for this process alone
     */
    public int size() {
        return size;
    }

    /**
     * The rank among the processes of this machine.
     *
     * @return the local rank, from 0 to {@link #localSize()} - 1
     */
    public int localRank() {
        return localRank;
    }

    /**
     * The number of processes of the job on this machine.
     *
     * @return the local number of ranks
     */
    public int localSize() {
        return localSize;
    }

    /**
     * Whether this is rank 0, the one that writes a run's outputs.
     *
     * @return true on rank 0
     */
    public boolean isRoot() {
        return rank == 0;
    }

    /**
     * "single", or the MPI library's version ("Open MPI v4.1.4").
     *
     * @return the name of what carries the collectives
     */
    public String library() {
        return library;
    }

    /**
     * In place: every element becomes the sum of that element over the ranks.
     *
     * @param data this rank's values, replaced by the sums; the same length on every rank
     * @throws CaeException when the collective fails
     * @throws IllegalStateException when the communicator is closed
     */
    public void allReduceSum(float[] data) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment seg = call.allocateFrom(ValueLayout.JAVA_FLOAT, data);
            Native.check(CaeNative.cae_comm_allreduce_sum(handle(), seg, data.length),
                    () -> "summing " + data.length + " floats over " + this);
            MemorySegment.copy(seg, ValueLayout.JAVA_FLOAT, 0, data, 0, data.length);
        }
    }

    /**
     * In place: every element becomes the sum of that element over the ranks.
     *
     * @param data this rank's values, replaced by the sums; the same length on every rank
     * @throws CaeException when the collective fails
     * @throws IllegalStateException when the communicator is closed
     */
    public void allReduceSum(double[] data) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment seg = call.allocateFrom(ValueLayout.JAVA_DOUBLE, data);
            Native.check(CaeNative.cae_comm_allreduce_sum_f64(handle(), seg, data.length),
                    () -> "summing " + data.length + " doubles over " + this);
            MemorySegment.copy(seg, ValueLayout.JAVA_DOUBLE, 0, data, 0, data.length);
        }
    }

    /**
     * The bytes of rank {@code root}, copied into {@code data} on every rank.
     *
     * @param data the bytes to send on {@code root}, overwritten on the other ranks; the same
     *     length on every rank
     * @param root the rank that sends
     * @throws CaeException when the collective fails
     * @throws IllegalStateException when the communicator is closed
     */
    public void broadcast(byte[] data, int root) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment seg = call.allocateFrom(ValueLayout.JAVA_BYTE, data);
            Native.check(CaeNative.cae_comm_broadcast(handle(), seg, data.length, root),
                    () -> "broadcasting " + data.length + " bytes from rank " + root + " over " + this);
            MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, 0, data, 0, data.length);
        }
    }

    /**
     * {@code value} of rank {@code root}, on every rank.
     *
     * @param value the value to send on {@code root}; ignored on the other ranks
     * @param root the rank that sends
     * @return the value of rank {@code root}
     * @throws CaeException when the collective fails
     * @throws IllegalStateException when the communicator is closed
     */
    public long broadcast(long value, int root) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment seg = call.allocateFrom(ValueLayout.JAVA_LONG, value);
            Native.check(CaeNative.cae_comm_broadcast(handle(), seg, Long.BYTES, root),
                    () -> "broadcasting a value from rank " + root + " over " + this);
            return seg.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /**
     * Host memory of rank {@code root} copied to the same memory on every rank.
     *
     * @param data host memory: read on {@code root}, overwritten on the other ranks; the same size
     *     on every rank
     * @param root the rank that sends
     * @throws CaeException when the collective fails
     * @throws IllegalStateException when the communicator is closed
     */
    public void broadcast(MemorySegment data, int root) {
        Native.check(CaeNative.cae_comm_broadcast(handle(), data, data.byteSize(), root),
                () -> "broadcasting " + data.byteSize() + " bytes from rank " + root + " over " + this);
    }

    /**
     * Waits until every rank has reached this barrier.
     *
     * @throws CaeException when the collective fails
     * @throws IllegalStateException when the communicator is closed
     */
    public void barrier() {
        Native.check(CaeNative.cae_comm_barrier(handle()), () -> "waiting at a barrier of " + this);
    }

    /**
     * Ends every process of the job with {@code code}; returns only for a communicator of one rank.
     *
     * @param code the exit status
     * @throws CaeException when the abort fails
     * @throws IllegalStateException when the communicator is closed
     */
    public void abort(int code) {
        Native.check(CaeNative.cae_comm_abort(handle(), code), () -> "aborting " + this);
    }

    MemorySegment handle() {
        if (!arena.scope().isAlive()) {
            throw new IllegalStateException("the communicator is closed");
        }
        return handle;
    }

    /**
     * Whether the communicator is still open.
     *
     * @return false once {@link #close()} was called
     */
    public boolean isOpen() {
        return arena.scope().isAlive();
    }

    /**
     * Releases the native communicator; a model it is attached to keeps it alive until the model
     * closes. Calling it again does nothing.
     */
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return size == 1 ? "a single process (" + library + ")" : "rank " + rank + " of " + size + " (" + library + ")";
    }
}
