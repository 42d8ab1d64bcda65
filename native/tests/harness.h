// A minimal test harness for the native tests: named cases, value checks that print the
// measured error next to its tolerance, and a non-zero exit status when anything fails.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace harness {

struct Case {
    const char* name;
    std::function<void()> body;
};

inline std::vector<Case>& cases() {
    static std::vector<Case> all;
    return all;
}

inline int& failures() {
    static int n = 0;
    return n;
}

struct Register {
    Register(const char* name, std::function<void()> body) { cases().push_back({name, std::move(body)}); }
};

// Records a failure with a message (the case continues).
inline void fail(const std::string& message) {
    std::printf("    FAIL %s\n", message.c_str());
    ++failures();
}

inline void check(bool ok, const std::string& what) {
    if (!ok) fail(what);
}

// Relative L2 error ||got - want|| / max(||want||, tiny); prints "label: rel err E (tol T)".
template <class A, class B>
inline double rel_error(const A* got, const B* want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; ++i) {
        double d = static_cast<double>(got[i]) - static_cast<double>(want[i]);
        num += d * d;
        den += static_cast<double>(want[i]) * static_cast<double>(want[i]);
    }
    if (std::isnan(num)) return INFINITY;
    return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

// Prints "label: rel err E (tol T)" for an error measured elsewhere; a failure when E > tol.
inline void check_error(const std::string& label, double err, double tol) {
    bool ok = err <= tol;  // NaN fails
    std::printf("    %-58s rel err %.3e  (tol %.0e) %s\n", label.c_str(), err, tol, ok ? "ok" : "FAIL");
    if (!ok) ++failures();
}

template <class A, class B>
inline void check_close(const std::string& label, const A* got, const B* want, size_t n, double tol) {
    check_error(label, rel_error(got, want, n), tol);
}

inline int run_all(int argc, char** argv) {
    std::string filter = argc > 1 ? argv[1] : "";
    int run = 0;
    for (const Case& c : cases()) {
        if (!filter.empty() && std::string(c.name).find(filter) == std::string::npos) continue;
        int before = failures();
        std::printf("[ RUN  ] %s\n", c.name);
        std::fflush(stdout);
        try {
            c.body();
        } catch (const std::exception& e) {
            fail(std::string("exception: ") + e.what());
        }
        std::printf("[ %s ] %s\n", failures() == before ? " OK " : "FAIL", c.name);
        ++run;
    }
    std::printf("%d case(s), %d failure(s)\n", run, failures());
    return failures() == 0 && run > 0 ? 0 : 1;
}

}  // namespace harness

#define HARNESS_CONCAT2(a, b) a##b
#define HARNESS_CONCAT(a, b) HARNESS_CONCAT2(a, b)
#define TEST_CASE(name)                                                                  \
    static void HARNESS_CONCAT(test_fn_, __LINE__)();                                    \
    static harness::Register HARNESS_CONCAT(test_reg_, __LINE__)(name, HARNESS_CONCAT(test_fn_, __LINE__)); \
    static void HARNESS_CONCAT(test_fn_, __LINE__)()

#define HARNESS_MAIN \
    int main(int argc, char** argv) { return harness::run_all(argc, argv); }
