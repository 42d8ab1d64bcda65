// Opening a communication library at run time: the path in an environment variable when set,
// else the first of the usual names that opens.
#pragma once

#include <initializer_list>
#include <string>

namespace cae {

struct OpenedLibrary {
    void* handle = nullptr;  // null when none opened
    std::string path;        // the name or path that opened
    std::string tried;       // what failed, for the error message: "name: reason; ..."
};

// dlopen with `flags` of getenv(env) when set and not empty, else of each name in turn.
OpenedLibrary open_library(const char* env, std::initializer_list<const char*> names, int flags);

}  // namespace cae
