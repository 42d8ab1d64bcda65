// The parts of the CUDA backend that run without a GPU: the cuBLASLt loader (a missing, broken
// or foreign library is reported, never fatal) and the probe and backend factory without a
// device (zero devices with a reason, CAE_ERR_UNSUPPORTED). On a machine with a device the same
// cases check the other side: a backend is made, and it names its GEMM.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "cae/cae.h"
#include "backend/backend.h"
#include "backend/cuda_probe.h"
#include "common/error.h"
#include "cuda/cublaslt_loader.h"
#include "harness.h"

using namespace cae;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string temp_dir() {
    char tmpl[] = "/tmp/cae_loader_XXXXXX";
    const char* d = mkdtemp(tmpl);
    return d ? d : "/tmp";
}

// Runs f and returns the status of the cae::Error it throws (CAE_OK when it does not throw).
template <class F>
cae_status status_of(F&& f, std::string* message = nullptr) {
    try {
        f();
    } catch (const Error& e) {
        if (message) *message = e.what();
        return e.status();
    }
    return CAE_OK;
}

}  // namespace

TEST_CASE("cuBLASLt loader: a missing CAE_CUBLASLT and no search path report the fallback") {
    cuda::CublasLtSearch s;
    s.explicit_path = "/nonexistent/dir/libcublasLt.so.13";
    s.try_loader_path = false;
    auto lib = cuda::load_cublaslt(s);
    harness::check(!lib->loaded(), "nothing is loaded");
    harness::check(lib->handle == nullptr && lib->api.matmul == nullptr, "no handle, no entry points");
    std::printf("    summary: %s\n", lib->summary().c_str());
    harness::check(contains(lib->tried, "CAE_CUBLASLT=/nonexistent/dir/libcublasLt.so.13: no such file"),
                   "the reason names the explicit path: " + lib->tried);
    harness::check(contains(lib->summary(), "no cuBLASLt"), "the summary says there is no cuBLASLt");

    cuda::CublasLtSearch empty;
    empty.try_loader_path = false;
    auto none = cuda::load_cublaslt(empty);
    harness::check(!none->loaded() && none->tried == "no candidates", "no candidates at all: " + none->tried);
}

TEST_CASE("cuBLASLt loader: a file that is not a library, and a library without the entry points") {
    const std::string dir = temp_dir();
    const std::string junk = dir + "/libcublasLt.so.13";
    {
        std::ofstream f(junk);
        f << "not an ELF file\n";
    }
    cuda::CublasLtSearch s;
    s.try_loader_path = false;
    s.paths = {junk, "libm.so.6"};  // the second loads but exports no cuBLASLt function
    auto lib = cuda::load_cublaslt(s);
    harness::check(!lib->loaded(), "neither candidate is accepted");
    std::printf("    tried: %s\n", lib->tried.c_str());
    harness::check(contains(lib->tried, junk + ": "), "the junk file is reported");
    harness::check(contains(lib->tried, "libm.so.6: missing cublasLtCreate"), "the foreign library is reported");
    std::remove(junk.c_str());
    rmdir(dir.c_str());
}

TEST_CASE("cuBLASLt search from the environment: CAE_CUBLASLT first, CAE_PYTHON_SITE wheels") {
    const std::string dir = temp_dir();
    const std::string wheel_dir = dir + "/nvidia/cu13/lib";
    const std::string cmd = "mkdir -p " + wheel_dir;
    harness::check(std::system(cmd.c_str()) == 0, "make the fake wheel folder");
    const std::string fake = wheel_dir + "/libcublasLt.so.13";
    {
        std::ofstream f(fake);
        f << "junk";
    }
    // Keep what the environment had (run.sh sets CAE_CUBLASLT) and put it back at the end.
    const char* had_lt = std::getenv("CAE_CUBLASLT");
    const char* had_site = std::getenv("CAE_PYTHON_SITE");
    const std::string saved_lt = had_lt ? had_lt : "", saved_site = had_site ? had_site : "";
    setenv("CAE_CUBLASLT", "/nonexistent/libcublasLt.so.13", 1);
    setenv("CAE_PYTHON_SITE", dir.c_str(), 1);
    cuda::CublasLtSearch s = cuda::cublaslt_search_from_environment();
    harness::check(s.explicit_path == "/nonexistent/libcublasLt.so.13", "CAE_CUBLASLT is the explicit path");
    bool found = false;
    for (const std::string& p : s.paths) found = found || p == fake;
    harness::check(found, "the CAE_PYTHON_SITE wheel folder is searched");
    harness::check(!s.paths.empty() && s.paths[0] == "/usr/local/cuda/lib64/libcublasLt.so.13",
                   "the toolkit folder comes before the wheels");
    // Only the candidates under our control: the explicit path and the fake wheel.
    cuda::CublasLtSearch ours;
    ours.explicit_path = s.explicit_path;
    ours.try_loader_path = false;
    ours.paths = {fake};
    auto lib = cuda::load_cublaslt(ours);
    harness::check(!lib->loaded(), "junk candidates are refused");
    harness::check(contains(lib->tried, "CAE_CUBLASLT=") && contains(lib->tried, fake),
                   "both candidates are reported: " + lib->tried);
    auto restore = [](const char* name, const char* had, const std::string& value) {
        if (had) {
            setenv(name, value.c_str(), 1);
        } else {
            unsetenv(name);
        }
    };
    restore("CAE_CUBLASLT", had_lt, saved_lt);
    restore("CAE_PYTHON_SITE", had_site, saved_site);
    std::remove(fake.c_str());
    const std::string rm = "rm -rf " + dir;
    harness::check(std::system(rm.c_str()) == 0, "clean up");
}

