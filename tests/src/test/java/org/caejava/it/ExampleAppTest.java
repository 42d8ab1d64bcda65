package org.caejava.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's "Using it from Java", proven: the modules are installed (as {@code ./cae install}
 * does, reusing the native build) into a local repository that holds no org.caejava artifact
 * before, with their sources and Javadoc jars and libcae inside the API jar; then
 * {@code tests/example-app}, a project with its own POM that knows this repository only by its
 * Maven coordinates, builds against them and runs on the module path: it trains a few steps on
 * its own off-heap images and encodes some.
 */
class ExampleAppTest {

    static final Path ROOT = CliEndToEndTest.ROOT;
    static final String VERSION = "0.1.0-SNAPSHOT";

    @TempDir
    Path dir;

    static String run(Path workDir, Path log, List<String> cmd) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(workDir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process p = pb.start();
        assertTrue(p.waitFor(10, TimeUnit.MINUTES), String.join(" ", cmd) + " did not finish");
        String out = Files.readString(log);
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + ":\n" + out);
        return out;
    }

    @Test
    void theExampleApplicationBuildsAndRunsAgainstTheInstalledCoordinates() throws Exception {
        // A local repository with everything the build already downloaded, but no org.caejava artifact.
        Path userRepo = Path.of(System.getProperty("user.home"), ".m2", "repository");
        Path repo = dir.resolve("repository");
        run(dir, dir.resolve("copy.log"), List.of("cp", "-a", userRepo.toString(), repo.toString()));
        run(dir, dir.resolve("rm.log"), List.of("rm", "-rf", repo.resolve("org/caejava").toString()));
        String local = "-Dmaven.repo.local=" + repo;

        run(ROOT, dir.resolve("install.log"), List.of("mvn", "-q", "-B", "install", "-DskipTests",
                "-Dcae.native.skip=true", "-pl", "jextract,java-api,cae-java", "-am", local));
        Path installed = repo.resolve("org/caejava");
        for (String artifact : List.of("cae-bindings", "cae-java-api", "cae-java")) {
            Path d = installed.resolve(artifact).resolve(VERSION);
            for (String kind : List.of("", "-sources")) {
                assertTrue(Files.isRegularFile(d.resolve(artifact + "-" + VERSION + kind + ".jar")), d + kind);
            }
        }
        for (String artifact : List.of("cae-java-api", "cae-java")) {
            Path javadoc = installed.resolve(artifact).resolve(VERSION).resolve(artifact + "-" + VERSION + "-javadoc.jar");
            assertTrue(Files.isRegularFile(javadoc), javadoc.toString());
        }
        try (ZipFile api = new ZipFile(installed.resolve("cae-java-api/" + VERSION + "/cae-java-api-" + VERSION + ".jar")
                .toFile())) {
            assertTrue(api.getEntry("org/caejava/api/native/linux-x86_64/libcae.so") != null, "libcae in the API jar");
        }

        Path app = dir.resolve("example-app");
        copyTree(ROOT.resolve("tests/example-app"), app);
        String out = run(app, dir.resolve("app.log"), List.of("mvn", "-q", "-B", local, "package", "exec:exec"));
        assertTrue(out.contains("example: cpu:") || out.contains("example: cuda"), out);
        assertTrue(out.contains("trained 8 steps"), out);
        assertTrue(out.contains("encoded 8 images into cls [8, 64] and mean [8, 64] features"), out);
        assertTrue(out.contains("the library ran on the module path, as module org.caejava"), out);
        assertTrue(!out.contains("restricted method"), "native access is enabled for the modules that need it: " + out);
    }

    static void copyTree(Path from, Path to) throws IOException {
        List<Path> all = new ArrayList<>();
        try (var s = Files.walk(from)) {
            s.filter(p -> !from.relativize(p).startsWith("target")).forEach(all::add);
        }
        for (Path p : all) {
            Path dst = to.resolve(from.relativize(p).toString());
            if (Files.isDirectory(p)) {
                Files.createDirectories(dst);
            } else {
                Files.copy(p, dst);
            }
        }
    }
}
