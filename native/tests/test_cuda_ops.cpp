// Every op of the CUDA backend against the CPU backend (the numerical reference) on identical
// random inputs and odd shapes. Every array of an op (inputs, outputs, padding) is uploaded to
// both backends, the op runs on each, and every array comes back and is compared:
//  - outputs are pre-filled with NaN (accumulated outputs with the same random values on both),
//    so an element the CUDA kernel leaves unwritten, or writes outside its range, shows up as a
//    NaN where the CPU has a number or the other way round;
//  - finite values are compared by relative L2 error ||cuda - cpu|| / ||cpu|| against a
//    tolerance (1e-5; the GEMM-based ops use the GEMM's: 1e-5 for cuBLASLt fp32, the SIMT kernel
//    and 3xTF32 mma, 5e-3 when TF32 is allowed);
//  - inputs must come back bitwise unchanged.
// Then the CUDA ops are run twice and must agree bitwise (determinism), and the backend's
// memory, copies and errors are checked. Prints "SKIPPED: ..." and exits 0 without a device.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda_probe.h"
#include "common/error.h"
#include "common/memory_stats.h"
#include "harness.h"

using namespace cae;

namespace {

using Vec = std::vector<float>;
using IVec = std::vector<int32_t>;

constexpr double kTol = 1e-5;
const float kNaN = std::numeric_limits<float>::quiet_NaN();

// CAE_TEST_ON_CPU=1 runs the whole test with a second CPU backend (3 threads) in the place of the
// CUDA one: a check of this test's own comparison logic on machines without a GPU.
bool self_test() {
    const char* v = std::getenv("CAE_TEST_ON_CPU");
    return v != nullptr && std::string(v) == "1";
}

std::unique_ptr<Backend> make_device_backend() { return self_test() ? make_cpu_backend(3) : make_cuda_backend(0); }

std::unique_ptr<Backend>& gpu_slot() {
    static std::unique_ptr<Backend> be;
    return be;
}
Backend& gpu() { return *gpu_slot(); }
Backend& cpu() {
    static std::unique_ptr<Backend> be = make_cpu_backend(8);
    return *be;
}

// On the host emulator of the CUDA execution model (a CUDA thread is a fiber, so it runs far slower
// than a device) the ViT-B-sized cases shrink to shapes that still span several tiles with ragged
// edges; CAE_TEST_FULL_SIZE=1 keeps the full sizes there too.
bool full_size() {
    static const bool full = [] {
        const char* v = std::getenv("CAE_TEST_FULL_SIZE");
        if (v != nullptr && std::string(v) == "1") return true;
        return gpu().description().find("emulator") == std::string::npos;
    }();
    return full;
}
int64_t sized(int64_t full, int64_t emulated) { return full_size() ? full : emulated; }

// The tolerance of ops whose result comes from the CUDA backend's GEMM.
double gemm_tol() {
    static const double tol = gpu().description().find("TF32 allowed") != std::string::npos ? 5e-3 : kTol;
    return tol;
}

std::mt19937_64& rng() {
    static std::mt19937_64 r(20250611);
    return r;
}

Vec randn(int64_t n, float scale = 1.0f, float mean = 0.0f) {
    std::normal_distribution<float> dist(mean, scale);
    Vec v(static_cast<size_t>(n));
    for (float& x : v) x = dist(rng());
    return v;
}

Vec nans(int64_t n) { return Vec(static_cast<size_t>(n), kNaN); }

// n bf16 NaNs (0x7fc0) packed in float words, two per word: the prefill of a bf16 output.
Vec bf16_nans(int64_t n) {
    const uint32_t bits = 0x7fc07fc0u;
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return Vec(static_cast<size_t>((n + 1) / 2), f);
}

std::string dims(std::initializer_list<int64_t> d) {
    std::string s;
    for (int64_t x : d) s += (s.empty() ? "" : "x") + std::to_string(x);
    return s;
}

std::vector<int32_t> random_indices(int64_t B, int64_t N, int64_t n_sel) {
    std::vector<int32_t> idx;
    for (int64_t b = 0; b < B; ++b) {
        std::vector<int32_t> perm(static_cast<size_t>(N));
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng());
        idx.insert(idx.end(), perm.begin(), perm.begin() + n_sel);
    }
    return idx;
}

// ---- running one op on both backends

// The arrays of one op invocation, by name: floats (inputs and outputs alike) and int32 indices.
struct Arrays {
    std::map<std::string, Vec> f;
    std::map<std::string, IVec> i;
};

// Device pointers of the arrays on one backend.
struct Ptrs {
    std::map<std::string, float*> f;
    std::map<std::string, int32_t*> i;
    float* operator[](const std::string& name) const { return f.at(name); }
    const int32_t* idx(const std::string& name) const { return i.at(name); }
};

using Op = std::function<void(Backend&, const Ptrs&)>;

// Uploads every array, runs op (twice when `repeat`, from the same inputs, returning both
// results), downloads every array.
Arrays run_on(Backend& be, const Arrays& in, const Op& op, Arrays* second = nullptr) {
    auto once = [&]() {
        Ptrs p;
        std::vector<void*> blocks;
        for (const auto& [name, v] : in.f) {
            float* d = static_cast<float*>(be.alloc(std::max<size_t>(v.size(), 1) * sizeof(float)));
            blocks.push_back(d);
            be.copy_to_device(d, v.data(), v.size() * sizeof(float));
            p.f[name] = d;
        }
        for (const auto& [name, v] : in.i) {
            int32_t* d = static_cast<int32_t*>(be.alloc(std::max<size_t>(v.size(), 1) * sizeof(int32_t)));
            blocks.push_back(d);
            be.copy_to_device(d, v.data(), v.size() * sizeof(int32_t));
            p.i[name] = d;
        }
        op(be, p);
        Arrays out;
        for (const auto& [name, v] : in.f) {
            Vec h(v.size());
            be.copy_to_host(h.data(), p.f[name], h.size() * sizeof(float));
            out.f[name] = std::move(h);
        }
        out.i = in.i;
        for (void* b : blocks) be.release(b);
        return out;
    };
    Arrays first = once();
    if (second) *second = once();
    return first;
}

// Relative L2 over the positions where the reference is finite; NaN positions must match.
struct Diff {
    double rel = 0.0;
    int64_t nan_mismatch = 0;
    int64_t first_mismatch = -1;
};

Diff compare(const Vec& got, const Vec& want) {
    Diff d;
    double num = 0.0, den = 0.0;
    for (size_t k = 0; k < want.size(); ++k) {
        const bool gn = std::isnan(got[k]), wn = std::isnan(want[k]);
        if (gn || wn) {
            if (gn != wn) {
                if (d.nan_mismatch++ == 0) d.first_mismatch = static_cast<int64_t>(k);
            }
            continue;
        }
        const double e = static_cast<double>(got[k]) - static_cast<double>(want[k]);
        num += e * e;
        den += static_cast<double>(want[k]) * static_cast<double>(want[k]);
    }
    d.rel = num == 0.0 ? 0.0 : std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
    return d;
}

// Runs op on both backends and checks every array: `outputs` by rel L2 (and NaN pattern), the
// rest must be unchanged. Also runs the CUDA op a second time: the results must be bitwise
// equal (`deterministic`), else only reported.
void check_op(const std::string& label, const Arrays& in, const std::vector<std::string>& outputs, const Op& op,
              double tol = kTol, bool require_deterministic = true) {
    Arrays again;
    const Arrays want = run_on(cpu(), in, op);
    const Arrays got = run_on(gpu(), in, op, &again);
    for (const auto& [name, v] : in.f) {
        const bool is_output = std::find(outputs.begin(), outputs.end(), name) != outputs.end();
        const Vec& g = got.f.at(name);
        if (!is_output) {
            const bool same = std::memcmp(g.data(), v.data(), v.size() * sizeof(float)) == 0;
            harness::check(same, label + ": input '" + name + "' was modified by the CUDA op");
            continue;
        }
        const Diff d = compare(g, want.f.at(name));
        const bool ok = d.nan_mismatch == 0 && d.rel <= tol;
        std::printf("    %-64s rel err %.3e  (tol %.0e)%s %s\n", (label + ": " + name).c_str(), d.rel, tol,
                    d.nan_mismatch ? (" NaN-pattern mismatches " + std::to_string(d.nan_mismatch) + " (first at " +
                                      std::to_string(d.first_mismatch) + ")")
                                         .c_str()
                                   : "",
                    ok ? "ok" : "FAIL");
        if (!ok) ++harness::failures();
        const Vec& g2 = again.f.at(name);
        const bool bitwise = std::memcmp(g.data(), g2.data(), g.size() * sizeof(float)) == 0;
        if (!bitwise) {
            if (require_deterministic) {
                harness::fail(label + ": " + name + " differs between two CUDA runs");
            } else {
                std::printf("    note: %s: %s differs between two CUDA runs (rel %.2e)\n", label.c_str(), name.c_str(),
                            compare(g2, g).rel);
            }
        }
    }
}

