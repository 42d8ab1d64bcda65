package org.caejava.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/** The committed bindings must come from the committed header. */
class BindingsUpToDateTest {

    private static final Path ROOT = Path.of(System.getProperty("cae.root", ".."));

    @Test
    void headerHashMatchesTheOneTheBindingsWereGeneratedFrom() throws IOException, NoSuchAlgorithmException {
        Path header = ROOT.resolve("native/include/cae/cae.h");
        String recorded = Files.readString(ROOT.resolve("jextract/cae.h.sha256")).trim().split("\\s+")[0];
        String actual = HexFormat.of().formatHex(
                MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(header)));
        assertEquals(recorded, actual,
                "native/include/cae/cae.h changed since the Java bindings were generated: "
                        + "run jextract/regenerate.sh and commit its output");
    }

    @Test
    void bindingsCarryTheHeadersAbiVersion() throws IOException {
        String header = Files.readString(ROOT.resolve("native/include/cae/cae.h"));
        var m = java.util.regex.Pattern.compile("#define CAE_ABI_VERSION (\\d+)").matcher(header);
        org.junit.jupiter.api.Assertions.assertTrue(m.find(), "CAE_ABI_VERSION not found in cae.h");
        assertEquals(Integer.parseInt(m.group(1)), CaeNative.CAE_ABI_VERSION());
    }
}
