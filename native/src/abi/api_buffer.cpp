// C ABI: buffers of host, host-pinned or backend memory, and copies between them.
#include <cstring>

#include "cae/cae.h"
#include "abi/context.h"
#include "common/error.h"
#include "abi/handles.h"
#include "common/memory_stats.h"

namespace {

const char* kind_name(cae_memory_kind kind) {
    switch (kind) {
        case CAE_MEMORY_HOST: return "host";
        case CAE_MEMORY_HOST_PINNED: return "host-pinned";
        case CAE_MEMORY_DEVICE: return "device";
    }
    return "unknown";
}

bool on_host(const cae_buffer* b) { return b->kind != CAE_MEMORY_DEVICE; }

void check_range(const cae_buffer* b, const char* arg, int64_t offset, int64_t bytes) {
    CAE_REQUIRE(offset >= 0 && bytes >= 0, arg, ": offset ", offset, " and byte count ", bytes,
                " must not be negative");
    CAE_REQUIRE(offset <= b->bytes && bytes <= b->bytes - offset, arg, ": ", bytes, " bytes at offset ", offset,
                " do not fit the buffer of ", b->bytes, " bytes");
}

void free_buffer(cae_buffer* b) noexcept {
    cae::Backend& backend = b->context->backend();
    switch (b->kind) {
        case CAE_MEMORY_HOST: cae::host_release(b->data, static_cast<size_t>(b->bytes)); break;
        case CAE_MEMORY_HOST_PINNED: backend.release_pinned_host(b->data); break;
        case CAE_MEMORY_DEVICE: backend.release(b->data); break;
    }
    cae::count_buffer(-1);
    delete b;
}

}  // namespace

