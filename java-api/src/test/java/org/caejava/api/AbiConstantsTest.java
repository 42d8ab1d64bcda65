package org.caejava.api;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.caejava.bindings.CaeNative;
import org.caejava.bindings.cae_model_config;
import org.caejava.bindings.cae_step_options;
import org.junit.jupiter.api.Test;

/**
 * Every enum of the C ABI against its Java form, name by name and code by code, as the generated
 * bindings declare them (so a value added on one side only fails here); the step defaults of
 * {@code cae_step_options_init} against {@link StepOptions#defaults()}; and {@code cae_model_config}
 * against {@link ModelConfig}: field by field by name and type, each component written into the
 * field of its name, and the defaults of {@code cae_model_config_init}.
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
        assertEquals(constants("CAE_TARGET_"), java(ModelConfig.Target.values(), ModelConfig.Target::code));
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

    /** {@code img_size} as {@code imgSize}. */
    static String camel(String snake) {
        StringBuilder b = new StringBuilder();
        for (String part : snake.split("_")) {
            b.append(b.isEmpty() ? part : Character.toUpperCase(part.charAt(0)) + part.substring(1));
        }
        return b.toString();
    }

    /** The members of {@code cae_model_config} but {@code reserved}, in declaration order. */
    static List<MemoryLayout> configFields() {
        List<MemoryLayout> fields = new ArrayList<>();
        for (MemoryLayout m : cae_model_config.layout().memberLayouts()) {
            if (m.name().isPresent() && !m.name().get().equals("reserved")) {
                fields.add(m);
            }
        }
        return fields;
    }

    @Test
    void modelConfigHasTheStructsFieldsByNameAndType() {
        assertEquals(1, cae_model_config.layout().memberLayouts().stream()
                .filter(m -> m.name().orElse("").equals("reserved")).count(), "the struct's reserved field");
        List<String> struct = new ArrayList<>();
        for (MemoryLayout m : configFields()) {
            String type = m instanceof ValueLayout.OfInt ? "int32" : m instanceof ValueLayout.OfFloat ? "float" : "?";
            struct.add(camel(m.name().orElseThrow()) + ":" + type);
        }
        List<String> record = new ArrayList<>();
        for (RecordComponent c : ModelConfig.class.getRecordComponents()) {
            Class<?> t = c.getType();
            // An enum travels as its code, an int32_t.
            String type = t == int.class || t == ModelConfig.Target.class ? "int32" : t == float.class ? "float" : "?";
            record.add(c.getName() + ":" + type);
        }
        assertEquals(struct, record);
    }

    @Test
    void modelConfigWritesEveryComponentIntoTheFieldOfItsName() throws ReflectiveOperationException {
        // A distinct value in every field, so that two swapped fields cannot go unnoticed.
        ModelConfig c = new ModelConfig(101, 102, 103, 104, 105, 106, 1.5f, 107, 108, 109, 110, 2.5f, 3.5f, 4.5f,
                5.5f, 6.5f, 7.5f, ModelConfig.Target.PIXEL_NORM);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = cae_model_config.allocate(arena);
            s.fill((byte) 0x7f);
            c.write(s);
            for (MemoryLayout m : configFields()) {
                String name = m.name().orElseThrow();
                long offset = cae_model_config.layout().byteOffset(MemoryLayout.PathElement.groupElement(name));
                Object component = ModelConfig.class.getMethod(camel(name)).invoke(c);
                Object written = m instanceof ValueLayout.OfInt ? (Object) s.get(ValueLayout.JAVA_INT, offset)
                        : (Object) s.get(ValueLayout.JAVA_FLOAT, offset);
                assertEquals(component instanceof ModelConfig.Target t ? t.code() : component, written, name);
            }
            assertEquals(0, cae_model_config.reserved(s), "reserved");
            assertEquals(c, ModelConfig.read(s));
        }
    }

    @Test
    void modelConfigDefaultsAreLibcaesDefaults() {
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = cae_model_config.allocate(arena);
            Native.check(CaeNative.cae_model_config_init(s), "cae_model_config_init");
            assertEquals(ModelConfig.defaults(), ModelConfig.read(s));
            assertEquals(0, cae_model_config.reserved(s));
        }
    }
}
