package org.caejava.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class TensorTest {

    private static Context ctx;

    @BeforeAll
    static void openContext() {
        ctx = Context.builder().backend(Backend.CPU).threads(2).build();
    }

    @AfterAll
    static void closeContext() {
        ctx.close();
    }

    private static float[] ramp(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = 0.25f * i - 3f;
        }
        return a;
    }

    @Test
    void hostTensorHoldsItsShapeAndValues() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Tensor.of(arena, ramp(24), 2, 3, 4);
            assertArrayEquals(new long[] {2, 3, 4}, t.shape());
            assertEquals(3, t.rank());
            assertEquals(24, t.numel());
            assertEquals(96, t.byteSize());
            assertEquals(Location.HOST, t.location());
            assertEquals(0.25f * (1 * 12 + 2 * 4 + 3) - 3f, t.getFloat(1, 2, 3));
            t.setFloat(9.5f, 0, 1, 2);
            assertEquals(9.5f, t.getFloat(0, 1, 2));
            assertEquals(9.5f, t.segment().getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, 6));
            assertThrows(IndexOutOfBoundsException.class, () -> t.getFloat(2, 0, 0));
            assertThrows(IllegalArgumentException.class, () -> t.getFloat(0, 0));
            assertEquals("Tensor[F32 2x3x4 host]", t.toString());
        }
    }

    @Test
    void viewsShareMemory() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Tensor.of(arena, ramp(24), 4, 6);
            Tensor v = t.view(2, -1, 3);
            assertArrayEquals(new long[] {2, 4, 3}, v.shape());
            Tensor rows = t.slice(1, 3);
            assertArrayEquals(new long[] {2, 6}, rows.shape());
            assertEquals(t.getFloat(1, 0), rows.getFloat(0, 0));
            rows.setFloat(-1f, 1, 5);
            assertEquals(-1f, t.getFloat(2, 5), "a slice writes through");
            Tensor row = t.select(3);
            assertArrayEquals(new long[] {6}, row.shape());
            assertEquals(t.getFloat(3, 4), row.getFloat(4));
            assertArrayEquals(java.util.Arrays.copyOfRange(t.toFloatArray(), 6, 18), rows.toFloatArray());
            assertThrows(IllegalArgumentException.class, () -> t.view(5, 5));
            assertThrows(IllegalArgumentException.class, () -> t.view(-1, 7));
            assertThrows(IndexOutOfBoundsException.class, () -> t.slice(3, 5));
            assertThrows(IndexOutOfBoundsException.class, () -> t.select(4));
        }
    }

    @Test
    void everyDtypeRoundTrips() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor u8 = Tensor.of(arena, new byte[] {0, 1, (byte) 200, (byte) 255}, 2, 2);
            assertEquals(200, u8.getInt(1, 0));
            assertEquals(255f, u8.getFloat(1, 1));
            assertArrayEquals(new byte[] {0, 1, (byte) 200, (byte) 255}, u8.toByteArray());
            assertThrows(IllegalArgumentException.class, () -> u8.setInt(256, 0, 0));

            Tensor i32 = Tensor.of(arena, new int[] {-5, 7, Integer.MAX_VALUE}, 3);
            assertArrayEquals(new int[] {-5, 7, Integer.MAX_VALUE}, i32.toIntArray());
            assertThrows(IllegalStateException.class, () -> i32.setFloat(1f, 0));

            float[] values = {1f, -2.5f, 3.14159265f, 1e-3f, 65504f, Float.NaN};
            Tensor bf = Tensor.of(arena, DType.BF16, values, 6);
            float[] back = bf.toFloatArray();
            for (int i = 0; i < 5; i++) {
                assertEquals(values[i], back[i], Math.abs(values[i]) * (1f / 128), "bf16 keeps 8 bits: " + values[i]);
            }
            assertTrue(Float.isNaN(back[5]), "NaN stays NaN");
            assertEquals(12, bf.byteSize());
        }
    }

    @Test
    void bf16RoundsToNearestEven() {
        // 1 + 2^-8 lies halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to the even one (1).
        assertEquals(1f, Tensor.bf16ToFloat(Tensor.floatToBf16(1f + 0x1p-8f)));
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties go to 1 + 2^-6.
        assertEquals(1f + 0x1p-6f, Tensor.bf16ToFloat(Tensor.floatToBf16(1f + 3 * 0x1p-8f)));
        assertEquals(1f + 0x1p-7f, Tensor.bf16ToFloat(Tensor.floatToBf16(1f + 0x1p-7f + 0x1p-10f)));
        assertEquals(Float.POSITIVE_INFINITY, Tensor.bf16ToFloat(Tensor.floatToBf16(Float.POSITIVE_INFINITY)));
    }

    @Test
    void copiesBetweenHostPinnedAndDevice() {
        try (Arena arena = Arena.ofConfined()) {
            float[] data = ramp(1000);
            Tensor host = Tensor.of(arena, data, 10, 100);
            Tensor dev = host.to(ctx, Location.DEVICE, arena);
            assertEquals(Location.DEVICE, dev.location());
            assertEquals(ctx, dev.context());
            assertArrayEquals(data, dev.toFloatArray());

            Tensor dev2 = Tensor.allocateDevice(ctx, arena, DType.F32, 10, 100);
            dev2.copyFrom(dev);
            Tensor pinned = dev2.to(ctx, Location.HOST, arena);
            assertEquals("Tensor[F32 10x100 pinned]", pinned.toString());
            assertArrayEquals(data, pinned.toFloatArray());
            assertEquals(data[123], pinned.getFloat(1, 23));

            // Slices of device tensors copy just their rows.
            Tensor part = dev.slice(3, 5).toHost(arena);
            assertArrayEquals(java.util.Arrays.copyOfRange(data, 300, 500), part.toFloatArray());
            dev.slice(0, 2).copyFrom(host.slice(8, 10));
            assertArrayEquals(java.util.Arrays.copyOfRange(data, 800, 1000), dev.slice(0, 2).toFloatArray());

            dev.zero();
            assertArrayEquals(new float[1000], dev.toFloatArray());
            dev.copyFrom(data);
            assertArrayEquals(data, dev.toFloatArray());

            Tensor devBytes = Tensor.allocateDevice(ctx, arena, DType.U8, 3);
            devBytes.copyFrom(new byte[] {1, 2, 3});
            assertArrayEquals(new byte[] {1, 2, 3}, devBytes.toByteArray());

            assertThrows(IllegalStateException.class, () -> dev.getFloat(0, 0), "no element access on the device");
            assertThrows(IllegalArgumentException.class, () -> dev.copyFrom(Tensor.allocate(arena, DType.F32, 100, 10)));
            assertThrows(IllegalArgumentException.class, () -> dev.copyFrom(new float[7]));
        }
    }

    @Test
    void wrapsExistingMemoryWithoutCopying() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(64);
            Tensor t = Tensor.wrap(seg, DType.F32, 4, 4);
            t.setFloat(2f, 3, 3);
            assertEquals(2f, seg.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, 15));
            assertThrows(IllegalArgumentException.class, () -> Tensor.wrap(seg, DType.F32, 5, 4));
            assertThrows(IllegalArgumentException.class,
                    () -> Tensor.wrap(MemorySegment.ofArray(new float[4]), DType.F32, 4));
        }
    }

    @Test
    void useAfterTheArenaClosesThrowsInsteadOfCrashing() {
        Tensor host;
        Tensor dev;
        Tensor pinned;
        try (Arena arena = Arena.ofConfined()) {
            host = Tensor.allocate(arena, DType.F32, 8);
            dev = Tensor.allocateDevice(ctx, arena, DType.F32, 8);
            pinned = Tensor.allocatePinned(ctx, arena, DType.F32, 8);
        }
        for (Tensor t : new Tensor[] {host, dev, pinned}) {
            assertFalse(t.isAlive());
            IllegalStateException e = assertThrows(IllegalStateException.class, t::toFloatArray);
            assertTrue(e.getMessage().contains("freed"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> t.copyFrom(new float[8]));
            assertThrows(IllegalStateException.class, () -> t.view(2, 4));
            assertTrue(t.toString().endsWith(", freed]"), t.toString());
        }
    }

    @Test
    void tensorsOfAnotherOrAClosedContextAreRefused() {
        try (Arena arena = Arena.ofConfined()) {
            Context other = Context.builder().backend(Backend.CPU).threads(1).build();
            Tensor mine = Tensor.allocateDevice(ctx, arena, DType.F32, 4);
            Tensor theirs = Tensor.allocateDevice(other, arena, DType.F32, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> mine.copyFrom(theirs));
            assertTrue(e.getMessage().contains("different contexts"), e.getMessage());
            other.close();
            IllegalStateException closed = assertThrows(IllegalStateException.class, theirs::toFloatArray);
            assertTrue(closed.getMessage().contains("context"), closed.getMessage());
            assertThrows(IllegalStateException.class,
                    () -> Tensor.allocateDevice(other, arena, DType.F32, 4));
        }
    }

    @Test
    void nativeMemoryReturnsToItsBaseline() {
        MemoryStats before = NativeLibrary.memoryStats();
        try (Context c = Context.builder().backend(Backend.CPU).threads(1).build(); Arena arena = Arena.ofConfined()) {
            Tensor.allocateDevice(c, arena, DType.F32, 1000);
            Tensor.allocatePinned(c, arena, DType.BF16, 10, 10);
            MemoryStats during = NativeLibrary.memoryStats();
            assertEquals(before.liveBuffers() + 2, during.liveBuffers());
            assertEquals(before.deviceBytes() + 4000, during.deviceBytes());
        }
        assertEquals(before, NativeLibrary.memoryStats());
    }
}