extern "C" {

CAE_API cae_status cae_buffer_create(cae_context* context, cae_memory_kind kind, int64_t bytes,
                                     cae_buffer** out) {
    return cae::abi_guard("cae_buffer_create", [&] {
        CAE_REQUIRE(out != nullptr, "out is NULL");
        *out = nullptr;
        cae::check_handle(context, cae::HandleKind::Context, "context");
        CAE_REQUIRE(kind == CAE_MEMORY_HOST || kind == CAE_MEMORY_HOST_PINNED ||
                        kind == CAE_MEMORY_DEVICE,
                    "kind is ", kind, ", expected CAE_MEMORY_HOST (0), _HOST_PINNED (1) or _DEVICE (2)");
        CAE_REQUIRE(bytes > 0, "bytes is ", bytes, ", expected > 0");
        cae::Backend& backend = context->impl->backend();
        size_t n = static_cast<size_t>(bytes);
        void* data = kind == CAE_MEMORY_HOST          ? cae::host_alloc(n)
                     : kind == CAE_MEMORY_HOST_PINNED ? backend.alloc_pinned_host(n)
                                                      : backend.alloc(n);
        auto handle = new cae_buffer{context->impl, kind, data, bytes};
        cae::count_buffer(+1);
        cae::register_handle(handle, cae::HandleKind::Buffer);
        *out = handle;
    });
}

CAE_API cae_status cae_buffer_destroy(cae_buffer* buffer) {
    return cae::abi_guard("cae_buffer_destroy", [&] {
        if (!cae::check_handle_or_null(buffer, cae::HandleKind::Buffer, "buffer")) return;
        cae::unregister_handle(buffer);
        free_buffer(buffer);
    });
}

CAE_API cae_status cae_buffer_size(const cae_buffer* buffer, int64_t* bytes) {
    return cae::abi_guard("cae_buffer_size", [&] {
        cae::check_handle(buffer, cae::HandleKind::Buffer, "buffer");
        CAE_REQUIRE(bytes != nullptr, "bytes is NULL");
        *bytes = buffer->bytes;
    });
}

CAE_API cae_status cae_buffer_kind(const cae_buffer* buffer, cae_memory_kind* kind) {
    return cae::abi_guard("cae_buffer_kind", [&] {
        cae::check_handle(buffer, cae::HandleKind::Buffer, "buffer");
        CAE_REQUIRE(kind != nullptr, "kind is NULL");
        *kind = buffer->kind;
    });
}

CAE_API cae_status cae_buffer_host_pointer(cae_buffer* buffer, void** out) {
    return cae::abi_guard("cae_buffer_host_pointer", [&] {
        cae::check_handle(buffer, cae::HandleKind::Buffer, "buffer");
        CAE_REQUIRE(out != nullptr, "out is NULL");
        *out = nullptr;
        CAE_REQUIRE(on_host(buffer), "buffer is ", kind_name(buffer->kind),
                    " memory, which has no host address: copy it with cae_buffer_read");
        *out = buffer->data;
    });
}

CAE_API cae_status cae_buffer_write(cae_buffer* buffer, int64_t offset, const void* src,
                                    int64_t bytes) {
    return cae::abi_guard("cae_buffer_write", [&] {
        cae::check_handle(buffer, cae::HandleKind::Buffer, "buffer");
        check_range(buffer, "buffer", offset, bytes);
        if (bytes == 0) return;
        CAE_REQUIRE(src != nullptr, "src is NULL");
        char* dst = static_cast<char*>(buffer->data) + offset;
        if (on_host(buffer)) {
            std::memmove(dst, src, static_cast<size_t>(bytes));
        } else {
            buffer->context->backend().copy_to_device(dst, src, static_cast<size_t>(bytes));
        }
    });
}

CAE_API cae_status cae_buffer_read(const cae_buffer* buffer, int64_t offset, void* dst,
                                   int64_t bytes) {
    return cae::abi_guard("cae_buffer_read", [&] {
        cae::check_handle(buffer, cae::HandleKind::Buffer, "buffer");
        check_range(buffer, "buffer", offset, bytes);
        if (bytes == 0) return;
        CAE_REQUIRE(dst != nullptr, "dst is NULL");
        const char* src = static_cast<const char*>(buffer->data) + offset;
        if (on_host(buffer)) {
            std::memmove(dst, src, static_cast<size_t>(bytes));
        } else {
            buffer->context->backend().copy_to_host(dst, src, static_cast<size_t>(bytes));
        }
    });
}

CAE_API cae_status cae_buffer_copy(cae_buffer* dst, int64_t dst_offset, const cae_buffer* src,
                                   int64_t src_offset, int64_t bytes) {
    return cae::abi_guard("cae_buffer_copy", [&] {
        cae::check_handle(dst, cae::HandleKind::Buffer, "dst");
        cae::check_handle(src, cae::HandleKind::Buffer, "src");
        CAE_REQUIRE(dst->context == src->context,
                    "dst and src belong to different contexts: copy through host memory instead");
        check_range(dst, "dst", dst_offset, bytes);
        check_range(src, "src", src_offset, bytes);
        if (bytes == 0) return;
        CAE_REQUIRE(dst != src || dst_offset + bytes <= src_offset || src_offset + bytes <= dst_offset,
                    "the source range [", src_offset, ", ", src_offset + bytes,
                    ") overlaps the destination range [", dst_offset, ", ", dst_offset + bytes, ")");
        char* d = static_cast<char*>(dst->data) + dst_offset;
        const char* s = static_cast<const char*>(src->data) + src_offset;
        size_t n = static_cast<size_t>(bytes);
        cae::Backend& backend = dst->context->backend();
        if (on_host(dst) && on_host(src)) {
            std::memcpy(d, s, n);
        } else if (on_host(src)) {
            backend.copy_to_device(d, s, n);
        } else if (on_host(dst)) {
            backend.copy_to_host(d, s, n);
        } else {
            backend.copy_on_device(d, s, n);
        }
    });
}

CAE_API cae_status cae_buffer_fill(cae_buffer* buffer, int64_t offset, int64_t bytes,
                                   uint8_t value) {
    return cae::abi_guard("cae_buffer_fill", [&] {
        cae::check_handle(buffer, cae::HandleKind::Buffer, "buffer");
        check_range(buffer, "buffer", offset, bytes);
        if (bytes == 0) return;
        char* d = static_cast<char*>(buffer->data) + offset;
        if (on_host(buffer)) {
            std::memset(d, value, static_cast<size_t>(bytes));
        } else {
            buffer->context->backend().fill_bytes(d, value, static_cast<size_t>(bytes));
        }
    });
}

}  // extern "C"
