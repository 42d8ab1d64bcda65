package org.caejava.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ContextTest {

    @Test
    void cpuContextReportsItsOptions() {
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(2).seed(42).build()) {
            assertEquals(Backend.CPU, ctx.backend());
            assertEquals(Backend.CPU, ctx.requestedBackend());
            assertEquals(2, ctx.threads());
            assertEquals(42, ctx.seed());
            assertEquals(0, ctx.deviceIndex());
            assertTrue(ctx.description().startsWith("cpu: 2 threads"), ctx.description());
            ctx.synchronize();
        }
    }

    @Test
    void measuresItsGemmRate() {
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build()) {
            double gflops = ctx.measureGemmGflops(128, 96, 64, 3);
            assertTrue(gflops > 0.01 && gflops < 1e5, gflops + " GFLOP/s");
            CaeException e = assertThrows(CaeException.class, () -> ctx.measureGemmGflops(0, 8, 8, 3));
            assertTrue(e.getMessage().contains("expected 1 to 16384"), e.getMessage());
        }
    }

    @Test
    void autoPicksTheCpuWhenCudaIsNotUsable() {
        if (NativeLibrary.backendInfo(Backend.CUDA).usable()) {
            return;
        }
        try (Context ctx = Context.create()) {
            assertEquals(Backend.CPU, ctx.backend());
            assertEquals(Backend.AUTO, ctx.requestedBackend());
            assertTrue(ctx.threads() >= 1);
        }
    }

    @Test
    void cudaWithoutADeviceFailsWithTheReason() {
        if (NativeLibrary.backendInfo(Backend.CUDA).usable()) {
            return;
        }
        CaeException e = assertThrows(CaeException.class, () -> Context.builder().backend(Backend.CUDA).build());
        assertEquals(Status.UNSUPPORTED, e.status());
        assertTrue(e.nativeMessage().contains("CUDA"), e.nativeMessage());
        assertTrue(e.javaContext().contains("creating a CUDA context"), e.javaContext());
    }

    @Test
    void badOptionsGiveAClearError() {
        CaeException e = assertThrows(CaeException.class,
                () -> Context.builder().backend(Backend.CPU).threads(-2).build());
        assertEquals(Status.INVALID_ARGUMENT, e.status());
        assertTrue(e.getMessage().contains("num_threads is -2"), e.getMessage());
        e = assertThrows(CaeException.class, () -> Context.builder().backend(Backend.CPU).device(3).build());
        assertTrue(e.getMessage().contains("device_index is 3"), e.getMessage());
    }

    @Test
    void closeIsIdempotentAndUseAfterCloseThrows() {
        MemoryStats before = NativeLibrary.memoryStats();
        Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
        assertEquals(before.liveContexts() + 1, NativeLibrary.memoryStats().liveContexts());
        ctx.close();
        ctx.close();
        assertFalse(ctx.isOpen());
        assertThrows(IllegalStateException.class, ctx::synchronize);
        assertThrows(IllegalStateException.class, ctx::handle);
        assertTrue(ctx.toString().contains("closed"));
        assertEquals(before.liveContexts(), NativeLibrary.memoryStats().liveContexts());
    }
}
