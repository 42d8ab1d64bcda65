package org.caejava.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;

/**
 * Byte-level mutations of a file, drawn from a {@link Random}: each returns a new array and
 * appends what it did to a description, so a failing try can be read and replayed.
 */
public final class Mutator {

    /** Integers that break size arithmetic: zero, one, sign and width boundaries. */
    private static final long[] EDGES = {0, 1, 2, 3, 7, 8, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFFL,
        0x80000000L, 0xFFFFFFFFL, 0x100000000L, Long.MAX_VALUE, Long.MIN_VALUE, -1, -2, 1L << 40, 1L << 62};

    private final Random random;
    private final StringBuilder log = new StringBuilder();

    public Mutator(Random random) {
        this.random = random;
    }

    /** What the mutations since the last call did, then forgets it. */
    public String description() {
        String s = log.toString().strip();
        log.setLength(0);
        return s;
    }

    public Mutator note(String s) {
        log.append(s).append(' ');
        return this;
    }

    /** An integer at an edge, or near one, or random. */
    public long edge() {
        return switch (random.nextInt(4)) {
            case 0, 1 -> EDGES[random.nextInt(EDGES.length)];
            case 2 -> EDGES[random.nextInt(EDGES.length)] + random.nextInt(9) - 4;
            default -> random.nextLong();
        };
    }

    /** One random byte-level mutation: flips, random bytes, truncation, insertion, deletion, an integer. */
    public byte[] any(byte[] in) {
        return switch (random.nextInt(7)) {
            case 0 -> flipBits(in, 1 + random.nextInt(8));
            case 1 -> randomBytes(in, 1 + random.nextInt(16));
            case 2 -> truncate(in);
            case 3 -> insert(in);
            case 4 -> delete(in);
            case 5 -> duplicate(in);
            default -> integer(in, random.nextInt(Math.max(1, in.length)), random.nextBoolean() ? 4 : 8,
                    random.nextBoolean() ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN, edge());
        };
    }

    /** Byte-level mutations confined to {@code [from, to)} (for instance a header), or anywhere when empty. */
    public byte[] within(byte[] in, int from, int to) {
        if (to - from < 1 || random.nextInt(4) == 0) {
            return any(in);
        }
        int at = from + random.nextInt(to - from);
        return switch (random.nextInt(4)) {
            case 0 -> {
                byte[] out = in.clone();
                int n = 1 + random.nextInt(4);
                for (int i = 0; i < n && at + i < out.length; i++) {
                    out[at + i] ^= (byte) (1 << random.nextInt(8));
                }
                note("flip bits in " + n + " bytes at " + at);
                yield out;
            }
            case 1 -> {
                byte[] out = in.clone();
                out[at] = (byte) random.nextInt(256);
                note("byte " + at + " = " + (out[at] & 0xFF));
                yield out;
            }
            case 2 -> integer(in, at, random.nextBoolean() ? 4 : 8,
                    random.nextBoolean() ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN, edge());
            default -> {
                note("truncate to " + at);
                yield Arrays.copyOf(in, at);
            }
        };
    }

    public byte[] flipBits(byte[] in, int n) {
        byte[] out = in.clone();
        if (out.length == 0) {
            return out;
        }
        StringBuilder at = new StringBuilder();
        for (int i = 0; i < n; i++) {
            int p = random.nextInt(out.length);
            int bit = random.nextInt(8);
            out[p] ^= (byte) (1 << bit);
            at.append(i == 0 ? "" : ",").append(p).append('.').append(bit);
        }
        note("flip bits " + at);
        return out;
    }

    public byte[] randomBytes(byte[] in, int n) {
        byte[] out = in.clone();
        if (out.length == 0) {
            return out;
        }
        int p = random.nextInt(out.length);
        int end = Math.min(out.length, p + n);
        for (int i = p; i < end; i++) {
            out[i] = (byte) random.nextInt(256);
        }
        note("random bytes " + p + ".." + end);
        return out;
    }

    public byte[] truncate(byte[] in) {
        int n = random.nextInt(in.length + 1);
        note("truncate to " + n);
        return Arrays.copyOf(in, n);
    }

    public byte[] insert(byte[] in) {
        int p = random.nextInt(in.length + 1);
        int n = 1 + random.nextInt(random.nextBoolean() ? 4 : 64);
        byte[] add = new byte[n];
        random.nextBytes(add);
        note("insert " + n + " bytes at " + p);
        return splice(in, p, 0, add);
    }

    public byte[] delete(byte[] in) {
        if (in.length == 0) {
            return in;
        }
        int p = random.nextInt(in.length);
        int n = Math.min(in.length - p, 1 + random.nextInt(random.nextBoolean() ? 4 : 64));
        note("delete " + n + " bytes at " + p);
        return splice(in, p, n, new byte[0]);
    }

    /** Copies a random run of bytes over another place. */
    public byte[] duplicate(byte[] in) {
        if (in.length < 2) {
            return in;
        }
        int n = 1 + random.nextInt(Math.min(in.length - 1, 32));
        int from = random.nextInt(in.length - n + 1);
        int to = random.nextInt(in.length - n + 1);
        byte[] out = in.clone();
        System.arraycopy(in, from, out, to, n);
        note("copy " + n + " bytes from " + from + " to " + to);
        return out;
    }

    /** Writes the low {@code width} bytes of {@code value} at {@code at}, as far as the file reaches. */
    public byte[] integer(byte[] in, int at, int width, ByteOrder order, long value) {
        byte[] out = in.clone();
        ByteBuffer b = ByteBuffer.allocate(8).order(order);
        if (width == 8) {
            b.putLong(value);
        } else if (width == 4) {
            b.putInt((int) value);
        } else {
            b.putShort((short) value);
        }
        for (int i = 0; i < width && at + i < out.length; i++) {
            out[at + i] = b.get(i);
        }
        note(width + "-byte " + (order == ByteOrder.LITTLE_ENDIAN ? "LE" : "BE") + " " + value + " at " + at);
        return out;
    }

    /** {@code in} with {@code remove} bytes at {@code at} replaced by {@code add}. */
    public static byte[] splice(byte[] in, int at, int remove, byte[] add) {
        byte[] out = new byte[in.length - remove + add.length];
        System.arraycopy(in, 0, out, 0, at);
        System.arraycopy(add, 0, out, at, add.length);
        System.arraycopy(in, at + remove, out, at + add.length, in.length - at - remove);
        return out;
    }
}
