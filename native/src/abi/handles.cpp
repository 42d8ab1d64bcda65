#include "abi/handles.h"

#include <mutex>
#include <unordered_map>

#include "common/error.h"

namespace cae {

namespace {

struct Registry {
    std::mutex mutex;
    std::unordered_map<const void*, HandleKind> live;
};

Registry& registry() {
    static Registry* r = new Registry();  // never destroyed: handles may outlive static teardown
    return *r;
}

}  // namespace

const char* handle_kind_name(HandleKind kind) {
    switch (kind) {
        case HandleKind::Context: return "cae_context";
        case HandleKind::Buffer: return "cae_buffer";
        case HandleKind::Model: return "cae_model";
        case HandleKind::Comm: return "cae_comm";
    }
    return "handle";
}

void register_handle(const void* handle, HandleKind kind) {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.live[handle] = kind;
}

void unregister_handle(const void* handle) {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.live.erase(handle);
}

bool check_handle_or_null(const void* handle, HandleKind kind, const char* arg) {
    if (handle == nullptr) return false;
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.live.find(handle);
    if (it == r.live.end()) {
        fail(CAE_ERR_INVALID_HANDLE, arg, " is not a live ", handle_kind_name(kind),
             " (already destroyed, or never created)");
    }
    if (it->second != kind) {
        fail(CAE_ERR_INVALID_HANDLE, arg, " is a ", handle_kind_name(it->second), ", expected a ",
             handle_kind_name(kind));
    }
    return true;
}

void check_handle(const void* handle, HandleKind kind, const char* arg) {
    if (!check_handle_or_null(handle, kind, arg)) {
        fail(CAE_ERR_INVALID_ARGUMENT, arg, " is NULL");
    }
}

}  // namespace cae
