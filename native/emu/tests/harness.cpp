#include "harness.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace emu_test {

namespace {

int g_failures = 0;

std::string read_all(std::FILE* f) {
    std::string s;
    std::rewind(f);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
    return s;
}

[[noreturn]] void die(const char* what, cudaError_t e) {
    std::printf("FAIL %s: %s\n", what, cudaGetErrorName(e));
    std::exit(1);
}

}  // namespace

bool check(bool ok, const char* fmt, ...) {
    std::printf("  %-4s ", ok ? "ok" : "FAIL");
    va_list ap;
    va_start(ap, fmt);
    std::vprintf(fmt, ap);
    va_end(ap);
    std::printf("\n");
    std::fflush(stdout);
    if (!ok) ++g_failures;
    return ok;
}

bool check_error(cudaError_t e, cudaError_t expected, const char* what) {
    return check(e == expected, "%s: %s (expected %s)", what, cudaGetErrorName(e), cudaGetErrorName(expected));
}

int failures() { return g_failures; }

int run_cases(int argc, char** argv, const std::vector<Case>& cases) {
    const std::string name = argc > 1 ? argv[1] : "";
    std::vector<std::string> args(argv + std::min(argc, 2), argv + argc);
    if (name == "all") {
        int failed = 0;
        for (const Case& c : cases) {
            if (c.hidden) continue;
            const ChildResult r = run_self({c.name}, {});
            std::fputs(r.out.c_str(), stdout);
            const bool ok = r.signal == 0 && r.exit_code == 0;
            if (!ok) std::printf("%sFAILED %s (exit %d, signal %d)\n", r.err.c_str(), c.name, r.exit_code, r.signal);
            failed += !ok;
        }
        return failed ? 1 : 0;
    }
    for (const Case& c : cases) {
        if (name != c.name) continue;
        if (!c.hidden) std::printf("%s\n", c.name);
        c.run(args);
        if (!c.hidden) std::printf("%s %s (%d failed checks)\n", g_failures ? "FAILED" : "PASSED", c.name, g_failures);
        return g_failures ? 1 : 0;
    }
    std::printf("usage: %s all|CASE, with CASE one of:", argv[0]);
    for (const Case& c : cases)
        if (!c.hidden) std::printf(" %s", c.name);
    std::printf("\n");
    return 2;
}

ChildResult run_self(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env) {
    // The environment and argv are built before fork: the child only redirects and execs.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
        const std::string s = *e;
        bool replaced = false;
        for (const auto& [k, v] : env) replaced |= s.compare(0, k.size() + 1, k + "=") == 0;
        if (!replaced) env_strings.push_back(s);
    }
    for (const auto& [k, v] : env)
        if (!v.empty()) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp, argvp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string self = "/proc/self/exe";
    std::vector<std::string> arg_strings{self};
    arg_strings.insert(arg_strings.end(), args.begin(), args.end());
    for (auto& s : arg_strings) argvp.push_back(s.data());
    argvp.push_back(nullptr);

    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    if (!out || !err) {
        std::perror("tmpfile");
        std::exit(1);
    }
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
        const rlimit no_core{0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(fileno(out), 1);
        dup2(fileno(err), 2);
        execve("/proc/self/exe", argvp.data(), envp.data());
        _exit(127);
    }
    ChildResult r;
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        std::perror("fork/waitpid");
        std::exit(1);
    }
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
    r.out = read_all(out);
    r.err = read_all(err);
    std::fclose(out);
    std::fclose(err);
    return r;
}

std::pair<std::string, std::string> asan_without_segv_handler() {
    const char* current = std::getenv("ASAN_OPTIONS");
    std::string v = current && *current ? std::string(current) + ":" : std::string();
    return {"ASAN_OPTIONS", v + "handle_segv=0"};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string head(const std::string& text, int n) {
    std::string r;
    size_t pos = 0;
    for (int i = 0; i < n && pos < text.size(); ++i) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        r += "        | " + text.substr(pos, end - pos) + "\n";
        pos = end + 1;
    }
    return r;
}

float* device_floats(size_t n) {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, n * sizeof(float));
    if (e != cudaSuccess) die("cudaMalloc", e);
    return static_cast<float*>(p);
}

void to_device(float* dst, const std::vector<float>& src) {
    const cudaError_t e = cudaMemcpy(dst, src.data(), src.size() * sizeof(float), cudaMemcpyHostToDevice);
    if (e != cudaSuccess) die("cudaMemcpy to the device", e);
}

std::vector<float> from_device(const float* src, size_t n) {
    std::vector<float> v(n);
    const cudaError_t e = cudaMemcpy(v.data(), src, n * sizeof(float), cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) die("cudaMemcpy from the device", e);
    return v;
}

}  // namespace emu_test
