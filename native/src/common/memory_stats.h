// Process-wide accounting of what libcae holds, read through cae_memory_query so tests can
// check that memory returns to its baseline once everything is closed.
#pragma once

#include <cstdint>

namespace cae {

enum class MemoryPlace { Host, Device };

void count_allocation(MemoryPlace place, int64_t bytes);
void count_release(MemoryPlace place, int64_t bytes);
void count_context(int64_t delta);
void count_buffer(int64_t delta);
void count_model(int64_t delta);

struct MemorySnapshot {
    int64_t contexts, buffers, models, host_bytes, device_bytes;
};
MemorySnapshot memory_snapshot();

}  // namespace cae
