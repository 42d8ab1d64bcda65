// Errors inside libcae: C++ code throws cae::Error; the C ABI layer (abi_guard) turns it
// into a cae_status and the calling thread's last-error message. Nothing escapes the ABI.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "cae/cae.h"

namespace cae {

class Error : public std::runtime_error {
public:
    Error(cae_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    cae_status status() const noexcept { return status_; }

private:
    cae_status status_;
};

// Concatenates its arguments with operator<< ("image ", 3, ": 31x28") into a string.
template <class... Args>
std::string cat(Args&&... args) {
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    return os.str();
}

template <class... Args>
[[noreturn]] void fail(cae_status status, Args&&... args) {
    throw Error(status, cat(std::forward<Args>(args)...));
}

// Throws CAE_ERR_INVALID_ARGUMENT with the message when the condition is false.
#define CAE_REQUIRE(cond, ...)                                          \
    do {                                                                \
        if (!(cond)) ::cae::fail(CAE_ERR_INVALID_ARGUMENT, __VA_ARGS__); \
    } while (0)

// Sets the calling thread's last error (used by the ABI layer).
void set_last_error(const std::string& message);

// Runs f, mapping every exception to a status and the last-error message. Returns CAE_OK
// when f returns normally. `where` names the C function for the message.
template <class F>
cae_status abi_guard(const char* where, F&& f) noexcept {
    try {
        f();
        return CAE_OK;
    } catch (const Error& e) {
        set_last_error(cat(where, ": ", e.what()));
        return e.status();
    } catch (const std::bad_alloc&) {
        set_last_error(cat(where, ": out of host memory"));
        return CAE_ERR_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        set_last_error(cat(where, ": internal error: ", e.what()));
        return CAE_ERR_INTERNAL;
    } catch (...) {
        set_last_error(cat(where, ": internal error of unknown kind"));
        return CAE_ERR_INTERNAL;
    }
}

}  // namespace cae