// ---- GEMM problems

GemmArgs gemm_args(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, float beta, int64_t batch,
                   int64_t pad, int64_t* a_size, int64_t* b_size, int64_t* c_size) {
    const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
    GemmArgs g = gemm_product(ta, tb, m, n, k, alpha, nullptr, a_cols + pad, nullptr, b_cols + 2 * pad, beta, nullptr,
                              n + pad);
    g.batch = batch;
    g.stride_a = a_rows * g.lda + (pad ? 5 : 0);
    g.stride_b = b_rows * g.ldb + (pad ? 7 : 0);
    g.stride_c = m * g.ldc + (pad ? 11 : 0);
    *a_size = batch * g.stride_a;
    *b_size = batch * g.stride_b;
    *c_size = batch * g.stride_c;
    return g;
}

// C's padding (columns n..ldc, the gap between batch items) must stay as it was: fill the valid
// part with `fill`, the rest with a marker both backends leave alone.
Vec c_prefill(const GemmArgs& g, int64_t c_size, bool nan_valid) {
    Vec c = randn(c_size);
    if (nan_valid) {
        for (int64_t b = 0; b < g.batch; ++b)
            for (int64_t i = 0; i < g.m; ++i)
                for (int64_t j = 0; j < g.n; ++j) c[b * g.stride_c + i * g.ldc + j] = kNaN;
    }
    return c;
}

void check_gemm(const std::string& label, GemmArgs g, int64_t a_size, int64_t b_size, int64_t c_size,
                bool require_deterministic) {
    Arrays in;
    in.f["a"] = randn(a_size);
    in.f["b"] = randn(b_size);
    in.f["c"] = c_prefill(g, c_size, g.beta == 0.0f);
    check_op(label, in, {"c"},
             [g](Backend& be, const Ptrs& p) mutable {
                 g.a = p["a"];
                 g.b = p["b"];
                 g.c = p["c"];
                 be.gemm(g);
             },
             gemm_tol(), require_deterministic);
}

}  // namespace

// ---------------------------------------------------------------- GEMM

TEST_CASE("gemm: every transpose, alpha/beta, odd shapes, padded strides, batches") {
    struct Shape {
        int64_t m, n, k;
    };
    const Shape shapes[] = {{1, 1, 1}, {17, 33, 65}, {64, 64, 16}, {65, 63, 17}, {100, 50, 257}, {3, 129, 513},
                            {130, 7, 20}};
    for (const Shape& s : shapes)
        for (int t = 0; t < 4; ++t) {
            const bool ta = t & 1, tb = t & 2;
            for (auto [alpha, beta] : {std::pair<float, float>{1.0f, 0.0f}, {0.7f, 1.0f}, {-1.3f, 0.5f}}) {
                const int64_t batch = (s.m * s.n < 2000) ? 3 : 1;
                int64_t as, bs, cs;
                GemmArgs g = gemm_args(ta, tb, s.m, s.n, s.k, alpha, beta, batch, 3, &as, &bs, &cs);
                char label[160];
                std::snprintf(label, sizeof label, "gemm %s%s %s alpha %.1f beta %.1f batch %lld", ta ? "T" : "N",
                              tb ? "T" : "N", dims({s.m, s.n, s.k}).c_str(), alpha, beta,
                              static_cast<long long>(batch));
                check_gemm(label, g, as, bs, cs, false);
            }
        }
}

// cuBLASLt reports "no algorithm" for a shape in three ways (nothing returned, NOT_SUPPORTED,
// INVALID_VALUE); the backend must then run its fallback kernel. The fake cuBLASLt of the emulated
// runs answers so for k = 13, 11 and 10; a real one computes these shapes itself.
TEST_CASE("gemm: shapes without a cuBLASLt algorithm take the fallback kernel, fp32 and bf16") {
    for (const GemmPrecision precision : {GemmPrecision::FP32, GemmPrecision::BF16})
        for (const int64_t k : {int64_t{13}, int64_t{11}, int64_t{10}})
            for (int t = 0; t < 4; ++t) {
                int64_t as, bs, cs;
                GemmArgs g = gemm_args(t & 1, t & 2, 21, 35, k, 1.0f, t == 3 ? 1.0f : 0.0f, t == 2 ? 2 : 1, 1, &as, &bs, &cs);
                g.precision = precision;
                check_gemm(std::string("gemm ") + (precision == GemmPrecision::BF16 ? "bf16 " : "") + (t & 1 ? "T" : "N") +
                               (t & 2 ? "T" : "N") + " " + dims({21, 35, k}),
                           g, as, bs, cs, false);
            }
}

TEST_CASE("gemm: k = 0, alpha = 0 (A, B not read), shared A (stride 0), unpadded") {
    int64_t as, bs, cs;
    for (float beta : {0.0f, 0.5f}) {
        GemmArgs g = gemm_args(false, true, 9, 11, 0, 1.0f, beta, 2, 1, &as, &bs, &cs);
        check_gemm("gemm k=0 beta " + std::to_string(beta), g, std::max<int64_t>(as, 1), std::max<int64_t>(bs, 1), cs,
                   true);
    }
    {
        GemmArgs g = gemm_args(true, false, 13, 10, 7, 0.0f, 2.0f, 1, 2, &as, &bs, &cs);
        Arrays in;
        in.f["a"] = nans(as);  // alpha = 0: A and B are not read
        in.f["b"] = nans(bs);
        in.f["c"] = c_prefill(g, cs, false);
        check_op("gemm alpha=0 over NaN A, B", in, {"c"}, [g](Backend& be, const Ptrs& p) mutable {
            g.a = p["a"];
            g.b = p["b"];
            g.c = p["c"];
            be.gemm(g);
        });
    }
    {  // mean over tokens as in cae_encode: ones [1, N] x out[b] [N, D], A shared
        const int64_t B = 3, N = 49, D = 40, T = N + 1;
        GemmArgs g;
        g.m = 1;
        g.n = D;
        g.k = N;
        g.alpha = 1.0f / N;
        g.lda = N;
        g.stride_a = 0;
        g.ldb = D;
        g.stride_b = T * D;
        g.ldc = D;
        g.stride_c = D;
        g.batch = B;
        Arrays in;
        in.f["a"] = Vec(N, 1.0f);
        in.f["b"] = randn(B * T * D);
        in.f["c"] = nans(B * D);
        check_op("gemm shared A (stride_a 0), m = 1", in, {"c"}, [g](Backend& be, const Ptrs& p) mutable {
            g.a = p["a"];
            g.b = p["b"] + D;
            g.c = p["c"];
            be.gemm(g);
        }, gemm_tol(), false);
    }
    {  // unpadded, contiguous batch
        GemmArgs g = gemm_args(false, false, 31, 47, 29, 1.0f, 0.0f, 5, 0, &as, &bs, &cs);
        check_gemm("gemm NN 31x47x29 batch 5 contiguous", g, as, bs, cs, false);
    }
}

TEST_CASE("gemm: ViT-B shapes (qkv, fc1, weight gradient)") {
    int64_t as, bs, cs;
    const int64_t D = sized(768, 80), rows197 = sized(4 * 197, 2 * 37), rows99 = sized(4 * 99, 2 * 19);
    // y [rows, 3D] = x [rows, D] W^T
    GemmArgs g = gemm_args(false, true, rows197, 3 * D, D, 1.0f, 0.0f, 1, 0, &as, &bs, &cs);
    check_gemm("gemm NT " + dims({rows197, 3 * D, D}) + " (qkv)", g, as, bs, cs, false);
    g = gemm_args(false, false, rows99, D, 4 * D, 1.0f, 0.0f, 1, 0, &as, &bs, &cs);
    check_gemm("gemm NN " + dims({rows99, D, 4 * D}) + " (fc2 backward dx)", g, as, bs, cs, false);
    g = gemm_args(true, false, 4 * D, D, rows99, 1.0f, 1.0f, 1, 0, &as, &bs, &cs);
    check_gemm("gemm TN " + dims({4 * D, D, rows99}) + " beta 1 (fc1 weight gradient)", g, as, bs, cs, false);
}

