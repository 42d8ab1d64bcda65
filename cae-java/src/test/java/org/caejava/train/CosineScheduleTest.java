package org.caejava.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class CosineScheduleTest {

    @Test
    void matchesTheOfficialFormula() {
        // Official: np.linspace(0, base, warmup) then final + 0.5 (base - final)(1 + cos(pi i / len)).
        CosineSchedule s = new CosineSchedule(1.5e-3, 1e-5, 5, 25);
        assertEquals(0.0, s.at(0));
        assertEquals(1.5e-3 * 2 / 4, s.at(2), 1e-18);
        assertEquals(1.5e-3, s.at(4), 1e-18);
        assertEquals(1.5e-3, s.at(5), 1e-18, "the cosine starts at the peak");
        assertEquals(1e-5 + 0.5 * (1.5e-3 - 1e-5) * (1 + Math.cos(Math.PI * 10 / 20)), s.at(15), 1e-18);
        assertEquals(1e-5 + 0.5 * (1.5e-3 - 1e-5) * (1 + Math.cos(Math.PI * 19 / 20)), s.at(24), 1e-18);
        assertEquals(s.at(24), s.at(100), "past the end keeps the last value");
        CosineSchedule noWarmup = new CosineSchedule(1.0, 0.0, 0, 4);
        assertEquals(1.0, noWarmup.at(0));
        assertEquals(0.5, noWarmup.at(2), 1e-15);
    }

    @Test
    void refusesNonsense() {
        assertThrows(IllegalArgumentException.class, () -> new CosineSchedule(1, 0, 10, 5));
        assertThrows(IllegalArgumentException.class, () -> new CosineSchedule(Double.NaN, 0, 0, 5));
    }
}
