package org.caejava.api;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.invoke.MethodHandle;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import org.caejava.bindings.CaeNative;
import org.caejava.bindings.cae_backend_info;
import org.caejava.bindings.cae_device_info;
import org.caejava.bindings.cae_memory_stats;

/**
 * Finds and loads libcae, and answers library-wide questions (build, backends, devices,
 * memory held).
 *
 * <p>The library is taken from, in order: the system property {@code cae.library.path}, the
 * environment variable {@code CAE_LIBRARY_PATH}, or the copy packed into this jar, extracted
 * once into a cache folder keyed by its hash ({@code cae.cache.dir}, else
 * {@code $XDG_CACHE_HOME/cae-java}, else {@code ~/.cache/cae-java}). It is loaded with
 * {@link System#load}, so the generated bindings find its symbols through the loader lookup.
 * A library whose ABI version differs from the bindings' is refused.
 *
 * <p>Static methods only, safe to call from any thread: loading happens once, under a lock. The
 * loaded library stays for the life of the process; the extracted copy stays in the cache folder.
 */
public final class NativeLibrary {

    private static volatile Path loadedPath;

    private NativeLibrary() {}

    /**
     * Loads libcae if not yet loaded and returns where it was loaded from.
     *
     * @return the path of the loaded library file
     * @throws IllegalStateException when no library is found or its ABI version differs from the
     *     bindings'
     * @throws java.io.UncheckedIOException when the packed library cannot be extracted
     */
    public static Path load() {
        Path p = loadedPath;
        if (p != null) {
            return p;
        }
        synchronized (NativeLibrary.class) {
            if (loadedPath == null) {
                Path path = locate();
                preferPassiveOpenMpWaits();
                System.load(path.toString());
                int libraryAbi = CaeNative.cae_abi_version();
                int bindingsAbi = CaeNative.CAE_ABI_VERSION();
                if (libraryAbi != bindingsAbi) {
                    throw new IllegalStateException("libcae at " + path + " has ABI version " + libraryAbi
                            + " but these Java bindings were generated for ABI version " + bindingsAbi
                            + ": use the libcae built from the same sources as this jar");
                }
                loadedPath = path;
            }
            return loadedPath;
        }
    }

    /**
     * The JSON description of the loaded library's build (version, BLAS, CUDA, compiler).
     *
     * @return a JSON object, as text
     */
    public static String buildInfo() {
        load();
        return CaeNative.cae_build_info().getString(0);
    }

