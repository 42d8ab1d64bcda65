package org.caejava.data;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Bounds checks for a FlatBuffer before the generated accessors read it: flatbuffers-java 2.0.8
 * has no verifier, and its accessors trust every offset. Each check proves that what an accessor
 * will read lies inside the buffer: the root offset, a table's vtable and inline fields, and a
 * vector's or string's elements. Failures throw {@link ImageDataException} naming the file.
 */
final class FlatBufferCheck {

    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** A vector's element data: {@code length} elements from byte {@code start}. */
    record Vector(long start, long length) {}

    private final MemorySegment buf;
    private final long size;
    private final String name;

    FlatBufferCheck(MemorySegment buf, String name) {
        this.buf = buf;
        this.size = buf.byteSize();
        this.name = name;
    }

    private ImageDataException bad(String what) {
        return new ImageDataException(name + ": corrupt shard, " + what);
    }

    private long u32(long pos) {
        return Integer.toUnsignedLong(buf.get(U32, pos));
    }

    private int u16(long pos) {
        return Short.toUnsignedInt(buf.get(U16, pos));
    }

    /** Checks the file identifier and returns the position of the root table. */
    long root(String identifier) {
        if (size < 8) {
            throw bad("only " + size + " bytes");
        }
        byte[] id = new byte[4];
        MemorySegment.copy(buf, ValueLayout.JAVA_BYTE, 4, id, 0, 4);
        if (!identifier.equals(new String(id, StandardCharsets.ISO_8859_1))) {
            throw bad("file identifier \"" + new String(id, StandardCharsets.ISO_8859_1) + "\", expected \""
                    + identifier + "\"");
        }
        return table(u32(0), "the root table");
    }

    /** Checks the table at {@code pos}: its vtable and inline data lie in the buffer. */
    long table(long pos, String what) {
        if (pos < 8 || pos % 4 != 0 || pos + 4 > size) {
            throw bad(what + " at " + pos + " is outside the " + size + "-byte buffer or misaligned");
        }
        long vtable = pos - buf.get(U32, pos);
        if (vtable < 0 || vtable % 2 != 0 || vtable + 4 > size) {
            throw bad("the vtable of " + what + " at " + vtable + " is outside the buffer");
        }
        int vsize = u16(vtable);
        int tsize = u16(vtable + 2);
        // flatbuffers-java reads the vtable's 16-bit entries as signed: sizes (and so field offsets)
        // of 2^15 and more would make its accessors see every field as absent, or read before the table.
        if (vsize < 4 || vsize % 2 != 0 || vsize > Short.MAX_VALUE || vtable + vsize > size) {
            throw bad("the vtable of " + what + " has size " + vsize + ", expected an even size from 4 to 32767 "
                    + "inside the buffer");
        }
        if (tsize < 4 || tsize > Short.MAX_VALUE || pos + tsize > size) {
            throw bad(what + " has inline size " + tsize + ", expected 4 to 32767 inside the buffer");
        }
        return pos;
    }

    /**
     * The position of field {@code slot} (the generated code's vtable offset: 4, 6, 8, ...) of the
     * table at {@code table}, checked to hold {@code bytes} inline bytes; 0 when absent.
     */
    long field(long table, int slot, int bytes) {
        long vtable = table - buf.get(U32, table);
        int vsize = u16(vtable);
        if (slot >= vsize) {
            return 0;
        }
        int off = u16(vtable + slot);
        if (off == 0) {
            return 0;
        }
        int tsize = u16(vtable + 2);
        if (off < 4 || off + bytes > tsize) {
            throw bad("field " + (slot - 4) / 2 + " at offset " + off + " lies outside its table (" + tsize
                    + " bytes)");
        }
        return table + off;
    }

    /** An unsigned 32-bit scalar field, or {@code absent}. */
    long u32Field(long table, int slot, long absent) {
        long p = field(table, slot, 4);
        return p == 0 ? absent : u32(p);
    }

    /** A 64-bit scalar field, or {@code absent}. */
    long u64Field(long table, int slot, long absent) {
        long p = field(table, slot, 8);
        return p == 0 ? absent : buf.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), p);
    }

    /** The vector that field {@code slot} points to, its elements {@code elementBytes} each; null when absent. */
    Vector vector(long table, int slot, int elementBytes, String what) {
        long p = field(table, slot, 4);
        return p == 0 ? null : vectorAt(p, elementBytes, what);
    }

    /** The vector the offset stored at {@code p} points to. */
    private Vector vectorAt(long p, int elementBytes, String what) {
        long start = p + u32(p);
        if (start % 4 != 0 || start + 4 > size) {
            throw bad(what + " starts at " + start + ", outside the " + size + "-byte buffer or misaligned");
        }
        long length = u32(start);
        if (start + 4 + length * elementBytes > size) {
            throw bad(what + " has " + length + " elements of " + elementBytes + " bytes from " + (start + 4)
                    + ", past the end of the " + size + "-byte buffer");
        }
        return new Vector(start + 4, length);
    }

    /** The string field {@code slot} (UTF-8, zero-terminated), or null when absent. */
    String string(long table, int slot, String what) {
        long p = field(table, slot, 4);
        return p == 0 ? null : stringAt(p, what);
    }

    private String stringAt(long p, String what) {
        Vector v = vectorAt(p, 1, what);
        long end = v.start() + v.length();
        if (end >= size || buf.get(ValueLayout.JAVA_BYTE, end) != 0) {
            throw bad(what + " lacks its terminating zero byte");
        }
        if (v.length() > 1 << 20) {
            throw bad(what + " is " + v.length() + " bytes long");
        }
        byte[] bytes = new byte[(int) v.length()];
        MemorySegment.copy(buf, ValueLayout.JAVA_BYTE, v.start(), bytes, 0, bytes.length);
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw bad(what + " is not valid UTF-8");
        }
    }

    /** The vector of strings of field {@code slot} (empty when absent). */
    List<String> strings(long table, int slot, String what) {
        Vector v = vector(table, slot, 4, what);
        List<String> out = new ArrayList<>();
        if (v != null) {
            // Offsets may all point at one long string: bound what is decoded by the buffer's size.
            long decoded = 0;
            for (long i = 0; i < v.length(); i++) {
                long p = v.start() + 4 * i;
                decoded += vectorAt(p, 1, what + "[" + i + "]").length();
                if (decoded > size) {
                    throw bad("the " + v.length() + " strings of " + what + " overlap: the first " + (i + 1)
                            + " hold more than the buffer's " + size + " bytes");
                }
                out.add(stringAt(p, what + "[" + i + "]"));
            }
        }
        return out;
    }
}
