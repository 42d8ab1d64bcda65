package org.caejava.mask;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class MaskGeneratorTest {

    private static int count(byte[] m) {
        int c = 0;
        for (byte b : m) {
            c += b;
        }
        return c;
    }

    @Test
    void blockMasksHaveTheExactCountOnEveryGrid() {
        int[][] cases = {{14, 98}, {14, 75}, {7, 25}, {7, 1}, {7, 48}, {4, 8}, {2, 3}};
        for (int[] c : cases) {
            BlockMaskGenerator g = new BlockMaskGenerator(c[0], c[1]);
            for (int i = 0; i < 300; i++) {
                byte[] m = g.generate(1, 2, i);
                assertEquals(c[1], count(m), "grid " + c[0] + ", " + c[1] + " masked, sample " + i);
            }
        }
        assertEquals(16, new BlockMaskGenerator(14, 98).minBlock(), "16 for 14x14");
        assertEquals(4, new BlockMaskGenerator(7, 25).minBlock(), "scaled to 7x7");
    }

    @Test
    void masksAreDeterministicInSeedEpochAndIndex() {
        for (MaskGenerator g : new MaskGenerator[] {new BlockMaskGenerator(14, 98), new RandomMaskGenerator(49, 25)}) {
            assertArrayEquals(g.generate(5, 1, 7), g.generate(5, 1, 7));
            assertFalse(Arrays.equals(g.generate(5, 1, 7), g.generate(5, 1, 8)), "other index");
            assertFalse(Arrays.equals(g.generate(5, 1, 7), g.generate(5, 2, 7)), "other epoch");
            assertFalse(Arrays.equals(g.generate(5, 1, 7), g.generate(6, 1, 7)), "other seed");
        }
    }

    @Test
    void blockMasksAreBlockyRandomMasksAreNot() {
        // Masked patches of block masks have more masked 4-neighbours than random ones.
        double block = neighbourShare(new BlockMaskGenerator(14, 98));
        double random = neighbourShare(new RandomMaskGenerator(196, 98));
        assertTrue(random > 0.4 && random < 0.6, "random: " + random);
        assertTrue(block > random + 0.15, "block " + block + " vs random " + random);
    }

    private static double neighbourShare(MaskGenerator g) {
        int grid = (int) Math.round(Math.sqrt(g.numPatches()));
        long same = 0;
        long total = 0;
        for (int s = 0; s < 200; s++) {
            byte[] m = g.generate(3, 0, s);
            for (int i = 0; i < grid; i++) {
                for (int j = 0; j < grid; j++) {
                    if (m[i * grid + j] == 0) {
                        continue;
                    }
                    int[][] nb = {{i - 1, j}, {i + 1, j}, {i, j - 1}, {i, j + 1}};
                    for (int[] n : nb) {
                        if (n[0] >= 0 && n[0] < grid && n[1] >= 0 && n[1] < grid) {
                            total++;
                            same += m[n[0] * grid + n[1]];
                        }
                    }
                }
            }
        }
        return (double) same / total;
    }

    @Test
    void impossibleCountsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new BlockMaskGenerator(7, 49));
        assertThrows(IllegalArgumentException.class, () -> new BlockMaskGenerator(7, 0));
        assertThrows(IllegalArgumentException.class, () -> new RandomMaskGenerator(10, 10));
    }
}