TEST_CASE("gemm BF16: against the CPU's bf16 emulation; given bf16 operands; round_to_bf16") {
    // Both backends multiply the same bf16 values exactly and sum in fp32: only the order of
    // the sums differs, so the fp32 tolerance holds.
    struct Shape {
        int64_t m, n, k;
    };
    for (const Shape& s : {Shape{17, 33, 65}, Shape{100, 50, 257}, Shape{sized(4 * 99, 38), sized(768, 80), sized(3072, 320)}})
        for (int t = 0; t < 4; ++t) {
            const bool ta = t & 1, tb = t & 2;
            const float beta = t == 3 ? 1.0f : 0.0f;
            const int64_t batch = s.m * s.n < 10000 ? 3 : 1;
            int64_t as, bs, cs;
            GemmArgs g = gemm_args(ta, tb, s.m, s.n, s.k, 1.0f, beta, batch, 2, &as, &bs, &cs);
            g.precision = GemmPrecision::BF16;
            const std::string label = std::string("gemm bf16 ") + (ta ? "T" : "N") + (tb ? "T" : "N") + " " +
                                      dims({s.m, s.n, s.k}) + " batch " + std::to_string(batch);
            check_gemm(label, g, as, bs, cs, false);
        }
    // The weights' path: B given as a bf16 copy made by round_to_bf16 (compared bitwise between
    // the backends as the float words that hold pairs of bf16 values).
    int64_t as, bs, cs;
    const int64_t D = sized(768, 80), rows = sized(4 * 197, 2 * 37);
    GemmArgs g = gemm_args(false, true, rows, 3 * D, D, 1.0f, 0.0f, 1, 0, &as, &bs, &cs);
    g.precision = GemmPrecision::BF16;
    Arrays in;
    in.f["a"] = randn(as);
    in.f["b"] = randn(bs, 0.02f);
    in.f["b16"] = nans((bs + 1) / 2);
    in.f["c"] = c_prefill(g, cs, true);
    check_op("gemm bf16 NT " + dims({rows, 3 * D, D}) + " (qkv) with the weight's bf16 copy", in, {"b16", "c"},
             [g, bs](Backend& be, const Ptrs& p) mutable {
                 be.round_to_bf16(reinterpret_cast<uint16_t*>(p["b16"]), p["b"], bs);
                 g.a = p["a"];
                 g.b = p["b"];
                 g.b_bf16 = reinterpret_cast<const uint16_t*>(p["b16"]);
                 g.c = p["c"];
                 be.gemm(g);
             },
             gemm_tol(), false);
}

TEST_CASE("gemm with a bias (the cuBLASLt epilogue; product + bias kernel for batches), fp32 and bf16") {
    for (const GemmPrecision precision : {GemmPrecision::FP32, GemmPrecision::BF16})
        for (const int64_t batch : {int64_t{1}, int64_t{2}}) {
            int64_t as, bs, cs;
            // y [rows, out] = x [rows, in] W^T + b, as the linear layers call it
            const int64_t D = sized(768, 80), rows = sized(4 * 99, 38);
            GemmArgs g = gemm_args(false, true, rows, 4 * D, D, 1.0f, 0.0f, batch, batch > 1 ? 1 : 0, &as, &bs, &cs);
            g.precision = precision;
            Arrays in;
            in.f["a"] = randn(as);
            in.f["b"] = randn(bs, 0.05f);
            in.f["bias"] = randn(g.n);
            in.f["c"] = c_prefill(g, cs, true);
            const std::string label = std::string("gemm + bias ") + (precision == GemmPrecision::BF16 ? "bf16" : "fp32") +
                                      " NT " + dims({rows, 4 * D, D}) + " batch " + std::to_string(batch);
            check_op(label, in, {"c"}, [g](Backend& be, const Ptrs& p) mutable {
                g.a = p["a"];
                g.b = p["b"];
                g.c = p["c"];
                g.bias = p["bias"];
                be.gemm(g);
            }, gemm_tol(), false);
        }
}

TEST_CASE("gemm with a bias gradient (the cuBLASLt BGRADB epilogue; product + column sums otherwise), fp32 and bf16") {
    struct Shape {
        int64_t m, n, k;
        float alpha;
    };
    // dW [out, in] += dy^T x, db = colsum(dy), as the linear layers call it; alpha 0.5 takes the
    // product + column sums route on every GEMM kind.
    for (const GemmPrecision precision : {GemmPrecision::FP32, GemmPrecision::BF16})
        for (const Shape& s : {Shape{sized(3072, 320), sized(768, 80), sized(4 * 99, 38), 1.0f}, Shape{37, 21, 300, 1.0f},
                               Shape{37, 21, 300, 0.5f}}) {
            int64_t as, bs, cs;
            GemmArgs g = gemm_args(true, false, s.m, s.n, s.k, s.alpha, 1.0f, 1, 0, &as, &bs, &cs);
            g.precision = precision;
            Arrays in;
            in.f["a"] = randn(as);
            in.f["b"] = randn(bs);
            in.f["c"] = c_prefill(g, cs, false);
            in.f["db"] = nans(s.m);  // overwritten
            const std::string label = std::string("gemm + bias gradient ") +
                                      (precision == GemmPrecision::BF16 ? "bf16" : "fp32") + " TN " +
                                      dims({s.m, s.n, s.k}) + " alpha " + std::to_string(s.alpha).substr(0, 3);
            check_op(label, in, {"c", "db"}, [g](Backend& be, const Ptrs& p) mutable {
                g.a = p["a"];
                g.b = p["b"];
                g.c = p["c"];
                g.bias_grad = p["db"];
                be.gemm(g);
            }, gemm_tol(), false);
        }
}

// ---------------------------------------------------------------- element-wise

TEST_CASE("fill, axpy, copy_rows, add_rows") {
    for (int64_t n : {1, 13, 100003}) {
        Arrays in;
        in.f["x"] = nans(n);
        check_op("fill n=" + std::to_string(n), in, {"x"}, [n](Backend& be, const Ptrs& p) { be.fill(p["x"], -2.5f, n); });
        Arrays ax;
        ax.f["y"] = randn(n);
        ax.f["x"] = randn(n);
        check_op("axpy n=" + std::to_string(n), ax, {"y"},
                 [n](Backend& be, const Ptrs& p) { be.axpy(p["y"], p["x"], 0.75f, n); });
    }
    for (auto [rows, cols, ld_src, ld_dst] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{5, 7, 11, 9},
                                              {3, 1000, 1000, 1003}, {4, 6, 0, 6}, {1, 1, 1, 1}}) {
        const std::string shape = dims({rows, cols}) + " ld " + std::to_string(ld_src) + "->" + std::to_string(ld_dst);
        Arrays in;
        in.f["src"] = randn(std::max<int64_t>(1, (rows - 1) * ld_src + cols));
        in.f["dst"] = randn(rows * ld_dst);  // the columns past cols must stay
        Arrays nan_dst = in;
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) nan_dst.f["dst"][r * ld_dst + c] = kNaN;
        check_op("copy_rows " + shape, nan_dst, {"dst"}, [=](Backend& be, const Ptrs& p) {
            be.copy_rows(p["dst"], ld_dst, p["src"], ld_src, rows, cols);
        });
        check_op("add_rows " + shape, in, {"dst"}, [=](Backend& be, const Ptrs& p) {
            be.add_rows(p["dst"], ld_dst, p["src"], ld_src, rows, cols);
        });
    }
}

TEST_CASE("add_bias, bias_backward") {
    for (auto [rows, cols, ld] :
         {std::tuple<int64_t, int64_t, int64_t>{7, 13, 16}, {1, 1, 1}, {40, 192, 192}, {33, 5, 9}, {1000, 768, 2304}}) {
        const std::string shape = dims({rows, cols}) + " ld " + std::to_string(ld);
        Arrays in;
        in.f["out"] = randn(rows * ld);
        in.f["bias"] = randn(cols);
        check_op("add_bias " + shape, in, {"out"},
                 [=](Backend& be, const Ptrs& p) { be.add_bias(p["out"], ld, p["bias"], rows, cols); });
        Arrays bw;
        bw.f["dout"] = randn(rows * ld);
        bw.f["dbias"] = randn(cols);
        check_op("bias_backward " + shape, bw, {"dbias"},
                 [=](Backend& be, const Ptrs& p) { be.bias_backward(p["dbias"], p["dout"], ld, rows, cols); });
    }
    {  // more rows than one chunk of the column reduction, columns not a multiple of 32
        const int64_t rows = 70000, cols = 37;
        Arrays bw;
        bw.f["dout"] = randn(rows * cols);
        bw.f["dbias"] = randn(cols);
        check_op("bias_backward 70000x37", bw, {"dbias"},
                 [=](Backend& be, const Ptrs& p) { be.bias_backward(p["dbias"], p["dout"], cols, rows, cols); });
    }
}

