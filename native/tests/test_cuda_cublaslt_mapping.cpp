// The cuBLASLt path of the CUDA backend without a GPU: the loader opens a fake libcublasLt
// (fake_cublaslt.cpp: cuBLASLt's documented column-major semantics, on host memory, strict about
// layouts, attribute sizes and alignment), and the backend's CublasLtGemm must compute every
// row-major GemmArgs product correctly through it: all transposes, alpha/beta, padded row
// strides, strided batches, a shared A (batch stride 0), single rows and columns, beta = 0 over
// NaN, misaligned pointers; BF16 products (bf16 A and B, fp32 C) over the same cases; the BIAS
// epilogue (C[i, j] += bias[j]) on the single-matrix ones, and the BGRADB epilogue (the sums of
// op(A) over k, a weight GEMM's bias gradient) where it applies; shapes for which the heuristic
// finds no algorithm (nothing returned, NOT_SUPPORTED or INVALID_VALUE) run nothing and report it,
// so that the backend takes its fallback kernel. Plans are cached per shape.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "cuda/cublaslt_loader.h"
#include "cuda/gemm.h"
#include "harness.h"

using namespace cae;

namespace {

std::shared_ptr<const cuda::CublasLtLibrary> fake_library() {
    cuda::CublasLtSearch s;
    s.explicit_path = FAKE_CUBLASLT_PATH;
    s.try_loader_path = false;
    return cuda::load_cublaslt(s);
}

std::mt19937_64& rng() {
    static std::mt19937_64 r(77);
    return r;
}

// Host memory aligned to 256 bytes like the backend's device blocks, so that the pointer
// alignments (and with them the plans) are the same from run to run.
template <class T>
struct AlignedAllocator {
    using value_type = T;
    AlignedAllocator() = default;
    template <class U>
    AlignedAllocator(const AlignedAllocator<U>&) {}
    T* allocate(size_t n) { return static_cast<T*>(std::aligned_alloc(256, (n * sizeof(T) + 255) / 256 * 256)); }
    void deallocate(T* p, size_t) { std::free(p); }
    bool operator==(const AlignedAllocator&) const { return true; }
    bool operator!=(const AlignedAllocator&) const { return false; }
};
using Floats = std::vector<float, AlignedAllocator<float>>;

Floats randn(int64_t n) {
    std::normal_distribution<float> d;
    Floats v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng());
    return v;
}

// Row-major reference in double of GemmArgs' definition, over C's valid elements only (BF16:
// of the operands rounded to bf16).
void reference(const GemmArgs& g, const float* a, const float* b, std::vector<double>& c) {
    const bool bf16 = g.precision == GemmPrecision::BF16;
    auto op = [bf16](float x) -> double { return bf16 ? bf16_to_float(float_to_bf16(x)) : x; };
    for (int64_t z = 0; z < g.batch; ++z)
        for (int64_t i = 0; i < g.m; ++i)
            for (int64_t j = 0; j < g.n; ++j) {
                double s = 0.0;
                for (int64_t p = 0; p < g.k; ++p) {
                    const double av = op(g.trans_a ? a[z * g.stride_a + p * g.lda + i] : a[z * g.stride_a + i * g.lda + p]);
                    const double bv = op(g.trans_b ? b[z * g.stride_b + j * g.ldb + p] : b[z * g.stride_b + p * g.ldb + j]);
                    s += av * bv;
                }
                double& out = c[static_cast<size_t>(z * g.stride_c + i * g.ldc + j)];
                out = g.alpha * s + (g.beta == 0.0f ? 0.0 : g.beta * out);
            }
}

struct Case {
    bool ta, tb;
    int64_t m, n, k, batch, pad;
    float alpha, beta;
    int64_t offset_a, offset_b, offset_c;  // in floats: 1 makes a pointer 4-byte aligned only
    bool shared_a;
};

