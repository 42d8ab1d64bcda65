#include "comm/library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <vector>

#include "common/error.h"

namespace cae {

OpenedLibrary open_library(const char* env, std::initializer_list<const char*> names, int flags) {
    OpenedLibrary out;
    const char* value = std::getenv(env);
    std::vector<std::string> candidates;
    if (value != nullptr && *value != '\0') {
        candidates.emplace_back(value);
    } else {
        candidates.assign(names.begin(), names.end());
    }
    for (const std::string& n : candidates) {
        out.handle = dlopen(n.c_str(), flags);
        if (out.handle != nullptr) {
            out.path = n;
            return out;
        }
        const char* e = dlerror();
        const std::string why = e != nullptr ? e : "not found";
        out.tried += cat(out.tried.empty() ? "" : "; ", why.find(n) == std::string::npos ? cat(n, ": ", why) : why);
    }
    return out;
}

}  // namespace cae
