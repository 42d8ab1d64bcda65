package org.caejava.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The communicator of a process alone; several ranks are tested under mpirun (tests module, native tests). */
class CommunicatorTest {

    @Test
    void aProcessAloneIsRankZeroOfOne() {
        // Test JVMs are not started by an MPI launcher: AUTO gives the single communicator.
        try (Communicator c = Communicator.fromEnvironment()) {
            assertEquals(Communicator.Kind.SINGLE, c.kind());
            assertEquals(0, c.rank());
            assertEquals(1, c.size());
            assertEquals(0, c.localRank());
            assertEquals(1, c.localSize());
            assertTrue(c.isRoot());
            assertEquals("single", c.library());
            float[] f = {1, 2};
            c.allReduceSum(f);
            assertArrayEquals(new float[] {1, 2}, f);
            double[] d = {3};
            c.allReduceSum(d);
            assertEquals(3, d[0]);
            assertEquals(42, c.broadcast(42, 0));
            c.barrier();
            c.abort(1);  // one rank: nothing to end
            assertEquals("a single process (single)", c.toString());
        }
    }

    @Test
    void errorsNameWhatWasWrong() {
        Communicator c = Communicator.single();
        CaeException e = assertThrows(CaeException.class, () -> c.broadcast(new byte[4], 1));
        assertEquals(Status.INVALID_ARGUMENT, e.status());
        assertTrue(e.getMessage().contains("root is 1"), e.getMessage());
        c.close();
        assertFalse(c.isOpen());
        IllegalStateException closed = assertThrows(IllegalStateException.class, c::barrier);
        assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
    }

    @Test
    void aModelWithASingleCommunicatorTrainsAsBefore() {
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
                Communicator c = Communicator.single()) {
            ModelConfig cfg = ModelConfig.defaults().toBuilder().imgSize(8).patchSize(4).inChans(1).embedDim(16)
                    .depth(1).numHeads(2).regressorDepth(1).decoderDepth(1).decoderNumHeads(2).decoderEmbedDim(16)
                    .build();
            try (NativeModel a = NativeModel.create(ctx, cfg, 3); NativeModel b = NativeModel.create(ctx, cfg, 3);
                    java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                assertEquals(new NativeModel.Reduction(1, false, "none: one process"), a.reduction());
                b.setCommunicator(c);
                assertEquals(c, b.communicator());
                assertEquals(new NativeModel.Reduction(1, false, "none: one process"), b.reduction());
                Tensor images = Tensor.allocate(arena, DType.F32, 2, 1, 8, 8);
                for (int i = 0; i < 128; i++) {
                    images.segment().setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i, (i % 13) / 13f);
                }
                Tensor mask = Tensor.allocate(arena, DType.U8, 2, 4);
                mask.segment().set(java.lang.foreign.ValueLayout.JAVA_BYTE, 0, (byte) 1);
                mask.segment().set(java.lang.foreign.ValueLayout.JAVA_BYTE, 5, (byte) 1);
                StepOptions o = StepOptions.defaults().withLr(1e-3);
                StepResult ra = a.trainStep(images, mask, o);
                StepResult rb = b.trainStep(images, mask, o, 0, 2);
                assertEquals(ra.loss(), rb.loss());
                assertEquals(0, rb.reduceMs());
                CaeException e = assertThrows(CaeException.class, () -> b.trainStep(images, mask, o, 1, 2));
                assertTrue(e.getMessage().contains("passes the end of options->global_batch 2"), e.getMessage());
            }
        }
    }
}
