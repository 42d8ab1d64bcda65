#include "common/error.h"

#include <string>

namespace cae {

namespace {
thread_local std::string g_last_error;
}

void set_last_error(const std::string& message) { g_last_error = message; }

}  // namespace cae

extern "C" {

CAE_API const char* cae_status_name(cae_status status) {
    switch (status) {
        case CAE_OK: return "CAE_OK";
        case CAE_ERR_INVALID_ARGUMENT: return "CAE_ERR_INVALID_ARGUMENT";
        case CAE_ERR_INVALID_HANDLE: return "CAE_ERR_INVALID_HANDLE";
        case CAE_ERR_OUT_OF_MEMORY: return "CAE_ERR_OUT_OF_MEMORY";
        case CAE_ERR_UNSUPPORTED: return "CAE_ERR_UNSUPPORTED";
        case CAE_ERR_DEVICE: return "CAE_ERR_DEVICE";
        case CAE_ERR_IO: return "CAE_ERR_IO";
        case CAE_ERR_NUMERICAL: return "CAE_ERR_NUMERICAL";
        case CAE_ERR_INTERNAL: return "CAE_ERR_INTERNAL";
        case CAE_ERR_COMM: return "CAE_ERR_COMM";
        default: return "CAE_UNKNOWN_STATUS";
    }
}

CAE_API const char* cae_last_error(void) { return cae::g_last_error.c_str(); }

}  // extern "C"