TEST_CASE("gelu forward (and in place), backward") {
    for (int64_t n : {1, 7, 13, 1000, 300001}) {
        Arrays in;
        in.f["x"] = randn(n, 3.0f);
        if (n >= 7) {
            const float specials[] = {-10.0f, -5.0f, -0.0f, 0.0f, 5.0f, 10.0f, -1.5f};
            std::copy(specials, specials + 7, in.f["x"].begin());
        }
        in.f["out"] = nans(n);
        check_op("gelu_forward n=" + std::to_string(n), in, {"out"},
                 [n](Backend& be, const Ptrs& p) { be.gelu_forward(p["out"], p["x"], n); });
        Arrays ip;
        ip.f["x"] = in.f["x"];
        check_op("gelu_forward in place n=" + std::to_string(n), ip, {"x"},
                 [n](Backend& be, const Ptrs& p) { be.gelu_forward(p["x"], p["x"], n); });
        Arrays bw;
        bw.f["x"] = in.f["x"];
        bw.f["dout"] = randn(n);
        bw.f["dx"] = randn(n);
        check_op("gelu_backward n=" + std::to_string(n), bw, {"dx"},
                 [n](Backend& be, const Ptrs& p) { be.gelu_backward(p["dx"], p["dout"], p["x"], n); });
    }
}

TEST_CASE("residual forward (aliased too), backward, with and without gamma and sample scale") {
    for (auto [B, T, C] : {std::tuple<int64_t, int64_t, int64_t>{2, 3, 5}, {3, 7, 13}, {1, 1, 1}, {sized(4, 2), 99, sized(768, 80)}}) {
        for (int variant = 0; variant < 4; ++variant) {
            const bool with_gamma = variant & 1, with_scale = variant & 2;
            const int64_t n = B * T * C;
            const std::string name = "residual " + dims({B, T, C}) + (with_gamma ? " gamma" : "") +
                                     (with_scale ? " sample_scale" : "");
            Arrays in;
            in.f["x"] = randn(n);
            in.f["y"] = randn(n);
            in.f["gamma"] = randn(C);
            in.f["scale"] = randn(B, 0.5f, 1.0f);
            in.f["out"] = nans(n);
            auto g = [=](const Ptrs& p) { return with_gamma ? p["gamma"] : nullptr; };
            auto s = [=](const Ptrs& p) { return with_scale ? p["scale"] : nullptr; };
            check_op(name + ": forward", in, {"out"}, [=](Backend& be, const Ptrs& p) {
                be.residual_forward(p["out"], p["x"], p["y"], g(p), s(p), B, T, C);
            });
            check_op(name + ": forward, out aliasing x", in, {"x"}, [=](Backend& be, const Ptrs& p) {
                be.residual_forward(p["x"], p["x"], p["y"], g(p), s(p), B, T, C);
            });
            Arrays bw;
            bw.f["dout"] = randn(n);
            bw.f["y"] = in.f["y"];
            bw.f["gamma"] = in.f["gamma"];
            bw.f["scale"] = in.f["scale"];
            bw.f["dx"] = randn(n);
            bw.f["dy"] = randn(n);
            bw.f["dgamma"] = randn(C);
            check_op(name + ": backward", bw, {"dx", "dy", "dgamma"}, [=](Backend& be, const Ptrs& p) {
                be.residual_backward(p["dx"], p["dy"], with_gamma ? p["dgamma"] : nullptr, p["dout"], p["y"], g(p),
                                     s(p), B, T, C);
            });
            check_op(name + ": backward, dy only", bw, {"dy"}, [=](Backend& be, const Ptrs& p) {
                be.residual_backward(nullptr, p["dy"], nullptr, p["dout"], p["y"], g(p), s(p), B, T, C);
            });
            // The bf16 form: dy written as bf16, widened and compared with the CPU's; dgamma as above.
            Arrays b16 = bw;
            b16.f["dy16"] = bf16_nans(n);
            auto op16 = [=](Backend& be, const Ptrs& p) {
                be.residual_backward(nullptr, Dest::rounded(reinterpret_cast<uint16_t*>(p["dy16"])), with_gamma ? p["dgamma"] : nullptr,
                                          p["dout"], p["y"], g(p), s(p), B, T, C);
            };
            const Arrays want16 = run_on(cpu(), b16, op16), got16 = run_on(gpu(), b16, op16);
            Vec gw(static_cast<size_t>(n)), ww(static_cast<size_t>(n));
            const uint16_t* gh = reinterpret_cast<const uint16_t*>(got16.f.at("dy16").data());
            const uint16_t* wh = reinterpret_cast<const uint16_t*>(want16.f.at("dy16").data());
            for (int64_t i = 0; i < n; ++i) {
                gw[static_cast<size_t>(i)] = bf16_to_float(gh[i]);
                ww[static_cast<size_t>(i)] = bf16_to_float(wh[i]);
            }
            const Diff d = compare(gw, ww);
            harness::check(d.nan_mismatch == 0, name + ": backward bf16 dy: NaN where the reference has a number");
            harness::check_error(name + ": backward bf16 dy", d.rel, 1e-4);
            harness::check_error(name + ": backward bf16 dgamma", compare(got16.f.at("dgamma"), want16.f.at("dgamma")).rel,
                                 1e-5);
        }
    }
}

// ---------------------------------------------------------------- layernorm, normalize_rows

// The bf16-output forms of LayerNorm and GELU: the outputs (held as pairs of bf16 in float
// words, prefilled with bf16 NaNs) are widened and compared with the CPU's, and with the fp32
// op's output rounded on the host; the tolerance allows a rare value that an fp32 difference
// in the last bit rounds to the other bf16 neighbour.
TEST_CASE("layernorm_forward, gelu_forward, gelu_backward into bf16 destinations = the fp32 ops rounded") {
    auto widen = [](const Vec& packed, int64_t n) {
        Vec out(static_cast<size_t>(n));
        const uint16_t* h = reinterpret_cast<const uint16_t*>(packed.data());
        for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = bf16_to_float(h[i]);
        return out;
    };
    auto rounded = [](const Vec& v) {
        Vec out(v.size());
        for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_to_float(float_to_bf16(v[i]));
        return out;
    };
    auto check = [&](const std::string& label, const Vec& got, const Vec& want) {
        const Diff d = compare(got, want);
        harness::check(d.nan_mismatch == 0, label + ": NaN where the reference has a number (or unwritten)");
        harness::check_error(label, d.rel, 1e-4);
    };
    for (auto [rows, C] : {std::pair<int64_t, int64_t>{7, 13}, {4 * 99, 768}}) {
        Arrays in;
        in.f["x"] = randn(rows * C, 2.0f, 0.5f);
        in.f["w"] = randn(C, 0.2f, 1.0f);
        in.f["b"] = randn(C, 0.1f);
        in.f["out16"] = bf16_nans(rows * C);
        in.f["mean"] = nans(rows);
        in.f["rstd"] = nans(rows);
        in.f["ref"] = nans(rows * C);
        auto op = [=](Backend& be, const Ptrs& p) {
            be.layernorm_forward(Dest::rounded(reinterpret_cast<uint16_t*>(p["out16"])), p["mean"], p["rstd"], p["x"], p["w"],
                                      p["b"], rows, C, 1e-6f);
            be.layernorm_forward(p["ref"], nullptr, nullptr, p["x"], p["w"], p["b"], rows, C, 1e-6f);
        };
        const Arrays want = run_on(cpu(), in, op), got = run_on(gpu(), in, op);
        const std::string label = "layernorm_forward to bf16 " + dims({rows, C});
        check(label + " vs cpu", widen(got.f.at("out16"), rows * C), widen(want.f.at("out16"), rows * C));
        check(label + " vs its own fp32 output rounded", widen(got.f.at("out16"), rows * C), rounded(got.f.at("ref")));
        check(label + ": mean, rstd", got.f.at("rstd"), want.f.at("rstd"));
    }
    for (int64_t n : {int64_t{1}, int64_t{1001}, int64_t{4 * 99 * 3072}}) {
        Arrays in;
        in.f["x"] = randn(n, 2.0f);
        in.f["out16"] = bf16_nans(n);
        in.f["ref"] = nans(n);
        auto op = [=](Backend& be, const Ptrs& p) {
            be.gelu_forward(Dest::rounded(reinterpret_cast<uint16_t*>(p["out16"])), p["x"], n);
            be.gelu_forward(p["ref"], p["x"], n);
        };
        const Arrays want = run_on(cpu(), in, op), got = run_on(gpu(), in, op);
        const std::string label = "gelu_forward to bf16 n " + std::to_string(n);
        check(label + " vs cpu", widen(got.f.at("out16"), n), widen(want.f.at("out16"), n));
        check(label + " vs its own fp32 output rounded", widen(got.f.at("out16"), n), rounded(got.f.at("ref")));
        // gelu_backward to bf16: dout * GELU'(x) written as bf16 (overwriting), against gelu_backward into zeros
        in.f["dout"] = randn(n);
        in.f["dx16"] = bf16_nans(n);
        in.f["dx"] = Vec(static_cast<size_t>(n), 0.0f);
        auto bw = [=](Backend& be, const Ptrs& p) {
            be.gelu_backward(Dest::rounded(reinterpret_cast<uint16_t*>(p["dx16"])), p["dout"], p["x"], n);
            be.gelu_backward(p["dx"], p["dout"], p["x"], n);
        };
        const Arrays want_b = run_on(cpu(), in, bw), got_b = run_on(gpu(), in, bw);
        const std::string blabel = "gelu_backward to bf16 n " + std::to_string(n);
        check(blabel + " vs cpu", widen(got_b.f.at("dx16"), n), widen(want_b.f.at("dx16"), n));
        check(blabel + " vs its own fp32 gradient rounded", widen(got_b.f.at("dx16"), n), rounded(got_b.f.at("dx")));
    }
}

