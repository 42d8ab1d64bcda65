package org.caejava.data;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** The image fixtures of src/test/resources/org/caejava/data/images (see the README there). */
final class Fixtures {

    private Fixtures() {}

    static Path images() {
        try {
            return Path.of(Fixtures.class.getResource("/org/caejava/data/images").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Copies fixture folder {@code name} (e.g. "photos") into {@code dst}, which it creates. */
    static Path copy(String name, Path dst) {
        Path src = images().resolve(name);
        try (Stream<Path> s = Files.walk(src)) {
            for (Path p : s.toList()) {
                Path t = dst.resolve(src.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(t);
                } else {
                    Files.copy(p, t);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return dst;
    }
}
