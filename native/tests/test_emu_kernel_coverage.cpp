// Every __global__ function of src/cuda ran at least once in the emulated test runs: the runs
// (native/tests/CMakeLists.txt, label emu) write their launches per kernel, "name count" per line,
// to the files given here; the list of kernels comes from the build (rewrite_cuda.py).
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "cae_emu_kernels.h"

int main(int argc, char** argv) {
    std::map<std::string, long> launches;
    int missing_logs = 0;
    for (int i = 1; i < argc; ++i) {
        std::ifstream in(argv[i]);
        if (!in) {
            std::printf("FAIL no launch log %s (did that run end early?)\n", argv[i]);
            ++missing_logs;
            continue;
        }
        std::string name;
        long n = 0;
        while (in >> name >> n) launches[name] += n;
    }
    int never = 0;
    for (const CaeEmuKernelName& k : kCaeEmuKernels) {
        const long n = launches.count(k.name) ? launches[k.name] : 0;
        std::printf("    %-32s %-28s %8ld launches\n", k.name, k.file, n);
        if (n == 0) {
            std::printf("FAIL %s (%s) was never launched by the emulated tests\n", k.name, k.file);
            ++never;
        }
    }
    const int kernels = static_cast<int>(sizeof(kCaeEmuKernels) / sizeof(kCaeEmuKernels[0]));
    std::printf("%d kernels, %d never launched, %d of %d launch logs missing\n", kernels, never, missing_logs, argc - 1);
    return never == 0 && missing_logs == 0 && argc > 1 ? 0 : 1;
}
