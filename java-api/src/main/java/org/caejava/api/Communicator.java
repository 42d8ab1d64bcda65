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
 * native communicator alive until the model closes).
 */
public final class Communicator implements AutoCloseable {

    /** Which communicator to create ({@code cae_comm_kind}). */
    public enum Kind {
        /** MPI when started by an MPI launcher in a job of more than one process, else SINGLE. */
        AUTO(0),
        /** This process alone: rank 0 of 1, every collective a no-op. */
        SINGLE(1),
        /** MPI's world. */
        MPI(2);

        private final int code;

        Kind(int code) {
            this.code = code;
        }

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

    /** A new communicator of the given kind; {@link Status#UNSUPPORTED} when MPI is asked for and none can be opened. */
    public static Communicator create(Kind kind) {
        return new Communicator(java.util.Objects.requireNonNull(kind, "kind"));
    }

    /** MPI's world when an MPI launcher started this process with others, else this process alone. */
    public static Communicator fromEnvironment() {
        return create(Kind.AUTO);
    }

    /** This process alone. */
    public static Communicator single() {
        return create(Kind.SINGLE);
    }

    public Kind kind() {
        return kind;
    }

    public int rank() {
        return rank;
    }

    public int size() {
        return size;
    }

    /** The rank among the processes of this machine. */
    public int localRank() {
        return localRank;
    }

    public int localSize() {
        return localSize;
    }

    /** Whether this is rank 0, the one that writes a run's outputs. */
    public boolean isRoot() {
        return rank == 0;
    }

    /** "single", or the MPI library's version ("Open MPI v4.1.4"). */
    public String library() {
        return library;
    }

    /** In place: every element becomes the sum of that element over the ranks. */
    public void allReduceSum(float[] data) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment seg = call.allocateFrom(ValueLayout.JAVA_FLOAT, data);
            Native.check(CaeNative.cae_comm_allreduce_sum(handle(), seg, data.length),
                    () -> "summing " + data.length + " floats over " + this);
            MemorySegment.copy(seg, ValueLayout.JAVA_FLOAT, 0, data, 0, data.length);
        }
    }

    /** In place: every element becomes the sum of that element over the ranks. */
    public void allReduceSum(double[] data) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment seg = call.allocateFrom(ValueLayout.JAVA_DOUBLE, data);
            Native.check(CaeNative.cae_comm_allreduce_sum_f64(handle(), seg, data.length),
                    () -> "summing " + data.length + " doubles over " + this);
            MemorySegment.copy(seg, ValueLayout.JAVA_DOUBLE, 0, data, 0, data.length);
        }
    }

    /** The bytes of rank {@code root}, copied into {@code data} on every rank. */
    public void broadcast(byte[] data, int root) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment seg = call.allocateFrom(ValueLayout.JAVA_BYTE, data);
            Native.check(CaeNative.cae_comm_broadcast(handle(), seg, data.length, root),
                    () -> "broadcasting " + data.length + " bytes from rank " + root + " over " + this);
            MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, 0, data, 0, data.length);
        }
    }

    /** {@code value} of rank {@code root}, on every rank. */
    public long broadcast(long value, int root) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment seg = call.allocateFrom(ValueLayout.JAVA_LONG, value);
            Native.check(CaeNative.cae_comm_broadcast(handle(), seg, Long.BYTES, root),
                    () -> "broadcasting a value from rank " + root + " over " + this);
            return seg.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /** Host memory of rank {@code root} copied to the same memory on every rank. */
    public void broadcast(MemorySegment data, int root) {
        Native.check(CaeNative.cae_comm_broadcast(handle(), data, data.byteSize(), root),
                () -> "broadcasting " + data.byteSize() + " bytes from rank " + root + " over " + this);
    }

    public void barrier() {
        Native.check(CaeNative.cae_comm_barrier(handle()), () -> "waiting at a barrier of " + this);
    }

    /** Ends every process of the job with {@code code}; returns only for a communicator of one rank. */
    public void abort(int code) {
        Native.check(CaeNative.cae_comm_abort(handle(), code), () -> "aborting " + this);
    }

    MemorySegment handle() {
        if (!arena.scope().isAlive()) {
            throw new IllegalStateException("the communicator is closed");
        }
        return handle;
    }

    public boolean isOpen() {
        return arena.scope().isAlive();
    }

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
