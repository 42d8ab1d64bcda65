package org.caejava.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ProbeSpreadTest {

    private static ProbeScores s(double knn, double linear) {
        return new ProbeScores(128, knn, linear, linear + 0.01, 100, true, 1e-5, 0.4);
    }

    private static ProbeResult result(long seed, double preKnn, double preLin, double bothLin) {
        return new ProbeResult(s(preKnn + 0.01, bothLin), s(preKnn - 0.01, preLin - 0.01), s(preKnn, preLin),
                s(0.67, 0.79), s(0.69, 0.78), s(0.60, 0.77), s(0.813, 0.8255), ProbeResult.FEATURES, "1x28x28", seed,
                20, 1e-4, 1e-4, 3000, 10000, 2000, 10, 800, 50.0);
    }

    @Test
    void meanStandardDeviationAndRangeOverSeeds() {
        ProbeSpread p = ProbeSpread.of(List.of(result(0, 0.70, 0.80, 0.82), result(1, 0.72, 0.81, 0.83),
                result(2, 0.74, 0.85, 0.87)));
        ProbeSpread.Row pre = p.row("pretrained", "mean");
        assertEquals(0.72, pre.knn().mean(), 1e-12);
        assertEquals(0.02, pre.knn().sd(), 1e-12);  // sample standard deviation of 0.70, 0.72, 0.74
        assertEquals(0.70, pre.knn().min(), 0);
        assertEquals(0.74, pre.knn().max(), 0);
        assertEquals(0.82, pre.linear().mean(), 1e-12);
        assertEquals(Math.sqrt((0.0004 + 0.0001 + 0.0009) / 2), pre.linear().sd(), 1e-12);
        assertArrayEquals(new double[] {0.82, 0.83, 0.87}, p.row("pretrained", "cls_mean").linear().values(), 0);
        assertEquals(0, p.row("raw_pixels", "pixels").knn().sd(), 1e-12);
        assertEquals(7, p.rows().size());
        assertThrows(IllegalArgumentException.class, () -> p.row("pretrained", "nothing"));
    }

    @Test
    void oneRunHasNoSpreadAndNoRunsIsAnError() {
        ProbeSpread p = ProbeSpread.of(List.of(result(0, 0.70, 0.80, 0.82)));
        assertEquals(0, p.row("pretrained", "mean").linear().sd(), 0);
        assertThrows(IllegalArgumentException.class, () -> ProbeSpread.of(List.of()));
    }

    @Test
    void tableAndJson(@TempDir Path dir) throws Exception {
        ProbeSpread p = ProbeSpread.of(List.of(result(0, 0.70, 0.80, 0.82), result(1, 0.72, 0.81, 0.83)));
        String table = p.toTable();
        assertTrue(table.contains("over 2 seeds"), table);
        assertTrue(table.contains("71.00 ± 1.41 [70.00, 72.00]"), table);  // pretrained, mean patch token k-NN
        assertTrue(table.contains("cls;mean"), table);
        Path f = dir.resolve(ProbeSpread.FILE);
        p.write(f);
        JsonNode j = new com.fasterxml.jackson.databind.ObjectMapper().readTree(Files.readString(f));
        assertEquals(2, j.get("runs").asInt());
        assertEquals(1, j.get("random_init_seeds").get(1).asLong());
        assertEquals(0.825, j.get("pretrained").get("linear").get("mean").asDouble(), 1e-12);
        assertEquals(0.805, j.get("pretrained").get("linear_mean").get("mean").asDouble(), 1e-12);
        assertEquals(0.8255, j.get("raw_pixels").get("linear").get("max").asDouble(), 0);
        assertTrue(j.get("random_init").has("knn_cls"));
    }
}
