package org.caejava.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class NativeLibraryTest {

    @Test
    void loadsTheLibraryPackedWithTheJar() {
        Path path = NativeLibrary.load();
        assertTrue(Files.isRegularFile(path), "loaded from " + path);
        assertTrue(path.getFileName().toString().equals("libcae.so"), path.toString());
        assertEquals(path, NativeLibrary.load(), "loading twice gives the same library");
    }

    @Test
    void buildInfoIsJsonNamingTheAbi() {
        String info = NativeLibrary.buildInfo();
        assertTrue(info.startsWith("{") && info.endsWith("}"), info);
        assertTrue(info.contains("\"abi\":" + org.caejava.bindings.CaeNative.CAE_ABI_VERSION()), info);
        assertTrue(info.contains("\"blas\":"), info);
    }

    @Test
    void cpuIsAlwaysUsable() {
        BackendInfo cpu = NativeLibrary.backendInfo(Backend.CPU);
        assertTrue(cpu.compiled() && cpu.usable(), cpu.toString());
        BackendInfo auto = NativeLibrary.backendInfo(Backend.AUTO);
        assertTrue(auto.usable(), auto.toString());
        assertFalse(auto.reason().isEmpty());
    }

    @Test
    void deviceListAgreesWithCudaUsability() {
        BackendInfo cuda = NativeLibrary.backendInfo(Backend.CUDA);
        var devices = NativeLibrary.devices();
        if (devices.isEmpty()) {
            assertFalse(cuda.usable(), "CUDA cannot be usable without a device: " + cuda);
        }
        for (DeviceInfo d : devices) {
            assertFalse(d.name().isEmpty());
            assertTrue(d.totalMemory() > 0);
        }
    }
}
