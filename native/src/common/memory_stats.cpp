#include "common/memory_stats.h"

#include <atomic>

#include "cae/cae.h"
#include "common/error.h"

namespace cae {

namespace {
std::atomic<int64_t> g_contexts{0}, g_buffers{0}, g_models{0}, g_host_bytes{0}, g_device_bytes{0};

std::atomic<int64_t>& bytes_of(MemoryPlace place) {
    return place == MemoryPlace::Host ? g_host_bytes : g_device_bytes;
}
}  // namespace

void count_allocation(MemoryPlace place, int64_t bytes) { bytes_of(place) += bytes; }
void count_release(MemoryPlace place, int64_t bytes) { bytes_of(place) -= bytes; }
void count_context(int64_t delta) { g_contexts += delta; }
void count_buffer(int64_t delta) { g_buffers += delta; }
void count_model(int64_t delta) { g_models += delta; }

MemorySnapshot memory_snapshot() {
    return {g_contexts.load(), g_buffers.load(), g_models.load(), g_host_bytes.load(), g_device_bytes.load()};
}

}  // namespace cae

extern "C" CAE_API cae_status cae_memory_query(cae_memory_stats* out) {
    return cae::abi_guard("cae_memory_query", [&] {
        CAE_REQUIRE(out != nullptr, "out is NULL");
        cae::MemorySnapshot s = cae::memory_snapshot();
        out->live_contexts = s.contexts;
        out->live_buffers = s.buffers;
    out->live_models = s.models;
        out->host_bytes = s.host_bytes;
        out->device_bytes = s.device_bytes;
    });
}
