package org.caejava.check;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.junit.jupiter.api.Test;

/**
 * The comparison and the decision of the CUDA self-check, with figures made up for the purpose,
 * and the whole comparison run between two CPU contexts.
 */
class CudaSelfCheckTest {

    static final String DEVICE = "CUDA device 0 (Test GPU)";

    static SelfCheckResult agreeing() {
        return SelfCheckResult.of(DEVICE, List.of(Figure.scalar("fp32 loss", 5.0000001, 5.0, 1e-4),
                Figure.scalar("bf16 loss", 5.001, 5.0, 2e-3)), 0.4);
    }

    /** The bf16 loss 1.4% off and one gradient reversed. */
    static SelfCheckResult disagreeing() {
        return SelfCheckResult.of(DEVICE, List.of(Figure.scalar("fp32 loss", 5.0000001, 5.0, 1e-4),
                Figure.scalar("bf16 loss", 7.1, 7.0, 2e-3),
                Figure.vector("bf16 gradient of encoder.blocks.0.attn.qkv.weight", new float[] {-1, -2},
                        new float[] {1, 2}, 3e-2)), 0.4);
    }

    @Test
    void figuresMeasureRelativeDifferences() {
        Figure loss = Figure.scalar("bf16 loss", 7.1, 7.0, 2e-3);
        assertEquals(0.1 / 7.0, loss.error(), 1e-12);
        assertFalse(loss.passed());
        assertEquals("bf16 loss 7.100000 vs 7.000000 on the CPU (relative 1.4e-02 > 2e-03)", loss.toString());
        assertTrue(Figure.scalar("zero", 0, 0, 0).passed());
        assertFalse(Figure.scalar("one side zero", 1e-30, 0, 1e9).passed());
        assertFalse(Figure.scalar("NaN on the device", Double.NaN, 1, 1e9).passed());

        Figure g = Figure.vector("gradient", new float[] {3, 4.01f}, new float[] {3, 4}, 1e-2);
        assertEquals(5.0, g.cpu(), 1e-12);
        assertEquals(0.01 / 5, g.error(), 1e-6);
        assertTrue(g.passed());
        assertEquals(2.0, Figure.vector("reversed", new float[] {-3, -4}, new float[] {3, 4}, 1).error(), 1e-12);
        // A gradient that is zero but for rounding is measured against the floor, not its own noise.
        Figure noise = Figure.vector("key bias", new float[] {2e-8f}, new float[] {1e-8f}, 1e-2, 1e-3);
        assertEquals(1e-6, noise.error(), 1e-9);
        assertTrue(noise.passed());
        assertFalse(Figure.vector("key bias", new float[] {2e-8f}, new float[] {1e-8f}, 1e-3).passed());
    }

    @Test
    void anAgreeingDeviceIsUsedWhetherAskedForOrChosen() {
        SelfCheckResult r = agreeing();
        assertTrue(r.passed());
        assertEquals(CudaSelfCheck.Decision.USE_DEVICE, CudaSelfCheck.decide(Backend.AUTO, r));
        assertEquals(CudaSelfCheck.Decision.USE_DEVICE, CudaSelfCheck.decide(Backend.CUDA, r));
        assertTrue(r.summary().startsWith(DEVICE + " agrees with the CPU; closest: bf16 loss 5.001000 vs 5.000000"),
                r.summary());
        assertTrue(r.table().contains("  passed"), r.table());
    }

    @Test
    void aDisagreeingDeviceSendsAutoToTheCpuWithTheFiguresInTheWarning() {
        SelfCheckResult r = disagreeing();
        assertFalse(r.passed());
        assertEquals(2, r.mismatches().size());
        assertEquals(CudaSelfCheck.Decision.USE_CPU, CudaSelfCheck.decide(Backend.AUTO, r));
        String warning = CudaSelfCheck.fallbackWarning(r);
        assertEquals(DEVICE + " disagrees with the CPU on a tiny model: bf16 loss 7.100000 vs 7.000000 on the CPU "
                + "(relative 1.4e-02 > 2e-03); bf16 gradient of encoder.blocks.0.attn.qkv.weight 2.236068 vs 2.236068 "
                + "on the CPU (relative 2.0e+00 > 3e-02); computing on the CPU instead (ask for backend cuda to fail "
                + "instead, CAE_SELF_CHECK=off to use the device anyway)", warning);
        assertFalse(warning.contains("\n"));
    }

