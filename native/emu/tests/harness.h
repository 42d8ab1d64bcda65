// What the emulator's test programs share: checks that print what they compare, the dispatch of a
// program's cases by name, and running this program again as a child process (for what the
// emulator reads once per process, such as CAE_EMU_ORDER, and for faults that end a process).
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace emu_test {

// Prints "ok" or "FAIL" with the printf-formatted description; a failure makes the program fail.
bool check(bool ok, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// check(e == expected) for a CUDA runtime result, naming both.
bool check_error(cudaError_t e, cudaError_t expected, const char* what);
int failures();

struct Case {
    const char* name;
    std::function<void(const std::vector<std::string>& args)> run;
    bool hidden = false;  // a child mode, run only by another case
};
// argv[1] names the case (its further arguments follow); "all" runs every listed case, each in a
// child process because some leave a sticky device error behind. Returns the exit status.
int run_cases(int argc, char** argv, const std::vector<Case>& cases);

struct ChildResult {
    int exit_code = -1;  // when it exited
    int signal = 0;      // when a signal ended it
    std::string out, err;
};
// Runs this program with args and the environment changed by env (name, value); an empty value
// removes the variable. The child dumps no core.
ChildResult run_self(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env);
// ASAN_OPTIONS with handle_segv=0 added, so that the emulator's SIGSEGV handler is the one
// installed in a child built with AddressSanitizer.
std::pair<std::string, std::string> asan_without_segv_handler();

bool contains(const std::string& text, const std::string& part);
// The first n lines of text, indented, for a failure's context.
std::string head(const std::string& text, int n);

// Device buffers and copies that fail the program when the runtime refuses.
float* device_floats(size_t n);
void to_device(float* dst, const std::vector<float>& src);
std::vector<float> from_device(const float* src, size_t n);

}  // namespace emu_test
