// A registry of live handles, so that a destroyed or forged handle passed through the C ABI
// is reported as CAE_ERR_INVALID_HANDLE instead of being dereferenced.
#pragma once

#include <cstdint>

namespace cae {

enum class HandleKind : int32_t { Context = 1, Buffer = 2, Model = 3, Comm = 4 };

const char* handle_kind_name(HandleKind kind);

void register_handle(const void* handle, HandleKind kind);
void unregister_handle(const void* handle);

// Throws CAE_ERR_INVALID_ARGUMENT for NULL and CAE_ERR_INVALID_HANDLE when `handle` is not a
// live handle of `kind`. `arg` names the argument in the message.
void check_handle(const void* handle, HandleKind kind, const char* arg);

// Like check_handle, but returns false for a NULL handle instead of throwing (destroy calls).
bool check_handle_or_null(const void* handle, HandleKind kind, const char* arg);

}  // namespace cae