void run_case(cuda::CublasLtGemm& lt, const Case& cs, bool bf16 = false, bool bias = false, bool bgrad = false) {
    GemmArgs g;
    if (bf16) g.precision = GemmPrecision::BF16;
    g.trans_a = cs.ta;
    g.trans_b = cs.tb;
    g.m = cs.m;
    g.n = cs.n;
    g.k = cs.k;
    g.alpha = cs.alpha;
    g.beta = cs.beta;
    g.batch = cs.batch;
    const int64_t a_rows = cs.ta ? cs.k : cs.m, a_cols = cs.ta ? cs.m : cs.k;
    const int64_t b_rows = cs.tb ? cs.n : cs.k, b_cols = cs.tb ? cs.k : cs.n;
    g.lda = a_cols + cs.pad;
    g.ldb = b_cols + 2 * cs.pad;
    g.ldc = cs.n + cs.pad;
    g.stride_a = cs.shared_a ? 0 : a_rows * g.lda + (cs.pad ? 5 : 0);
    g.stride_b = b_rows * g.ldb + (cs.pad ? 7 : 0);
    g.stride_c = cs.m * g.ldc + (cs.pad ? 11 : 0);
    const int64_t a_size = cs.offset_a + (cs.shared_a ? 1 : cs.batch) * a_rows * g.lda + cs.batch * 5;
    const int64_t b_size = cs.offset_b + cs.batch * g.stride_b + b_rows * g.ldb;
    const int64_t c_size = cs.offset_c + cs.batch * g.stride_c + cs.m * g.ldc;
    Floats a = randn(a_size), b = randn(b_size), c = randn(c_size);
    if (cs.beta == 0.0f) {  // C's valid elements are NaN: beta = 0 must not read them
        for (int64_t z = 0; z < cs.batch; ++z)
            for (int64_t i = 0; i < cs.m; ++i)
                for (int64_t j = 0; j < cs.n; ++j)
                    c[static_cast<size_t>(cs.offset_c + z * g.stride_c + i * g.ldc + j)] =
                        std::numeric_limits<float>::quiet_NaN();
    }
    const Floats c_before = c;
    std::vector<double> want(c.begin() + cs.offset_c, c.end());
    reference(g, a.data() + cs.offset_a, b.data() + cs.offset_b, want);
    Floats bias_v = randn(cs.n);
    if (bias) {  // C[i, j] += bias[j]: the BIAS epilogue
        g.bias = bias_v.data();
        for (int64_t i = 0; i < cs.m; ++i)
            for (int64_t j = 0; j < cs.n; ++j) want[static_cast<size_t>(i * g.ldc + j)] += bias_v[static_cast<size_t>(j)];
    }
    // bias_grad[i] = sum_p op(A)[i, p] (A stored k x m: trans_a), of the values the product reads.
    Floats bias_grad(static_cast<size_t>(cs.m), std::numeric_limits<float>::quiet_NaN());
    std::vector<double> want_bg(static_cast<size_t>(cs.m), 0.0);
    if (bgrad) {
        g.bias_grad = bias_grad.data();
        for (int64_t i = 0; i < cs.m; ++i)
            for (int64_t p = 0; p < cs.k; ++p) {
                const float x = a[static_cast<size_t>(cs.offset_a + p * g.lda + i)];
                want_bg[static_cast<size_t>(i)] += bf16 ? bf16_to_float(float_to_bf16(x)) : x;
            }
    }
    g.a = a.data() + cs.offset_a;
    g.b = b.data() + cs.offset_b;
    g.c = c.data() + cs.offset_c;
    // BF16: the operands' bf16 copies, element for element (offsets in elements as for a and b).
    std::vector<uint16_t, AlignedAllocator<uint16_t>> a16(a.size()), b16(b.size());
    if (bf16) {
        for (size_t i = 0; i < a.size(); ++i) a16[i] = float_to_bf16(a[i]);
        for (size_t i = 0; i < b.size(); ++i) b16[i] = float_to_bf16(b[i]);
        g.a_bf16 = a16.data() + cs.offset_a;
        g.b_bf16 = b16.data() + cs.offset_b;
    }
    char label[200];
    std::snprintf(label, sizeof label, "%s%s%s%s m %lld n %lld k %lld batch %lld pad %lld alpha %.1f beta %.1f off %lld/%lld/%lld%s",
                  bf16 ? "bf16 " : "", bias ? "bias " : bgrad ? "bias-grad " : "", cs.ta ? "T" : "N", cs.tb ? "T" : "N", (long long)cs.m, (long long)cs.n, (long long)cs.k,
                  (long long)cs.batch, (long long)cs.pad, cs.alpha, cs.beta, (long long)cs.offset_a,
                  (long long)cs.offset_b, (long long)cs.offset_c, cs.shared_a ? " shared A" : "");
    bool ran = false;
    try {
        ran = lt.run(g);
    } catch (const Error& e) {
        harness::fail(std::string(label) + ": " + e.what());
        return;
    }
    if (cs.k == 13 || cs.k == 11 || cs.k == 10) {  // the fake has no algorithm for these: nothing may be written
        harness::check(!ran, std::string(label) + ": run() reports that cuBLASLt had no algorithm");
        bool untouched = true;
        for (size_t i = 0; i < c.size(); ++i)
            untouched = untouched && std::memcmp(&c[i], &c_before[i], sizeof(float)) == 0;
        harness::check(untouched, std::string(label) + ": C is untouched");
        return;
    }
    harness::check(ran, std::string(label) + ": run() ran the product");
    // Every element of C (valid ones and padding) against the reference (padding unchanged).
    std::vector<float> got(c.begin() + cs.offset_c, c.end());
    harness::check_close(label, got.data(), want.data(), got.size(), 1e-6);
    if (bgrad) harness::check_close(std::string(label) + " bias gradient", bias_grad.data(), want_bg.data(), want_bg.size(), 1e-6);
}

}  // namespace

