package org.caejava.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.api.Location;
import org.caejava.api.NativeLibrary;
import org.caejava.api.Tensor;
import org.junit.jupiter.api.Test;

/** A user's view: the java-api jar carries libcae, extracts it once and loads it from there. */
class PackagedLibraryTest {

    @Test
    void libcaeIsExtractedFromTheJarIntoTheCache() {
        Path cache = Path.of(System.getProperty("cae.cache.dir")).toAbsolutePath();
        Path lib = NativeLibrary.load();
        assertTrue(lib.startsWith(cache), "loaded " + lib + ", expected a copy extracted under " + cache);
        assertTrue(java.net.URI.create(NativeLibrary.class.getProtectionDomain().getCodeSource().getLocation()
                .toString()).getPath().endsWith(".jar"), "java-api is used as a jar");
    }

    @Test
    void aTensorRoundTripsThroughTheDefaultContext() {
        try (Context ctx = Context.builder().backend(Backend.AUTO).build(); Arena arena = Arena.ofConfined()) {
            float[] data = {1, 2, 3, 4, 5, 6};
            Tensor dev = Tensor.of(arena, data, 2, 3).to(ctx, Location.DEVICE, arena);
            assertEquals(6, dev.toFloatArray().length);
            assertEquals(6f, dev.toFloatArray()[5]);
        }
    }
}