TEST_CASE("attention_forward and attention_backward into bf16 destinations") {
    auto widen = [](const Vec& packed, int64_t n) {
        Vec out(static_cast<size_t>(n));
        const uint16_t* h = reinterpret_cast<const uint16_t*>(packed.data());
        for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = bf16_to_float(h[i]);
        return out;
    };
    for (const GemmPrecision precision : {GemmPrecision::FP32, GemmPrecision::BF16}) {
        const int64_t B = 2, H = 12, N = 99, hd = 64, D = H * hd;
        AttentionShape s = attention_shape(B, H, N, N, hd, precision);
        s.ldq = s.ldk = s.ldv = 3 * D;
        Arrays in;
        in.f["qkv"] = randn(B * N * 3 * D, 0.6f);
        in.f["out16"] = bf16_nans(B * N * D);
        in.f["ref"] = nans(B * N * D);
        auto op = [=](Backend& be, const Ptrs& p) {
            be.attention_forward(Dest::rounded(reinterpret_cast<uint16_t*>(p["out16"])), nullptr, p["qkv"], p["qkv"] + D,
                                      p["qkv"] + 2 * D, s);
            be.attention_forward(p["ref"], nullptr, p["qkv"], p["qkv"] + D, p["qkv"] + 2 * D, s);
        };
        const Arrays want = run_on(cpu(), in, op), got = run_on(gpu(), in, op);
        const std::string label = std::string("attention_forward to bf16 ") +
                                  (precision == GemmPrecision::BF16 ? "bf16" : "fp32") + " products";
        const Vec g16 = widen(got.f.at("out16"), B * N * D), w16 = widen(want.f.at("out16"), B * N * D);
        Vec own(g16.size());
        for (size_t i = 0; i < own.size(); ++i) own[i] = bf16_to_float(float_to_bf16(got.f.at("ref")[i]));
        for (const auto& [what, ref] : {std::pair<const char*, const Vec*>{" vs cpu", &w16}, {" vs its own fp32 output rounded", &own}}) {
            const Diff d = compare(g16, *ref);
            harness::check(d.nan_mismatch == 0, label + what + ": NaN where the reference has a number (or unwritten)");
            harness::check_error(label + what, d.rel, 1e-4);
        }
        // attention_backward to bf16: dq, dk, dv written as bf16 into the column blocks of one [B, N, 3D]
        // buffer (prefilled with bf16 NaNs: every element must be written), against the CPU's
        Arrays bw;
        bw.f["qkv"] = in.f["qkv"];
        bw.f["dout"] = randn(B * N * D);
        bw.f["probs"] = nans(B * H * N * N);
        bw.f["dqkv16"] = bf16_nans(B * N * 3 * D);
        auto op_b = [=](Backend& be, const Ptrs& p) {
            be.attention_forward(p["ref"], p["probs"], p["qkv"], p["qkv"] + D, p["qkv"] + 2 * D, s);
            auto* g16 = reinterpret_cast<uint16_t*>(p["dqkv16"]);
            be.attention_backward(Dest::rounded(g16), Dest::rounded(g16 + D), Dest::rounded(g16 + 2 * D), p["dout"], p["probs"], p["qkv"], p["qkv"] + D,
                                       p["qkv"] + 2 * D, s);
        };
        bw.f["ref"] = nans(B * N * D);
        const Arrays want_b = run_on(cpu(), bw, op_b), got_b = run_on(gpu(), bw, op_b);
        const Diff db = compare(widen(got_b.f.at("dqkv16"), B * N * 3 * D), widen(want_b.f.at("dqkv16"), B * N * 3 * D));
        const std::string blabel = std::string("attention_backward to bf16 ") +
                                   (precision == GemmPrecision::BF16 ? "bf16" : "fp32") + " products";
        harness::check(db.nan_mismatch == 0, blabel + ": NaN where the reference has a number (or unwritten)");
        harness::check_error(blabel + " vs cpu", db.rel, precision == GemmPrecision::BF16 ? 1e-3 : 1e-4);
    }
}

TEST_CASE("residual_layernorm_forward: fp32 and bf16 output, with and without gamma and sample scale") {
    const int64_t B = 3, T = 33, C = 768;
    for (int variant = 0; variant < 4; ++variant) {
        const bool with_gamma = variant & 1, with_scale = variant & 2;
        Arrays in;
        in.f["x"] = randn(B * T * C, 1.5f, 0.3f);
        in.f["y"] = randn(B * T * C);
        in.f["gamma"] = randn(C, 0.1f);
        in.f["scale"] = Vec{0.0f, 1.25f, 1.25f};
        in.f["w"] = randn(C, 0.2f, 1.0f);
        in.f["b"] = randn(C, 0.1f);
        in.f["mid"] = nans(B * T * C);
        in.f["out"] = nans(B * T * C);
        in.f["mean"] = nans(B * T);
        in.f["rstd"] = nans(B * T);
        const std::string name = std::string("residual_layernorm_forward") + (with_gamma ? " gamma" : "") +
                                 (with_scale ? " scale" : "");
        check_op(name, in, {"mid", "out", "mean", "rstd"}, [=](Backend& be, const Ptrs& p) {
            be.residual_layernorm_forward(p["mid"], p["out"], p["mean"], p["rstd"], p["x"], p["y"],
                                          with_gamma ? p["gamma"] : nullptr, with_scale ? p["scale"] : nullptr, p["w"],
                                          p["b"], B, T, C, 1e-6f);
        });
        // bf16 output: its widened values against the fp32 output of the same call rounded.
        Arrays in16 = in;
        in16.f["out"] = bf16_nans(B * T * C);
        in16.f["ref"] = nans(B * T * C);
        auto op16 = [=](Backend& be, const Ptrs& p) {
            be.residual_layernorm_forward(p["mid"], Dest::rounded(reinterpret_cast<uint16_t*>(p["out"])), p["mean"], p["rstd"],
                                          p["x"], p["y"], with_gamma ? p["gamma"] : nullptr,
                                          with_scale ? p["scale"] : nullptr, p["w"], p["b"], B, T, C, 1e-6f);
            be.residual_layernorm_forward(p["mid"], p["ref"], p["mean"], p["rstd"], p["x"], p["y"],
                                          with_gamma ? p["gamma"] : nullptr, with_scale ? p["scale"] : nullptr, p["w"],
                                          p["b"], B, T, C, 1e-6f);
        };
        const Arrays got = run_on(gpu(), in16, op16);
        const uint16_t* h = reinterpret_cast<const uint16_t*>(got.f.at("out").data());
        Vec wide(static_cast<size_t>(B * T * C)), want(wide.size());
        for (size_t i = 0; i < wide.size(); ++i) {
            wide[i] = bf16_to_float(h[i]);
            want[i] = bf16_to_float(float_to_bf16(got.f.at("ref")[i]));
        }
        const Diff d = compare(wide, want);
        harness::check(d.nan_mismatch == 0, name + " bf16: every output written");
        harness::check_error(name + " bf16 out = its fp32 out rounded", d.rel, 0.0);
    }
}