TEST_CASE("probe and make_cuda_backend: zero devices with a reason, or a backend naming its GEMM") {
    const CudaProbe& p = cuda_probe();
    std::printf("    compiled %d kernels %d devices %d: %s\n", p.compiled, p.kernels, p.device_count, p.reason.c_str());
    harness::check(p.compiled && p.kernels, "CUDA code and kernels are compiled in");
    harness::check(!p.reason.empty(), "the probe gives a reason");
    std::string message;
    cae_status st = status_of([] { make_cuda_backend(99); }, &message);
    harness::check(st == CAE_ERR_UNSUPPORTED && contains(message, "does not exist"),
                   "device 99 is refused with CAE_ERR_UNSUPPORTED: " + message);
    cae_backend_info info;
    harness::check(cae_backend_query(CAE_BACKEND_CUDA, &info) == CAE_OK && info.compiled == 1, "CUDA is compiled");
    if (p.device_count == 0) {
        st = status_of([] { make_cuda_backend(0); }, &message);
        std::printf("    make_cuda_backend(0): %s\n", message.c_str());
        harness::check(st == CAE_ERR_UNSUPPORTED, "no device: make_cuda_backend throws CAE_ERR_UNSUPPORTED");
        harness::check(info.usable == 0, "no device: the CUDA backend is not usable");
        int32_t count = -1;
        harness::check(cae_device_count(&count) == CAE_OK && count == 0, "no device: cae_device_count is 0");
        cae_context_options o;
        cae_context_options_init(&o);
        o.backend = CAE_BACKEND_CUDA;
        cae_context* ctx = nullptr;
        harness::check(cae_context_create(&o, &ctx) == CAE_ERR_UNSUPPORTED && ctx == nullptr,
                       "no device: a CUDA context is refused with CAE_ERR_UNSUPPORTED");
        return;
    }
    harness::check(info.usable == 1, "a device: the CUDA backend is usable");
    harness::check(contains(p.reason, "GEMM"), "the probe names the GEMM in use: " + p.reason);
    auto be = make_cuda_backend(0);
    std::printf("    %s\n", be->description().c_str());
    harness::check(be->kind() == BackendKind::CUDA && contains(be->description(), "GEMM"), "the backend names its GEMM");

    const char* keep = std::getenv("CAE_GEMM");
    const std::string saved = keep ? keep : "";
    setenv("CAE_GEMM", "fallback", 1);
    auto simt = make_cuda_backend(0);
    harness::check(contains(simt->description(), "fallback fp32 SIMT"), "CAE_GEMM=fallback: " + simt->description());
    setenv("CAE_GEMM", "mma", 1);
    auto mma = make_cuda_backend(0);
    harness::check(contains(mma->description(), "mma.sync"), "CAE_GEMM=mma: " + mma->description());
    setenv("CAE_GEMM", "bogus", 1);
    st = status_of([] { make_cuda_backend(0); }, &message);
    harness::check(st == CAE_ERR_UNSUPPORTED && contains(message, "CAE_GEMM"), "CAE_GEMM=bogus is refused: " + message);
    if (saved.empty()) {
        unsetenv("CAE_GEMM");
    } else {
        setenv("CAE_GEMM", saved.c_str(), 1);
    }
}

HARNESS_MAIN
