package org.caejava;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.io.SafetensorsWriter;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A failed checkpoint write (a full disk) reports the error and leaves the previous checkpoint whole. */
class CheckpointWriteFailureTest {

    static Context ctx;

    @TempDir
    Path dir;

    @BeforeAll
    static void open() {
        ctx = Context.builder().backend(Backend.CPU).threads(1).build();
    }

    @AfterAll
    static void close() {
        ctx.close();
    }

    private static long temporaries(Path d) throws IOException {
        try (Stream<Path> s = Files.list(d)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".tmp")).count();
        }
    }

    @Test
    void aWriteFailingHalfwayKeepsThePreviousFile() throws Exception {
        Path file = dir.resolve("ckpt.safetensors");
        float[] before;
        try (CaeModel m = CaeModel.create(ctx, CaeModelTest.TINY, 1)) {
            m.save(file);
            before = m.parameter("decoder.head.weight");
        }
        byte[] old = Files.readAllBytes(file);
        SafetensorsWriter w = new SafetensorsWriter().addFloats("a", new long[] {4}, new float[4])
                .add("b", "F32", new long[] {1000}, dst -> {
                    throw new IOException("No space left on device");
                });
        IOException e = assertThrows(IOException.class, () -> w.write(file));
        assertEquals("No space left on device", e.getMessage());
        assertArrayEquals(old, Files.readAllBytes(file), "the previous checkpoint is untouched");
        assertEquals(0, temporaries(dir), "the partial temporary file is removed");
        try (CaeModel m = CaeModel.load(ctx, file)) {
            assertArrayEquals(before, m.parameter("decoder.head.weight"));
        }
    }

    @Test
    void aFullFileSystemKeepsThePreviousCheckpoint() throws Exception {
        Path mount = dir.resolve("small-disk");
        Files.createDirectories(mount);
        Process p = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mount.toString())
                .redirectErrorStream(true).start();
        boolean mounted = p.waitFor(20, TimeUnit.SECONDS) && p.exitValue() == 0;
        Assumptions.assumeTrue(mounted, "cannot mount a small tmpfs here (needs root): "
                + new String(p.getInputStream().readAllBytes()).trim());
        try {
            Path file = mount.resolve("ckpt.safetensors");
            float[] saved;
            try (CaeModel m = CaeModel.create(ctx, CaeModelTest.TINY, 1)) {
                m.save(file);
                saved = m.parameter("encoder.blocks.0.attn.qkv.weight");
                long size = Files.size(file);
                // Leave less room than one more checkpoint needs.
                Files.write(mount.resolve("filler"), new byte[(int) Math.max(0,
                        Files.getFileStore(mount).getUsableSpace() - size / 2)]);
                m.setParameter("encoder.blocks.0.attn.qkv.weight", new float[saved.length]);
                IOException e = assertThrows(IOException.class, () -> m.save(file));
                assertTrue(e.getMessage().toLowerCase().contains("space"), e.getMessage());
            }
            assertEquals(0, temporaries(mount), "the partial temporary file is removed");
            try (CaeModel m = CaeModel.load(ctx, file)) {
                assertArrayEquals(saved, m.parameter("encoder.blocks.0.attn.qkv.weight"),
                        "the previous checkpoint is whole");
            }
        } finally {
            new ProcessBuilder("umount", mount.toString()).start().waitFor(20, TimeUnit.SECONDS);
        }
    }
}
