#include "cuda/cublaslt_loader.h"

#include <dlfcn.h>
#include <glob.h>
#include <sys/stat.h>

#include <cstdlib>
#include <mutex>

#include "common/error.h"
#include "cuda/options.h"

namespace cae::cuda {

namespace {

const char* env(const char* name) {
    const char* v = std::getenv(name);
    return (v != nullptr && v[0] != '\0') ? v : nullptr;
}

// Appends the paths matching `pattern` (sorted by glob) to `out`.
void expand(const std::string& pattern, std::vector<std::string>& out) {
    glob_t g{};
    if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
    }
    globfree(&g);
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

template <class F>
bool resolve(void* handle, const char* name, F& fn, std::string& missing) {
    fn = reinterpret_cast<F>(dlsym(handle, name));
    if (fn == nullptr) missing += (missing.empty() ? "" : ", ") + std::string(name);
    return fn != nullptr;
}

// Opens one candidate; on failure returns false and appends the reason to lib.tried.
bool try_open(const std::string& what, const std::string& name_or_path, CublasLtLibrary& lib) {
    dlerror();
    void* h = dlopen(name_or_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
        const char* e = dlerror();
        std::string why = e ? e : "dlopen failed";
        // dlerror repeats the path; keep the message short when the file simply is not there.
        if (name_or_path.find('/') != std::string::npos && !exists(name_or_path)) why = "no such file";
        lib.tried += cat(lib.tried.empty() ? "" : "; ", what, ": ", why);
        return false;
    }
    lt::Api a;
    std::string missing;
    resolve(h, "cublasLtCreate", a.create, missing);
    resolve(h, "cublasLtDestroy", a.destroy, missing);
    resolve(h, "cublasLtGetVersion", a.get_version, missing);
    resolve(h, "cublasLtMatmulDescCreate", a.matmul_desc_create, missing);
    resolve(h, "cublasLtMatmulDescDestroy", a.matmul_desc_destroy, missing);
    resolve(h, "cublasLtMatmulDescSetAttribute", a.matmul_desc_set_attribute, missing);
    resolve(h, "cublasLtMatrixLayoutCreate", a.matrix_layout_create, missing);
    resolve(h, "cublasLtMatrixLayoutDestroy", a.matrix_layout_destroy, missing);
    resolve(h, "cublasLtMatrixLayoutSetAttribute", a.matrix_layout_set_attribute, missing);
    resolve(h, "cublasLtMatmulPreferenceCreate", a.matmul_preference_create, missing);
    resolve(h, "cublasLtMatmulPreferenceDestroy", a.matmul_preference_destroy, missing);
    resolve(h, "cublasLtMatmulPreferenceSetAttribute", a.matmul_preference_set_attribute, missing);
    resolve(h, "cublasLtMatmulAlgoGetHeuristic", a.matmul_algo_get_heuristic, missing);
    resolve(h, "cublasLtMatmul", a.matmul, missing);
    if (!missing.empty()) {
        dlclose(h);
        lib.tried += cat(lib.tried.empty() ? "" : "; ", what, ": missing ", missing);
        return false;
    }
    std::string optional;
    resolve(h, "cublasLtGetStatusString", a.get_status_string, optional);  // null when absent
    const size_t version = a.get_version();
    if (version < 110000) {  // 11.0 introduced the cublasLt API used here
        dlclose(h);
        lib.tried += cat(lib.tried.empty() ? "" : "; ", what, ": version ", version, " is older than 11.0");
        return false;
    }
    lib.handle = h;
    lib.api = a;
    lib.version = version;
    if (name_or_path.find('/') != std::string::npos) {
        lib.path = name_or_path;
    } else {
        // Where the loader found it: the path of one of its symbols.
        Dl_info info{};
        if (dladdr(reinterpret_cast<void*>(a.matmul), &info) != 0 && info.dli_fname != nullptr) {
            lib.path = info.dli_fname;
        } else {
            lib.path = name_or_path;
        }
    }
    return true;
}

}  // namespace

CublasLtSearch cublaslt_search_from_environment() {
    CublasLtSearch s;
    const Options options = Options::from_environment();
    s.explicit_path = options.cublaslt;
    s.try_loader_path = true;
    s.paths.push_back("/usr/local/cuda/lib64/libcublasLt.so.13");
    std::vector<std::string> sites;
    if (!options.python_site.empty()) sites.push_back(options.python_site);
    if (const char* p = env("VIRTUAL_ENV")) expand(cat(p, "/lib/python3*/site-packages"), sites);
    if (const char* p = env("CONDA_PREFIX")) expand(cat(p, "/lib/python3*/site-packages"), sites);
    expand("/usr/lib/python3*/site-packages", sites);
    expand("/usr/local/lib/python3*/dist-packages", sites);
    expand("/usr/local/lib/python3*/site-packages", sites);
    sites.push_back("/usr/lib/python3/dist-packages");
    expand("/opt/*/.venv/lib/python3*/site-packages", sites);  // images that keep PyTorch in a venv under /opt
    if (const char* home = env("HOME")) expand(cat(home, "/.local/lib/python3*/site-packages"), sites);
    for (const std::string& site : sites) {
        for (const char* sub : {"/nvidia/cu13/lib/", "/nvidia/cublas/lib/"}) {
            const std::string dir = site + sub;
            if (exists(dir + "libcublasLt.so.13")) s.paths.push_back(dir + "libcublasLt.so.13");
        }
    }
    return s;
}

std::shared_ptr<const CublasLtLibrary> load_cublaslt(const CublasLtSearch& search) {
    auto lib = std::make_shared<CublasLtLibrary>();
    if (!search.explicit_path.empty() && try_open("CAE_CUBLASLT=" + search.explicit_path, search.explicit_path, *lib))
        return lib;
    if (search.try_loader_path && try_open("libcublasLt.so.13", "libcublasLt.so.13", *lib)) return lib;
    for (const std::string& p : search.paths) {
        if (try_open(p, p, *lib)) return lib;
    }
    if (lib->tried.empty()) lib->tried = "no candidates";
    return lib;
}

std::shared_ptr<const CublasLtLibrary> process_cublaslt() {
    static std::once_flag once;
    static std::shared_ptr<const CublasLtLibrary> lib;
    std::call_once(once, [] { lib = load_cublaslt(cublaslt_search_from_environment()); });
    return lib;
}

std::string CublasLtLibrary::summary() const {
    if (!loaded()) return cat("no cuBLASLt (", tried, ")");
    return cat("cuBLASLt ", version / 10000, ".", (version / 100) % 100, ".", version % 100, " from ", path);
}

}  // namespace cae::cuda
