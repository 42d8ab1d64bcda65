package org.caejava.api;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.caejava.bindings.CaeNative;
import org.caejava.bindings.cae_step_options;
import org.junit.jupiter.api.Test;

/**
 * Every enum of the C ABI against its Java form, name by name and code by code, as the generated
 * bindings declare them (so a value added on one side only fails here), and the step defaults of
 * {@code cae_step_options_init} against {@link StepOptions#defaults()}.
 */
class AbiConstantsTest {

    /** The C constants PREFIX_NAME of the bindings, by NAME. */
    static Map<String, Integer> constants(String prefix) throws ReflectiveOperationException {
        Map<String, Integer> out = new TreeMap<>();
        for (Method m : CaeNative.class.getMethods()) {
            if (m.getName().startsWith(prefix) && m.getParameterCount() == 0 && m.getReturnType() == int.class
                    && Modifier.isStatic(m.getModifiers())) {
                out.put(m.getName().substring(prefix.length()), (Integer) m.invoke(null));
            }
        }
        return out;
    }

    static <E extends Enum<E>> Map<String, Integer> java(E[] values, Function<E, Integer> code) {
        return Arrays.stream(values).collect(Collectors.toMap(Enum::name, code, (a, b) -> a, TreeMap::new));
    }

    @Test
    void statusCodes() throws ReflectiveOperationException {
        Map<String, Integer> c = constants("CAE_ERR_");
        c.put("OK", CaeNative.CAE_OK());
        Map<String, Integer> j = java(Status.values(), Status::code);
        j.remove("UNKNOWN");
        assertEquals(c, j);
        for (Status s : Status.values()) {
            assertEquals(s, Status.of(s.code()));
        }
    }

    @Test
    void backendsPrecisionsSlotsAndCommunicatorKinds() throws ReflectiveOperationException {
        assertEquals(constants("CAE_BACKEND_"), java(Backend.values(), Backend::code));
        assertEquals(constants("CAE_PRECISION_"), java(Precision.values(), Precision::code));
        assertEquals(constants("CAE_SLOT_"), java(Slot.values(), Slot::code));
        assertEquals(constants("CAE_COMM_"), java(Communicator.Kind.values(), Communicator.Kind::code));
        for (Backend b : Backend.values()) {
            assertEquals(b, Backend.of(b.code()));
        }
    }

    @Test
    void tensorTypes() throws ReflectiveOperationException {
        assertEquals(constants("CAE_DTYPE_").keySet(), java(DType.values(), DType::byteSize).keySet());
    }

    @Test
    void stepDefaultsAreLibcaesDefaults() {
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment o = cae_step_options.allocate(arena);
            Native.check(CaeNative.cae_step_options_init(o), "cae_step_options_init");
            StepOptions d = StepOptions.defaults();
            assertEquals(cae_step_options.lr(o), d.lr());
            assertEquals(cae_step_options.weight_decay(o), d.weightDecay());
            assertEquals(cae_step_options.beta1(o), d.beta1());
            assertEquals(cae_step_options.beta2(o), d.beta2());
            assertEquals(cae_step_options.eps(o), d.eps());
            assertEquals(cae_step_options.max_grad_norm(o), d.maxGradNorm());
            assertEquals(cae_step_options.step(o), d.step());
            assertEquals(cae_step_options.seed(o), d.seed());
            assertEquals(cae_step_options.drop_path(o) != 0, d.dropPath());
            assertEquals(cae_step_options.precision(o), d.precision().code());
        }
    }
}
