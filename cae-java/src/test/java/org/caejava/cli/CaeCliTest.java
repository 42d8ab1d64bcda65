package org.caejava.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class CaeCliTest {

    private record Result(int exit, String out, String err) {}

    private static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int exit = CaeCli.execute(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Result(exit, out.toString(), err.toString());
    }

    @Test
    void versionNamesTheProject() {
        Result r = run("--version");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith("cae-java "), r.out());
    }

    @Test
    void completionScriptKnowsTheCommandsAndTheirOptions() {
        Result r = run("generate-completion");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("complete -F _complete_cae"), "a bash completion function for cae");
        for (String word : new String[] {"pretrain", "probe", "export", "--seeds", "--crop-scale", "--checkpoint"}) {
            assertTrue(r.out().contains(word), word);
        }
    }
}
