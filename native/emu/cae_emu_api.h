// What the emulator tells its tests (plain C, declared by the tests that use it).
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

// Launches of the __global__ function `name` in this process so far.
long cae_emu_launch_count(const char* name);
// The message of the last kernel fault ("" when none).
const char* cae_emu_last_fault(void);
// Whether p lies in emulated device memory.
int cae_emu_is_device_pointer(const void* p);

#ifdef __cplusplus
}
#endif
