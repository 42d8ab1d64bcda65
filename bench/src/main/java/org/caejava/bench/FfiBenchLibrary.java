package org.caejava.bench;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * libffibench, the benchmark's own native library: {@code int32_t ffib_noop(int32_t)} and
 * {@code float ffib_sum(const float*, int64_t)}, plus the JNI stubs of {@link JniStubs}.
 *
 * <p>Loaded once, from {@code -Dffib.library.path} (the tests point it at
 * {@code target/native}), else from the copy packed in the jar, extracted to a temporary file.
 * {@link System#load} binds the JNI stubs; the downcall handles and the raw function addresses
 * (for LWJGL) come from a lookup over the same file. Handles are static finals so the JIT
 * treats them as constants, as jextract's generated code does.
 */
@SuppressWarnings("restricted") // loading and linking native code is this class's job
final class FfiBenchLibrary {

    static final Path PATH = load();

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LOOKUP = SymbolLookup.libraryLookup(PATH, Arena.global());

    static final FunctionDescriptor NOOP_DESC = FunctionDescriptor.of(JAVA_INT, JAVA_INT);
    static final FunctionDescriptor SUM_DESC = FunctionDescriptor.of(JAVA_FLOAT, ADDRESS, JAVA_LONG);

    /** Raw addresses of the C functions, for LWJGL's {@code JNI.invoke*}. */
    static final long NOOP_ADDRESS = LOOKUP.findOrThrow("ffib_noop").address();
    static final long SUM_ADDRESS = LOOKUP.findOrThrow("ffib_sum").address();

    static final MethodHandle NOOP = LINKER.downcallHandle(LOOKUP.findOrThrow("ffib_noop"), NOOP_DESC);
    static final MethodHandle NOOP_CRITICAL =
            LINKER.downcallHandle(LOOKUP.findOrThrow("ffib_noop"), NOOP_DESC, Linker.Option.critical(false));
    static final MethodHandle SUM = LINKER.downcallHandle(LOOKUP.findOrThrow("ffib_sum"), SUM_DESC);
    static final MethodHandle SUM_CRITICAL =
            LINKER.downcallHandle(LOOKUP.findOrThrow("ffib_sum"), SUM_DESC, Linker.Option.critical(false));
    /** critical(true): may be passed heap segments ({@code MemorySegment.ofArray}). */
    static final MethodHandle SUM_CRITICAL_HEAP =
            LINKER.downcallHandle(LOOKUP.findOrThrow("ffib_sum"), SUM_DESC, Linker.Option.critical(true));

    private FfiBenchLibrary() {}

    private static Path load() {
        Path path = locate();
        System.load(path.toString());
        return path;
    }

    private static Path locate() {
        String explicit = System.getProperty("ffib.library.path");
        if (explicit != null && !explicit.isBlank()) {
            Path p = Path.of(explicit).toAbsolutePath();
            if (!Files.isRegularFile(p)) {
                throw new IllegalStateException("-Dffib.library.path points to " + p + ", which is not a file");
            }
            return p;
        }
        String resource = "native/" + System.mapLibraryName("ffibench");
        try (InputStream in = FfiBenchLibrary.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("libffibench is not packed in this jar (resource org/caejava/bench/"
                        + resource + "): build bench/ with Maven, or set -Dffib.library.path");
            }
            Path tmp = Files.createTempFile("libffibench", ".so");
            tmp.toFile().deleteOnExit();
            Files.write(tmp, in.readAllBytes());
            return tmp;
        } catch (IOException e) {
            throw new UncheckedIOException("extracting libffibench to a temporary file", e);
        }
    }
}