TEST_CASE("layernorm forward and backward; nullptr outputs skipped") {
    for (auto [rows, C] : {std::pair<int64_t, int64_t>{7, 13}, {4, 8}, {3, 192}, {16, 37}, {1000, 768}, {5, 3000}}) {
        const int64_t n = rows * C;
        const std::string name = "layernorm " + dims({rows, C});
        Arrays in;
        in.f["x"] = randn(n, 2.0f, 0.5f);
        in.f["w"] = randn(C, 0.5f, 1.0f);
        in.f["b"] = randn(C);
        in.f["out"] = nans(n);
        in.f["mean"] = nans(rows);
        in.f["rstd"] = nans(rows);
        check_op(name + ": forward", in, {"out", "mean", "rstd"}, [=](Backend& be, const Ptrs& p) {
            be.layernorm_forward(p["out"], p["mean"], p["rstd"], p["x"], p["w"], p["b"], rows, C, 1e-6f);
        });
        // The statistics from the CPU, as the backward's inputs on both backends.
        Arrays stats = run_on(cpu(), in, [=](Backend& be, const Ptrs& p) {
            be.layernorm_forward(p["out"], p["mean"], p["rstd"], p["x"], p["w"], p["b"], rows, C, 1e-6f);
        });
        Arrays bw;
        bw.f["x"] = in.f["x"];
        bw.f["w"] = in.f["w"];
        bw.f["mean"] = stats.f["mean"];
        bw.f["rstd"] = stats.f["rstd"];
        bw.f["dout"] = randn(n);
        bw.f["dx"] = randn(n);
        bw.f["dw"] = randn(C);
        bw.f["db"] = randn(C);
        check_op(name + ": backward", bw, {"dx", "dw", "db"}, [=](Backend& be, const Ptrs& p) {
            be.layernorm_backward(p["dx"], p["dw"], p["db"], p["dout"], p["x"], p["w"], p["mean"], p["rstd"], rows, C);
        });
        check_op(name + ": backward, dweight only", bw, {"dw"}, [=](Backend& be, const Ptrs& p) {
            be.layernorm_backward(nullptr, p["dw"], nullptr, p["dout"], p["x"], p["w"], p["mean"], p["rstd"], rows, C);
        });
        check_op(name + ": backward, dx only", bw, {"dx"}, [=](Backend& be, const Ptrs& p) {
            be.layernorm_backward(p["dx"], nullptr, nullptr, p["dout"], p["x"], p["w"], p["mean"], p["rstd"], rows, C);
        });
    }
}

TEST_CASE("normalize_rows (unbiased variance, constant rows, P = 1)") {
    for (auto [rows, P] : {std::pair<int64_t, int64_t>{7, 13}, {5, 48}, {3, 768}, {2, 2}, {4, 1}, {8192, 768}}) {
        Arrays in;
        in.f["x"] = randn(rows * P, 0.3f, 0.6f);
        for (int64_t c = 0; c < P; ++c) in.f["x"][c] = 0.25f;  // a constant row: var 0
        check_op("normalize_rows " + dims({rows, P}), in, {"x"},
                 [=](Backend& be, const Ptrs& p) { be.normalize_rows(p["x"], rows, P, 1e-6f); });
    }
}

// ---------------------------------------------------------------- attention

// BF16 (both backends round the six products' operands): the tolerance is 1e-4, since an fp32
// score that differs in its last bits may round its probability to the other bf16 neighbour;
// the inputs are halved so that the softmax is flatter and such a flip moves little.
TEST_CASE("attention forward (out, probs) and backward (dq, dk, dv; dv alone), fp32 and bf16") {
    struct Case {
        const char* name;
        int64_t batch, heads, nq, nk, hd;
        bool fused;  // q, k, v column blocks of one [B, N, 3D] buffer; else q alone, k|v fused [B, Nk, 2D]
        int64_t q_pad, o_pad;
    };
    const Case cases[] = {
        {"self, fused qkv", 2, 3, 5, 5, 7, true, 0, 2},
        {"cross, Nq != Nk, padded q", 2, 3, 5, 9, 7, false, 4, 0},
        {"1 token, head_dim 1", 1, 1, 1, 1, 1, true, 0, 0},
        {"vector tails", 2, 2, 17, 33, 16, false, 1, 3},
        {"ViT-B encoder (4 x 12 heads x 99 tokens)", 4, 12, 99, 99, 64, true, 0, 0},
        {"regressor-like cross (Nk 196, Nq 98)", 2, 12, 98, 196, 64, false, 0, 0},
        {"long rows (Nk 300)", 1, 2, 20, 300, 32, false, 0, 5},
        {"head dim 32, 65 queries, 130 keys", 2, 4, 65, 130, 32, false, 1, 2},
        {"head dim 48, 70 queries, 33 keys", 2, 2, 70, 33, 48, false, 3, 1},
        {"ViT-H/16 (2 x 4 heads x 197, head dim 80)", 2, 4, 197, 197, 80, true, 0, 0},
        {"head dim 96, 98 queries, 150 keys", 2, 3, 98, 150, 96, false, 2, 0},
        {"head dim 128, 256 queries and keys", 1, 2, 256, 256, 128, true, 0, 4},
    };
    for (const GemmPrecision precision : {GemmPrecision::FP32, GemmPrecision::BF16})
    for (Case c : cases) {
        if (!full_size() && c.batch * c.heads * c.nq * c.nk * c.hd > 200000) {  // fewer pairs, the same rows
            c.batch = 1;
            c.heads = std::min<int64_t>(c.heads, 2);
        }
        const bool bf16 = precision == GemmPrecision::BF16;
        const double tol = bf16 ? 1e-4 : gemm_tol();
        const int64_t D = c.heads * c.hd;
        AttentionShape s = attention_shape(c.batch, c.heads, c.nq, c.nk, c.hd, precision);
        s.scale = 1.0f / std::sqrt(static_cast<float>(c.hd)) * 1.3f;
        s.ldo = D + c.o_pad;
        int64_t qo, ko, vo, size;
        if (c.fused) {
            s.ldq = s.ldk = s.ldv = 3 * D;
            qo = 0, ko = D, vo = 2 * D;
            size = c.batch * c.nq * 3 * D;
        } else {
            s.ldq = D + c.q_pad;
            s.ldk = s.ldv = 2 * D;
            qo = 0;
            ko = c.batch * c.nq * s.ldq;
            vo = ko + D;
            size = ko + c.batch * c.nk * 2 * D;
        }
        const std::string name = std::string("attention ") + (bf16 ? "bf16 " : "") + c.name + " " +
                                 dims({c.batch, c.heads, c.nq, c.nk, c.hd});
        const int64_t out_size = c.batch * c.nq * s.ldo, probs_size = c.batch * c.heads * c.nq * c.nk;
        Arrays in;
        in.f["qkv"] = randn(size, bf16 ? 0.5f : 1.0f);  // bf16: a flatter softmax (see above)
        in.f["out"] = nans(out_size);
        in.f["probs"] = nans(probs_size);
        check_op(name + ": forward", in, {"out", "probs"}, [=](Backend& be, const Ptrs& p) {
            be.attention_forward(p["out"], p["probs"], p["qkv"] + qo, p["qkv"] + ko, p["qkv"] + vo, s);
        }, tol, false);
        Arrays bw;
        bw.f["qkv"] = in.f["qkv"];
        bw.f["dout"] = randn(out_size);
        bw.f["grad"] = randn(size);  // accumulated into; its padding must stay
        auto backward = [=](bool with_dq, bool with_dk, bool with_dv) {
            return [=](Backend& be, const Ptrs& p) {
                float* probs = static_cast<float*>(be.alloc(static_cast<size_t>(probs_size) * sizeof(float)));
                float* out = static_cast<float*>(be.alloc(static_cast<size_t>(out_size) * sizeof(float)));
                be.attention_forward(out, probs, p["qkv"] + qo, p["qkv"] + ko, p["qkv"] + vo, s);
                be.attention_backward(with_dq ? p["grad"] + qo : nullptr, with_dk ? p["grad"] + ko : nullptr,
                                      with_dv ? p["grad"] + vo : nullptr, p["dout"], probs, p["qkv"] + qo,
                                      p["qkv"] + ko, p["qkv"] + vo, s);
                be.release(out);
                be.release(probs);
            };
        };
        check_op(name + ": backward", bw, {"grad"}, backward(true, true, true), tol, false);
        check_op(name + ": backward, dv alone", bw, {"grad"}, backward(false, false, true), tol, false);
        check_op(name + ": backward, dq alone", bw, {"grad"}, backward(true, false, false), tol, false);
    }
}

// ---------------------------------------------------------------- tokens and patches