    /**
     * Whether {@code backend} is compiled in and usable here, with the reason.
     *
     * @param backend the backend to ask about
     * @return what libcae answers
     * @throws CaeException when the query fails
     */
    public static BackendInfo backendInfo(Backend backend) {
        load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment info = cae_backend_info.allocate(arena);
            Native.check(CaeNative.cae_backend_query(backend.code(), info), "querying backend " + backend);
            return new BackendInfo(backend, cae_backend_info.compiled(info) != 0, cae_backend_info.usable(info) != 0,
                    cae_backend_info.reason(info).getString(0));
        }
    }

    /**
     * The CUDA devices libcae can use; empty without CUDA, driver or device.
     *
     * @return the devices in ordinal order, an unmodifiable list
     * @throws CaeException when a device query fails
     */
    public static List<DeviceInfo> devices() {
        load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(ValueLayout.JAVA_INT);
            Native.check(CaeNative.cae_device_count(count), "counting CUDA devices");
            int n = count.get(ValueLayout.JAVA_INT, 0);
            List<DeviceInfo> devices = new ArrayList<>(n);
            MemorySegment info = cae_device_info.allocate(arena);
            for (int i = 0; i < n; i++) {
                Native.check(CaeNative.cae_device_query(i, info), "querying CUDA device " + i);
                devices.add(new DeviceInfo(i, cae_device_info.name(info).getString(0),
                        cae_device_info.total_memory(info), cae_device_info.free_memory(info),
                        cae_device_info.compute_major(info), cae_device_info.compute_minor(info),
                        cae_device_info.multiprocessors(info)));
            }
            return List.copyOf(devices);
        }
    }

    /**
     * What libcae holds right now, process-wide.
     *
     * @return a snapshot of the counts
     * @throws CaeException when the query fails
     */
    public static MemoryStats memoryStats() {
        load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = cae_memory_stats.allocate(arena);
            Native.check(CaeNative.cae_memory_query(s), "querying native memory");
            return new MemoryStats(cae_memory_stats.live_contexts(s), cae_memory_stats.live_buffers(s),
                    cae_memory_stats.host_bytes(s), cae_memory_stats.device_bytes(s));
        }
    }

    /**
     * libcae's CPU kernels run on OpenMP. GNU OpenMP's default is to spin while waiting for work,
     * which is fastest on an idle machine but collapses when other threads want the cores (the
     * batch loader's workers, other processes): a training step measured 0.6 s passive against
     * 2.9-4.6 s spinning on a loaded 2-core machine. Unless the user chose a policy, ask for
     * passive waits before libgomp reads its environment (when libcae, and with it libgomp, is
     * loaded). This calls the C library's setenv, not libcae.
     */
    private static void preferPassiveOpenMpWaits() {
        if (System.getenv("OMP_WAIT_POLICY") != null || System.getenv("GOMP_SPINCOUNT") != null) {
            return;
        }
        Linker linker = Linker.nativeLinker();
        var setenv = linker.defaultLookup().find("setenv");
        if (setenv.isEmpty()) {
            return;
        }
        MethodHandle h = linker.downcallHandle(setenv.get(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        try (Arena arena = Arena.ofConfined()) {
            int rc = (int) h.invokeExact(arena.allocateFrom("OMP_WAIT_POLICY"), arena.allocateFrom("PASSIVE"), 0);
            if (rc != 0) {
                System.getLogger("org.caejava").log(System.Logger.Level.DEBUG, "setenv(OMP_WAIT_POLICY) failed");
            }
        } catch (Throwable t) {
            System.getLogger("org.caejava").log(System.Logger.Level.DEBUG, "setenv(OMP_WAIT_POLICY) failed", t);
        }
    }

    // ---------------------------------------------------------------- locating the library

    static String platform() {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        String osName = os.contains("linux") ? "linux" : os.contains("mac") ? "macos" : os.replace(' ', '_');
        String archName = arch.equals("amd64") || arch.equals("x86_64") ? "x86_64" : arch;
        return osName + "-" + archName;
    }

    private static Path locate() {
        String explicit = System.getProperty("cae.library.path");
        String source = "system property cae.library.path";
        if (explicit == null || explicit.isBlank()) {
            explicit = System.getenv("CAE_LIBRARY_PATH");
            source = "environment variable CAE_LIBRARY_PATH";
        }
        if (explicit != null && !explicit.isBlank()) {
            Path p = Path.of(explicit).toAbsolutePath();
            if (!Files.isRegularFile(p)) {
                throw new IllegalStateException(source + " points to " + p + ", which is not a file");
            }
            return p;
        }
        return extractFromJar();
    }

    private static Path extractFromJar() {
        String resource = "native/" + platform() + "/" + System.mapLibraryName("cae");
        byte[] bytes;
        try (InputStream in = NativeLibrary.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("libcae for " + platform() + " is not packed in this jar (resource "
                        + NativeLibrary.class.getPackageName().replace('.', '/') + "/" + resource
                        + "): build the project on this platform (./cae test), or point -Dcae.library.path to a libcae");
            }
            bytes = in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("reading the packed libcae", e);
        }
        String hash = sha256(bytes).substring(0, 16);
        Path dir = cacheRoot().resolve("native").resolve(hash);
        Path target = dir.resolve(System.mapLibraryName("cae"));
        try {
            if (Files.isRegularFile(target) && Files.size(target) == bytes.length) {
                return target;
            }
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, "libcae", ".tmp");
            Files.write(tmp, bytes);
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("extracting libcae to " + target
                    + " (set -Dcae.cache.dir to a writable folder)", e);
        }
    }

    private static Path cacheRoot() {
        String dir = System.getProperty("cae.cache.dir");
        if (dir != null && !dir.isBlank()) {
            return Path.of(dir);
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) {
            return Path.of(xdg, "cae-java");
        }
        return Path.of(System.getProperty("user.home"), ".cache", "cae-java");
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
