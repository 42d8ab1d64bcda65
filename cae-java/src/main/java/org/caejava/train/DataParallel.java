package org.caejava.train;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.caejava.api.Communicator;
import org.caejava.api.NativeModel;
import org.caejava.api.ParamInfo;
import org.caejava.api.Slot;
import org.caejava.data.Dataset;

/**
 * What keeps the ranks of a data-parallel run in step, beside the gradient averaging in libcae:
 * at the start, every rank's description of its run must equal rank 0's (else every rank stops,
 * the differing ones naming what differs) and rank 0's weights and AdamW moments are copied to
 * every rank; during the run, a hash of the weights is compared every few steps; and a stop asked
 * for on any rank stops every rank at the same step. Every method is collective: every rank calls
 * it, in the same order.
 */
public final class DataParallel {

    private DataParallel() {}

    /** Thrown on every rank when the ranks disagree. */
    public static final class MismatchException extends IllegalStateException {
        public MismatchException(String message) {
            super(message);
        }
    }

    /**
     * Compares every rank's run description (key to value, in a fixed order) with rank 0's; throws
     * {@link MismatchException} on every rank when any rank differs.
     */
    public static void requireSameRun(Communicator comm, Map<String, String> run) {
        StringBuilder sb = new StringBuilder();
        run.forEach((k, v) -> sb.append(k).append('=').append(v).append('\n'));
        byte[] mine = sb.toString().getBytes(StandardCharsets.UTF_8);
        int length = (int) comm.broadcast(mine.length, 0);
        byte[] root = new byte[length];
        if (comm.isRoot()) {
            System.arraycopy(mine, 0, root, 0, length);
        }
        comm.broadcast(root, 0);
        Map<String, String> rootRun = parse(new String(root, StandardCharsets.UTF_8));
        List<String> diffs = new ArrayList<>();
        for (Map.Entry<String, String> e : run.entrySet()) {
            String theirs = rootRun.get(e.getKey());
            if (!e.getValue().equals(theirs)) {
                diffs.add(e.getKey() + " " + e.getValue() + " here, " + (theirs == null ? "absent" : theirs)
                        + " on rank 0");
            }
        }
        for (String k : rootRun.keySet()) {
            if (!run.containsKey(k)) {
                diffs.add(k + " absent here, " + rootRun.get(k) + " on rank 0");
            }
        }
        double[] bad = {diffs.isEmpty() ? 0 : 1};
        comm.allReduceSum(bad);
        if (bad[0] > 0) {
            throw new MismatchException(diffs.isEmpty()
                    ? (int) bad[0] + " rank(s) were started with a different run than rank 0 (see their messages)"
                    : "rank " + comm.rank() + " was started with a different run than rank 0: " + String.join("; ", diffs));
        }
    }

    /** Rank 0's weights and AdamW moments copied to every rank. */
    public static void copyRootState(Communicator comm, NativeModel model) {
        try (Arena arena = Arena.ofConfined()) {
            for (ParamInfo p : model.parameters()) {
                MemorySegment buf = arena.allocate(ValueLayout.JAVA_FLOAT, p.numel());
                for (Slot slot : new Slot[] {Slot.VALUE, Slot.EXP_AVG, Slot.EXP_AVG_SQ}) {
                    if (comm.isRoot()) {
                        model.read(p, slot, buf);
                    }
                    comm.broadcast(buf, 0);
                    if (!comm.isRoot()) {
                        model.write(p, slot, buf);
                    }
                }
            }
        }
    }

    /** A hash of every weight's bits. */
    public static long weightHash(NativeModel model) {
        long h = FNV_OFFSET;
        for (ParamInfo p : model.parameters()) {
            for (float v : model.read(p, Slot.VALUE)) {
                h = mix(h, v);
            }
        }
        return h;
    }

    /** A hash of the first and the last training image as loaded at epoch 0 with the run's seed. */
    public static long dataHash(Dataset data, long seed) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment img = arena.allocate(data.floatsPerSample() * Float.BYTES, 64);
            long h = FNV_OFFSET;
            for (long index : new long[] {0, data.size() - 1}) {
                data.load(index, 0, seed, img);
                for (long i = 0; i < data.floatsPerSample(); i++) {
                    h = mix(h, img.getAtIndex(ValueLayout.JAVA_FLOAT, i));
                }
            }
            return h;
        }
    }

    private static final long FNV_OFFSET = 0xcbf29ce484222325L;

    /** One step of 64-bit FNV-1a over a float's bits. */
    private static long mix(long h, float v) {
        return (h ^ Float.floatToRawIntBits(v)) * 0x100000001b3L;
    }

    /** Throws {@link MismatchException} on every rank when any rank's weights differ from rank 0's. */
    public static void requireSameWeights(Communicator comm, NativeModel model, long step) {
        long mine = weightHash(model);
        long root = comm.broadcast(mine, 0);
        double[] bad = {mine == root ? 0 : 1};
        comm.allReduceSum(bad);
        if (bad[0] > 0) {
            throw new MismatchException("after step " + step + " the weights of " + (int) bad[0]
                    + " rank(s) differ from rank 0's" + (mine != root ? ", this rank's (" + comm.rank() + ") among them"
                    : "") + ": the ranks no longer train the same model");
        }
    }

    /** True on every rank when {@code mine} is true on any rank. */
    public static boolean any(Communicator comm, boolean mine) {
        double[] v = {mine ? 1 : 0};
        comm.allReduceSum(v);
        return v[0] > 0;
    }

    private static Map<String, String> parse(String text) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                m.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        return m;
    }
}