TEST_CASE("gather_tokens (strided, broadcast + accumulate), scatter_add_tokens (strided, shared dx)") {
    for (auto [B, N, n_sel, C] :
         {std::tuple<int64_t, int64_t, int64_t, int64_t>{3, 7, 4, 5}, {2, 50, 25, 192}, {1, 1, 1, 1}, {8, 196, 98, 768}}) {
        const IVec idx = random_indices(B, N, n_sel);
        const std::string name = dims({B, N, n_sel, C});
        for (int mode = 0; mode < 2; ++mode) {
            const bool broadcast = mode == 1;
            const int64_t xb = broadcast ? 0 : N * C + 2, ob = n_sel * C + 3;
            Arrays in;
            in.i["idx"] = idx;
            in.f["x"] = randn(broadcast ? N * C : B * xb);
            in.f["out"] = broadcast ? randn(B * ob) : nans(B * ob);
            if (!broadcast)  // the gaps between batch items are not written
                for (int64_t b = 0; b < B; ++b)
                    for (int64_t k = n_sel * C; k < ob; ++k) in.f["out"][b * ob + k] = 1.0f;
            check_op(std::string("gather_tokens ") + name + (broadcast ? " broadcast x, accumulate" : " strided"), in,
                     {"out"}, [=](Backend& be, const Ptrs& p) {
                         be.gather_tokens(p["out"], ob, p["x"], xb, p.idx("idx"), B, n_sel, C, broadcast);
                     });
            Arrays sc;
            sc.i["idx"] = idx;
            sc.f["dout"] = randn(B * ob);
            sc.f["dx"] = randn(broadcast ? N * C : B * xb);
            check_op(std::string("scatter_add_tokens ") + name + (broadcast ? " dx_bstride 0" : " strided"), sc, {"dx"},
                     [=](Backend& be, const Ptrs& p) {
                         be.scatter_add_tokens(p["dx"], xb, p["dout"], ob, p.idx("idx"), B, n_sel, C);
                     });
        }
    }
}

TEST_CASE("patchify, both orders") {
    for (auto [B, C, H, W, p] : {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>{2, 3, 8, 12, 4},
                                 {3, 1, 28, 28, 4}, {1, 2, 3, 3, 1}, {4, 3, 224, 224, 16}, {2, 3, 10, 10, 3}}) {
        const int64_t gh = H / p, gw = W / p, P = C * p * p;
        for (PatchOrder order : {PatchOrder::ChannelsFirst, PatchOrder::PixelsFirst}) {
            Arrays in;
            in.f["img"] = randn(B * C * H * W);
            in.f["out"] = nans(B * gh * gw * P);
            check_op(std::string("patchify ") + dims({B, C, H, W}) + " p" + std::to_string(p) +
                         (order == PatchOrder::ChannelsFirst ? " (c,py,px)" : " (py,px,c)"),
                     in, {"out"},
                     [=](Backend& be, const Ptrs& q) { be.patchify(q["out"], q["img"], B, C, H, W, p, order); });
        }
    }
}

TEST_CASE("patchify_gather (the masked and visible patches of CAE-B and a small image), both orders") {
    for (auto [B, C, H, W, p, n_sel] : {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>{4, 3, 224, 224, 16, 98},
                                        {3, 1, 28, 28, 4, 25}, {2, 3, 10, 10, 3, 1}}) {
        const int64_t N = (H / p) * (W / p), P = C * p * p;
        for (PatchOrder order : {PatchOrder::ChannelsFirst, PatchOrder::PixelsFirst}) {
            Arrays in;
            in.i["idx"] = random_indices(B, N, n_sel);
            in.f["img"] = randn(B * C * H * W);
            in.f["out"] = nans(B * n_sel * P);
            check_op(std::string("patchify_gather ") + dims({B, C, H, W}) + " p" + std::to_string(p) + " n_sel " +
                         std::to_string(n_sel) + (order == PatchOrder::ChannelsFirst ? " (c,py,px)" : " (py,px,c)"),
                     in, {"out"}, [=](Backend& be, const Ptrs& q) {
                         be.patchify_gather(q["out"], q["img"], q.idx("idx"), B, n_sel, C, H, W, p, order);
                     });
        }
    }
}

// ---------------------------------------------------------------- losses

// Empty inputs have well-defined results: the loss and norm of nothing are 0, attention without
// keys is an empty sum (zeros, fp32 and bf16 outputs).
TEST_CASE("empty inputs: mse and l2_norm of n = 0, attention without keys") {
    Arrays in;
    in.f["x"] = randn(4);
    in.f["loss"] = nans(1);
    in.f["norm"] = nans(1);
    check_op("mse_forward, l2_norm n=0", in, {"loss", "norm"}, [](Backend& be, const Ptrs& p) {
        be.mse_forward(p["loss"], p["x"], p["x"], 0);
        be.l2_norm(p["norm"], p["x"], 0);
    });
    for (const GemmPrecision precision : {GemmPrecision::FP32, GemmPrecision::BF16}) {
        const bool bf16 = precision == GemmPrecision::BF16;
        AttentionShape s = attention_shape(2, 3, 5, 0, 16, precision);
        s.ldo = s.ldq + 2;
        Arrays a;
        a.f["q"] = randn(s.batch * s.q_len * s.ldq);
        a.f["kv"] = randn(4);
        a.f["out"] = bf16 ? bf16_nans(s.batch * s.q_len * s.ldo) : nans(s.batch * s.q_len * s.ldo);
        check_op(std::string("attention ") + (bf16 ? "bf16 output " : "") + "with 0 keys", a, {"out"},
                 [s, bf16](Backend& be, const Ptrs& p) {
                     if (bf16) {
                         be.attention_forward(Dest::rounded(reinterpret_cast<uint16_t*>(p["out"])), nullptr, p["q"], p["kv"],
                                                   p["kv"], s);
                     } else {
                         be.attention_forward(p["out"], nullptr, p["q"], p["kv"], p["kv"], s);
                     }
                 });
    }
}

TEST_CASE("mse forward and backward, l2_norm") {
    for (int64_t n : {int64_t{1}, int64_t{13}, int64_t{1000}, int64_t{100003}, sized(4000037, 300007)}) {
        Arrays in;
        in.f["pred"] = randn(n);
        in.f["target"] = randn(n);
        in.f["loss"] = nans(1);
        in.f["norm"] = nans(1);
        in.f["dpred"] = randn(n, 1.0f / static_cast<float>(n));
        check_op("mse_forward, l2_norm n=" + std::to_string(n), in, {"loss", "norm"}, [n](Backend& be, const Ptrs& p) {
            be.mse_forward(p["loss"], p["pred"], p["target"], n);
            be.l2_norm(p["norm"], p["pred"], n);
        });
        check_op("mse_backward n=" + std::to_string(n) + " scale 0.7", in, {"dpred"}, [n](Backend& be, const Ptrs& p) {
            be.mse_backward(p["dpred"], p["pred"], p["target"], n, 0.7f);
        });
    }
}

// ---------------------------------------------------------------- AdamW

TEST_CASE("adamw: segments with gaps, no clipping / clipping / clip above the norm, 5 steps") {
    const int64_t n = 300000;
    const AdamWSegment segs[] = {{0, 1000, 0.05f}, {1050, 37, 0.0f}, {1087, 200000, 0.1f}, {250000, 50000, 0.05f}};
    for (int clip_mode = 0; clip_mode < 3; ++clip_mode) {
        const char* mode = clip_mode == 0 ? "no clipping" : clip_mode == 1 ? "clipping active" : "clip above the norm";
        Arrays st;
        st.f["p"] = randn(n, 0.1f);
        st.f["m"] = randn(n, 0.01f);
        Vec v = randn(n, 0.01f);
        for (float& x : v) x = x * x;
        st.f["v"] = v;
        double worst_update = 0.0, worst_m = 0.0, worst_v = 0.0;
        bool gaps_kept = true, deterministic = true;
        for (int64_t step = 1; step <= 5; ++step) {
            Vec g = randn(n, 0.05f);
            double sq = 0.0;
            for (float x : g) sq += static_cast<double>(x) * x;
            const float norm = static_cast<float>(std::sqrt(sq));
            AdamWParams hp;
            hp.lr = 1e-2f;
            hp.step = step;
            hp.max_grad_norm = clip_mode == 0 ? 0.0f : clip_mode == 1 ? 0.5f * norm : 10.0f * norm;
            Arrays in = st;
            in.f["g"] = g;
            in.f["norm"] = Vec{norm};
            // With clipping active, the bf16 copy too (zeros before: the gaps must stay zero).
            if (clip_mode == 1) in.f["p16"] = Vec(static_cast<size_t>((n + 1) / 2), 0.0f);
            auto op = [&](Backend& be, const Ptrs& p) {
                uint16_t* p16 = p.f.count("p16") ? reinterpret_cast<uint16_t*>(p["p16"]) : nullptr;
                be.adamw(p["p"], p["g"], p["m"], p["v"], segs, 4, hp, p["norm"], p16);
            };
            Arrays again;
            const Arrays want = run_on(cpu(), in, op);
            const Arrays got = run_on(gpu(), in, op, &again);
            // The update of this step (p - p_before) is small next to p: compare it.
            Vec du_got(n), du_want(n);
            for (int64_t i = 0; i < n; ++i) {
                du_got[i] = got.f.at("p")[i] - in.f["p"][i];
                du_want[i] = want.f.at("p")[i] - in.f["p"][i];
            }
            worst_update = std::max(worst_update, compare(du_got, du_want).rel);
            worst_m = std::max(worst_m, compare(got.f.at("m"), want.f.at("m")).rel);
            worst_v = std::max(worst_v, compare(got.f.at("v"), want.f.at("v")).rel);
            for (const char* name : {"p", "m", "v"}) {
                deterministic = deterministic && std::memcmp(got.f.at(name).data(), again.f.at(name).data(), n * 4) == 0;
                for (int64_t i : {int64_t{1000}, int64_t{1049}, int64_t{201087}, int64_t{249999}})
                    gaps_kept = gaps_kept && got.f.at(name)[i] == in.f[name][i];
            }
            if (clip_mode == 1) {
                const uint16_t* c16 = reinterpret_cast<const uint16_t*>(got.f.at("p16").data());
                bool copy_ok = true;
                for (int64_t i = 0; i < n; ++i) {
                    bool inside = false;
                    for (const AdamWSegment& sg : segs) inside = inside || (i >= sg.offset && i < sg.offset + sg.count);
                    copy_ok = copy_ok && c16[i] == (inside ? float_to_bf16(got.f.at("p")[i]) : uint16_t{0});
                }
                harness::check(copy_ok, std::string("adamw ") + mode + ": the bf16 copy is the rounding of the new parameters");
            }
            st = want;  // the next step starts from the CPU's state on both
            st.f.erase("g");
            st.f.erase("norm");
            st.f.erase("p16");
        }
        harness::check_error(std::string("adamw ") + mode + ": parameter updates (5 steps, worst)", worst_update, kTol);
        harness::check_error(std::string("adamw ") + mode + ": m (worst)", worst_m, kTol);
        harness::check_error(std::string("adamw ") + mode + ": v (worst)", worst_v, kTol);
        harness::check(gaps_kept, std::string("adamw ") + mode + ": parameters outside the segments changed");
        harness::check(deterministic, std::string("adamw ") + mode + ": two CUDA runs differ");
    }
}