TEST_CASE("the fake cuBLASLt loads through the loader") {
    auto lib = fake_library();
    std::printf("    %s\n", lib->summary().c_str());
    harness::check(lib->loaded() && lib->version == 130099, "loaded, version 13.0.99: " + lib->tried);
}

TEST_CASE("row-major GEMMs through the column-major library: every case") {
    auto lib = fake_library();
    if (!lib->loaded()) {
        harness::fail("fake cuBLASLt did not load: " + lib->tried);
        return;
    }
    std::vector<float> workspace(1 << 16);
    cuda::CublasLtGemm lt(lib, nullptr, false, workspace.data(), workspace.size() * 4);
    std::vector<Case> cases;
    for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        cases.push_back({ta, tb, 7, 5, 3, 1, 0, 1.0f, 0.0f, 0, 0, 0, false});
        cases.push_back({ta, tb, 17, 33, 9, 3, 3, 0.7f, 1.0f, 0, 0, 0, false});
        cases.push_back({ta, tb, 1, 9, 4, 2, 1, 1.0f, 0.5f, 0, 0, 0, false});   // one row
        cases.push_back({ta, tb, 9, 1, 4, 2, 0, 1.0f, 0.0f, 0, 0, 0, false});   // one column
        cases.push_back({ta, tb, 6, 7, 1, 1, 2, -1.3f, 0.0f, 0, 0, 0, false});  // k = 1
        cases.push_back({ta, tb, 12, 8, 16, 4, 0, 1.0f, 0.0f, 1, 3, 1, false});  // 4-byte-aligned pointers
        cases.push_back({ta, tb, 5, 6, 7, 3, 1, 1.0f, 1.0f, 0, 0, 0, true});    // A shared by the batch
    }
    cases.push_back({false, true, 64, 48, 32, 1, 0, 1.0f, 0.0f, 64, 64, 64, false});  // 256-byte aligned
    cases.push_back({false, false, 5, 4, 13, 1, 0, 1.0f, 0.0f, 0, 0, 0, false});     // no algorithm: fallback
    cases.push_back({true, false, 5, 4, 11, 1, 0, 1.0f, 0.0f, 0, 0, 0, false});      // ... as NOT_SUPPORTED
    cases.push_back({false, true, 5, 4, 10, 2, 0, 1.0f, 0.0f, 0, 0, 0, false});      // ... as INVALID_VALUE
    // Weight gradients dW += dy^T x (the bias-gradient epilogue's use): padded, accumulating, 4-byte aligned
    cases.push_back({true, false, 48, 40, 64, 1, 0, 1.0f, 1.0f, 0, 0, 0, false});
    cases.push_back({true, false, 17, 33, 9, 1, 3, 1.0f, 1.0f, 0, 0, 0, false});
    cases.push_back({true, false, 24, 16, 20, 1, 1, 1.0f, 0.0f, 1, 3, 1, false});
    auto all = [&] {
        for (const Case& c : cases) run_case(lt, c);
        for (const Case& c : cases) run_case(lt, c, true);
        for (const Case& c : cases) {  // the bias epilogue on the single-matrix cases
            if (c.batch == 1) {
                run_case(lt, c, false, true);
                run_case(lt, c, true, true);
            }
        }
        for (const Case& c : cases) {  // the bias-gradient epilogue where it applies (a weight gradient)
            if (c.batch == 1 && c.ta && c.alpha == 1.0f) {
                run_case(lt, c, false, false, true);
                run_case(lt, c, true, false, true);
            }
        }
    };
    all();
    const size_t plans = lt.plans();
    all();
    harness::check(lt.plans() == plans, "a second round of the same shapes makes no new plans");
    std::printf("    %zu plans for %zu cases\n", plans, cases.size());
}

HARNESS_MAIN
