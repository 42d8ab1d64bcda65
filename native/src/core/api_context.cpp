// C ABI: contexts.
#include <cstring>

#include "cae/cae.h"
#include "core/context.h"
#include "core/error.h"
#include "core/handles.h"

extern "C" {

CAE_API cae_status cae_context_options_init(cae_context_options* options) {
    return cae::abi_guard("cae_context_options_init", [&] {
        CAE_REQUIRE(options != nullptr, "options is NULL");
        std::memset(options, 0, sizeof(*options));
        options->backend = CAE_BACKEND_AUTO;
    });
}

CAE_API cae_status cae_context_create(const cae_context_options* options, cae_context** out) {
    return cae::abi_guard("cae_context_create", [&] {
        CAE_REQUIRE(out != nullptr, "out is NULL");
        *out = nullptr;
        CAE_REQUIRE(options != nullptr, "options is NULL");
        auto handle = new cae_context{cae::create_context(*options)};
        cae::register_handle(handle, cae::HandleKind::Context);
        *out = handle;
    });
}

CAE_API cae_status cae_context_destroy(cae_context* context) {
    return cae::abi_guard("cae_context_destroy", [&] {
        if (!cae::check_handle_or_null(context, cae::HandleKind::Context, "context")) return;
        cae::unregister_handle(context);
        delete context;
    });
}

CAE_API cae_status cae_context_query(const cae_context* context, cae_context_info* out) {
    return cae::abi_guard("cae_context_query", [&] {
        cae::check_handle(context, cae::HandleKind::Context, "context");
        CAE_REQUIRE(out != nullptr, "out is NULL");
        std::memset(out, 0, sizeof(*out));
        cae::Context& c = *context->impl;
        out->backend = static_cast<cae_backend>(c.backend().kind());
        out->device_index = c.device_index();
        out->num_threads = c.backend().num_threads();
        out->seed = c.seed();
        std::string d = c.backend().description();
        std::strncpy(out->description, d.c_str(), sizeof(out->description) - 1);
    });
}

CAE_API cae_status cae_context_synchronize(cae_context* context) {
    return cae::abi_guard("cae_context_synchronize", [&] {
        cae::check_handle(context, cae::HandleKind::Context, "context");
        context->impl->backend().synchronize();
    });
}

}  // extern "C"