// ---------------------------------------------------------------- the backend itself

TEST_CASE("memory: zero-filled (also when reused), counted, pinned, copies, fill_bytes") {
    Backend& be = gpu();
    const MemorySnapshot before = memory_snapshot();
    const size_t bytes = 1000003;
    void* a = be.alloc(bytes);
    harness::check(memory_snapshot().device_bytes - before.device_bytes == static_cast<int64_t>(bytes),
                   "alloc counts its bytes as device bytes");
    harness::check(reinterpret_cast<uintptr_t>(a) % 64 == 0, "64-byte aligned");
    be.fill_bytes(a, 0x7f, bytes);
    be.release(a);
    void* b = be.alloc(bytes);  // the cached block, most likely
    std::vector<uint8_t> h(bytes, 1);
    be.copy_to_host(h.data(), b, bytes);
    harness::check(std::all_of(h.begin(), h.end(), [](uint8_t x) { return x == 0; }), "a reused block comes back zeroed");
    // copy_to_device from pageable memory: the source may be overwritten right after.
    std::vector<float> src(bytes / 4, 3.0f);
    be.copy_to_device(b, src.data(), src.size() * 4);
    std::fill(src.begin(), src.end(), -1.0f);
    std::vector<float> back(src.size());
    be.copy_to_host(back.data(), b, back.size() * 4);
    harness::check(std::all_of(back.begin(), back.end(), [](float x) { return x == 3.0f; }),
                   "copy_to_device is complete when it returns");
    void* c = be.alloc(bytes);
    be.copy_on_device(c, b, src.size() * 4);
    be.copy_to_host(back.data(), c, back.size() * 4);
    harness::check(std::all_of(back.begin(), back.end(), [](float x) { return x == 3.0f; }), "copy_on_device");
    float* pinned = static_cast<float*>(be.alloc_pinned_host(4096));
    harness::check(std::all_of(pinned, pinned + 1024, [](float x) { return x == 0.0f; }), "pinned memory is zeroed");
    for (int i = 0; i < 1024; ++i) pinned[i] = static_cast<float>(i);
    be.copy_to_device(c, pinned, 4096);
    for (int i = 0; i < 1024; ++i) pinned[i] = -1.0f;
    be.copy_to_host(back.data(), c, 4096);
    bool ok = true;
    for (int i = 0; i < 1024; ++i) ok = ok && back[i] == static_cast<float>(i);
    harness::check(ok, "copy_to_device from pinned memory is complete when it returns");
    be.release_pinned_host(pinned);
    be.release(b);
    be.release(c);
    be.synchronize();
    const MemorySnapshot after = memory_snapshot();
    harness::check(after.device_bytes == before.device_bytes && after.host_bytes == before.host_bytes,
                   "device and host bytes return to where they were");
}

// A block that an op allocates and releases while a recording (CUDA graph) is made belongs to the
// recording, whose replays write it again: it must not go back to the shared cache, or a later
// allocation would share memory with the graph.
TEST_CASE("recording: blocks allocated and released while recording stay with the recording") {
    Backend& be = gpu();
    if (!be.can_record()) {
        std::printf("    (this backend does not record)\n");
        return;
    }
    const MemorySnapshot before = memory_snapshot();
    const size_t bytes = 4096;
    be.begin_recording();
    void* a = be.alloc(bytes);
    be.fill(static_cast<float*>(a), 1.5f, bytes / 4);
    be.release(a);
    std::unique_ptr<Backend::Recording> rec = be.end_recording();
    harness::check(rec != nullptr, "the recording succeeded");
    void* b = be.alloc(bytes);
    harness::check(b != a, "a later allocation does not get the recording's block");
    if (rec) rec->replay();
    std::vector<float> h(bytes / 4, -1.0f);
    be.copy_to_host(h.data(), b, bytes);
    harness::check(std::all_of(h.begin(), h.end(), [](float x) { return x == 0.0f; }),
                   "a replay leaves the later allocation alone");
    be.release(b);
    rec.reset();
    be.synchronize();
    const MemorySnapshot after = memory_snapshot();
    harness::check(after.device_bytes == before.device_bytes, "device bytes return to where they were");
}

TEST_CASE("errors: an impossible allocation is CAE_ERR_OUT_OF_MEMORY and the backend still works") {
    Backend& be = gpu();
    cae_status st = CAE_OK;
    std::string what;
    try {
        be.alloc(size_t{1} << 52);
    } catch (const Error& e) {
        st = e.status();
        what = e.what();
    }
    std::printf("    %s\n", what.c_str());
    harness::check(st == CAE_ERR_OUT_OF_MEMORY, "4 PiB: CAE_ERR_OUT_OF_MEMORY");
    Arrays in;
    in.f["x"] = nans(1000);
    check_op("fill after the failed allocation", in, {"x"}, [](Backend& b, const Ptrs& p) { b.fill(p["x"], 1.0f, 1000); });
}

TEST_CASE("two CUDA backends on one device, used in turn") {
    auto other = make_device_backend();
    Backend& be = gpu();
    const int64_t n = 1 << 20;
    float* x = static_cast<float*>(be.alloc(n * 4));
    float* x2 = static_cast<float*>(be.alloc(n * 4));
    float* y = static_cast<float*>(other->alloc(n * 4));
    float* y2 = static_cast<float*>(other->alloc(n * 4));
    be.fill(x, 2.0f, n);
    be.fill(x2, 2.0f, n);
    other->fill(y, 5.0f, n);
    other->fill(y2, 5.0f, n);
    be.axpy(x, x2, 1.0f, n);     // 4
    other->axpy(y, y2, 1.0f, n);  // 10
    Vec hx(n), hy(n);
    be.copy_to_host(hx.data(), x, n * 4);
    other->copy_to_host(hy.data(), y, n * 4);
    harness::check(std::all_of(hx.begin(), hx.end(), [](float v) { return v == 4.0f; }) &&
                       std::all_of(hy.begin(), hy.end(), [](float v) { return v == 10.0f; }),
                   "each backend's stream computes its own values");
    be.release(x);
    be.release(x2);
    other->release(y);
    other->release(y2);
}

int main(int argc, char** argv) {
    const CudaProbe& probe = cuda_probe();
    if (probe.device_count == 0 && !self_test()) {
        std::printf("SKIPPED: no CUDA device (%s)\n", probe.reason.c_str());
        return 0;
    }
    try {
        gpu_slot() = make_device_backend();
    } catch (const Error& e) {
        if (e.status() == CAE_ERR_UNSUPPORTED) {
            std::printf("SKIPPED: no usable CUDA device (%s)\n", e.what());
            return 0;
        }
        std::printf("FAIL: the CUDA backend could not be created: %s\n", e.what());
        return 1;
    }
    std::printf("cuda: %s\ncpu:  %s\nprobe: %s\n", gpu().description().c_str(), cpu().description().c_str(),
                probe.reason.c_str());
    const int rc = harness::run_all(argc, argv);
    gpu_slot().reset();
    return rc;
}
