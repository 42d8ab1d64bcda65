package org.caejava.io;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;

/** The fuzz harness itself: each kind of defect is caught, and counted apart from clean outcomes. */
class FuzzCampaignTest {

    static volatile byte[] sink;

    @Test
    void defectsAreReportedAndCleanOutcomesCounted() {
        Path file = Path.of("input.bin");
        try (FuzzCampaign c = new FuzzCampaign("self-test", 1, List.of(IOException.class), 300, 8L << 20,
                1L << 40)) {
            c.attempt("reads", file, null, () -> {});
            c.attempt("refuses", file, null, () -> {
                throw new IOException(file + ": bad");
            });
            c.attempt("hangs", file, null, () -> Thread.sleep(10_000));
            c.attempt("wrong kind", file, null, () -> {
                throw new ArithmeticException("long overflow");
            });
            c.attempt("anonymous", file, null, () -> {
                throw new IOException("bad");
            });
            c.attempt("two lines", file, null, () -> {
                throw new IOException(file + ":\nbad");
            });
            c.attempt("allocates", file, null, () -> sink = new byte[16 << 20]);
            c.attempt("reads after a hang", file, null, () -> {});
            String m = assertThrows(AssertionFailedError.class, c::finish).getMessage();
            assertTrue(m.startsWith("fuzz self-test: 8 tries (seed 1) in "), m);
            for (String expected : List.of("2 read, 1 refused {IOException=1}, 5 defects",
                    "try 3 (hangs): still running after 300 ms",
                    "try 4 (wrong kind): threw java.lang.ArithmeticException",
                    "try 5 (anonymous): IOException with a message that does not name the file",
                    "try 6 (two lines): IOException with a message of several lines",
                    "try 7 (allocates): allocated 16 MB of heap")) {
                assertTrue(m.contains(expected), expected + " in " + m);
            }
        }
    }
}