    @Test
    void aDisagreeingDeviceAskedForFailsWithTheFigures() {
        SelfCheckResult r = disagreeing();
        CudaMismatchException e = assertThrows(CudaMismatchException.class,
                () -> CudaSelfCheck.decide(Backend.CUDA, r));
        assertSame(r, e.result());
        assertTrue(e.getMessage().startsWith(DEVICE + " disagrees with the CPU on a tiny model: bf16 loss 7.100000 "
                + "vs 7.000000 on the CPU (relative 1.4e-02 > 2e-03); "), e.getMessage());
        assertTrue(e.getMessage().endsWith("Its results cannot be trusted: compute on the CPU (backend cpu), or set "
                + "CAE_SELF_CHECK=off to use the device anyway"), e.getMessage());
        String table = r.table();
        assertTrue(table.contains("MISMATCH"), table);
        assertTrue(table.contains("FAILED: 2 of 3 figures out of tolerance"), table);
    }

    @Test
    void aCheckStoppedByAnErrorFailsWithIt() {
        SelfCheckResult r = SelfCheckResult.failed(DEVICE, List.of(Figure.scalar("fp32 loss", 5, 5, 1e-4)),
                "computing bf16 gradients: CUDA error 700 (an illegal memory access was encountered)", 0.2);
        assertFalse(r.passed());
        assertEquals(CudaSelfCheck.Decision.USE_CPU, CudaSelfCheck.decide(Backend.AUTO, r));
        CudaMismatchException e = assertThrows(CudaMismatchException.class,
                () -> CudaSelfCheck.decide(Backend.CUDA, r));
        assertTrue(e.getMessage().contains("CUDA error 700"), e.getMessage());
        assertTrue(r.table().contains("error: computing bf16 gradients"), r.table());
    }

    @Test
    void aSkippedCheckPasses() {
        SelfCheckResult r = SelfCheckResult.skipped(DEVICE, "CAE_SELF_CHECK=off");
        assertTrue(r.passed());
        assertEquals(CudaSelfCheck.Decision.USE_DEVICE, CudaSelfCheck.decide(Backend.CUDA, r));
        assertEquals(DEVICE + ": self-check skipped (CAE_SELF_CHECK=off)", r.summary());
    }

    @Test
    void cpuContextsAreNotChecked() {
        try (Context cpu = Context.builder().backend(Backend.CPU).threads(1).build()) {
            List<String> warnings = new ArrayList<>();
            assertSame(cpu, CudaSelfCheck.verified(cpu, 1, warnings::add));
            assertTrue(warnings.isEmpty());
            assertTrue(cpu.isOpen());
            assertThrows(IllegalArgumentException.class, () -> CudaSelfCheck.run(cpu));
        }
    }

    @Test
    void twoCpuContextsAgreeInEveryFigure() {
        try (Context one = Context.builder().backend(Backend.CPU).threads(1).build();
                Context two = Context.builder().backend(Backend.CPU).threads(2).build()) {
            SelfCheckResult r = CudaSelfCheck.compare(one, two, "cpu, 1 thread", false, 1);
            assertTrue(r.passed(), r.table());
            assertEquals(12, r.figures().size(), r.table());
            assertEquals(List.of("fp32 loss", "fp32 main loss", "fp32 alignment loss", "fp32 gradient norm"),
                    r.figures().subList(0, 4).stream().map(Figure::name).toList());
            assertTrue(r.figures().get(4).name().startsWith("fp32 gradient of "), r.table());
            assertEquals("fp32 loss after an AdamW step", r.figures().get(10).name());
            assertEquals("fp32 encoder features", r.figures().get(11).name());
            for (Figure f : r.figures()) {
                assertTrue(f.cpu() > 0 && f.cuda() > 0, f.toString());
            }
            // The step lowers the loss: the comparison after it sees updated weights.
            assertTrue(r.figures().get(10).cpu() < r.figures().get(0).cpu(), r.table());
            // Tolerance factor 0: any difference is a mismatch, equal figures still pass.
            SelfCheckResult strict = CudaSelfCheck.compare(one, two, "cpu, 1 thread", false, 0);
            for (Figure f : strict.figures()) {
                assertEquals(f.error() == 0, f.passed(), f.toString());
            }
        }
    }

    @Test
    void aBadToleranceFactorIsNamed() {
        System.setProperty("cae.selfCheck.tolerance", "lots");
        try {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, CudaSelfCheck::toleranceScale);
            assertTrue(e.getMessage().contains("\"lots\""), e.getMessage());
            System.setProperty("cae.selfCheck.tolerance", "2.5");
            assertEquals(2.5, CudaSelfCheck.toleranceScale());
        } finally {
            System.clearProperty("cae.selfCheck.tolerance");
        }
        System.setProperty("cae.selfCheck", "off");
        try {
            assertFalse(CudaSelfCheck.enabled());
        } finally {
            System.clearProperty("cae.selfCheck");
        }
    }
}
