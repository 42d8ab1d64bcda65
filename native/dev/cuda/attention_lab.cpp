// The fused attention kernels (fused_attention.h) beside the library's attention ops, the
// reference they would replace, on the same inputs in one process: every output and gradient
// compared (fp32 destinations within 1e-5 relative L2, accumulated onto random gradients; bf16
// destinations within 2e-3, written over bf16 NaNs so that every element must be written), then,
// on a GPU, forward + backward timed for both. Prints the checks and, per timed case, one JSON line
// as bench_cuda_fusions does (tests/gpu/summarize.py tabulates both).
//
//   attention_lab [--quick] [--no-timing]
// --quick: small shapes for the host emulator (the lab's test there); timing is skipped on the
// emulator in any case.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "fused_attention.h"
#include "harness.h"

using namespace cae;

namespace {

struct Case {
    const char* name;
    int64_t batch, heads, nq, nk, hd;
    bool self;  // q, k, v column blocks of one [B, N, 3D] buffer (nq == nk); else separate buffers
};

std::vector<Case> cases(bool quick) {
    if (quick) {
        return {{"self", 2, 2, 5, 5, 16, true},       {"self, tile tail", 1, 2, 70, 70, 64, true},
                {"cross", 2, 2, 3, 9, 32, false},      {"cross, one query", 1, 1, 1, 2, 80, false},
                {"cross, tile tails", 1, 1, 33, 40, 128, false}};
    }
    std::vector<Case> c = {{"CAE-B encoder", 64, 12, 99, 99, 64, true},
                           {"CAE-B regressor", 64, 12, 98, 196, 64, false},
                           {"CAE-S encoder", 64, 6, 99, 99, 64, true},
                           {"longest", 4, 4, 256, 256, 64, true},
                           {"one query", 8, 2, 1, 2, 64, false},
                           {"tile tails", 4, 3, 65, 130, 64, false}};
    for (int64_t hd = 16; hd <= 128; hd += 16) c.push_back({"head dim", 8, 4, 77, 77, hd, true});
    return c;
}

std::vector<float> randn(int64_t n, std::mt19937_64& rng, float scale) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng);
    return v;
}

// Device memory of the backend, freed at the end of the scope.
struct Buffer {
    Backend& be;
    void* p;
    size_t bytes;
    Buffer(Backend& b, size_t n) : be(b), p(b.alloc(n)), bytes(n) {}
    ~Buffer() { be.release(p); }
    float* f() const { return static_cast<float*>(p); }
    uint16_t* h() const { return static_cast<uint16_t*>(p); }
    template <class T>
    void put(const std::vector<T>& v) {
        be.copy_to_device(p, v.data(), v.size() * sizeof(T));
    }
    template <class T>
    std::vector<T> get() {
        std::vector<T> v(bytes / sizeof(T));
        be.synchronize();
        be.copy_to_host(v.data(), p, bytes);
        return v;
    }
};

std::vector<float> widen(const std::vector<uint16_t>& h) {
    std::vector<float> v(h.size());
    for (size_t i = 0; i < h.size(); ++i) v[i] = bf16_to_float(h[i]);
    return v;
}

// Median milliseconds of f over rounds of 5 calls, each round ended by a synchronization.
template <class F>
double median_ms(Backend& be, cudaStream_t stream, F&& f) {
    f();
    be.synchronize();
    cudaStreamSynchronize(stream);
    std::vector<double> t;
    for (int r = 0; r < 9; ++r) {
        const auto a = std::chrono::steady_clock::now();
        for (int i = 0; i < 5; ++i) f();
        be.synchronize();
        cudaStreamSynchronize(stream);
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count() / 5);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    bool quick = false, timing = true;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick") {
            quick = true;
        } else if (a == "--no-timing") {
            timing = false;
        } else {
            std::fprintf(stderr, "attention_lab: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    std::unique_ptr<Backend> be;
    try {
        be = make_cuda_backend(0);
    } catch (const std::exception& e) {
        std::printf("SKIPPED: no CUDA device (%s)\n", e.what());
        return 0;
    }
    const bool emulated = be->description().find("emulator") != std::string::npos;
    timing = timing && !emulated;
    std::printf("reference: %s\n", be->description().c_str());
    cudaStream_t stream = nullptr;
    if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) {
        std::printf("FAIL: cannot create a stream\n");
        return 1;
    }
    lab::FusedAttention fused(0, stream);
    std::mt19937_64 rng(7);

    for (const Case& c : cases(quick)) {
        for (const GemmPrecision precision : {GemmPrecision::FP32, GemmPrecision::BF16}) {
            const bool bf16 = precision == GemmPrecision::BF16;
            const int64_t D = c.heads * c.hd;
            AttentionShape s = attention_shape(c.batch, c.heads, c.nq, c.nk, c.hd, precision);
            if (c.self) s.ldq = s.ldk = s.ldv = 3 * D;
            char label[160];
            std::snprintf(label, sizeof(label), "%s %s B%lld H%lld Nq%lld Nk%lld hd%lld", c.name, bf16 ? "bf16" : "fp32",
                          static_cast<long long>(c.batch), static_cast<long long>(c.heads),
                          static_cast<long long>(c.nq), static_cast<long long>(c.nk), static_cast<long long>(c.hd));
            if (!fused.applies(s)) {
                harness::fail(std::string(label) + ": the fused kernels do not take this shape");
                continue;
            }
            // q, k, v (self: the column blocks of one buffer), dout; gradients laid out as their inputs
            const int64_t q_elems = c.batch * c.nq * s.ldq, kv_elems = c.self ? 0 : c.batch * c.nk * D;
            const int64_t in_elems = q_elems + 2 * kv_elems, out_elems = c.batch * c.nq * D;
            const int64_t probs_elems = c.batch * c.heads * c.nq * c.nk;
            Buffer in(*be, in_elems * sizeof(float)), dout(*be, out_elems * sizeof(float));
            in.put(randn(in_elems, rng, bf16 ? 0.5f : 1.0f));
            dout.put(randn(out_elems, rng, 1.0f));
            const float* q = in.f();
            const float* k = c.self ? in.f() + D : in.f() + q_elems;
            const float* v = c.self ? in.f() + 2 * D : in.f() + q_elems + kv_elems;
            const int64_t ko = k - q, vo = v - q;
            Buffer probs(*be, probs_elems * sizeof(float)), stats(*be, c.batch * c.heads * c.nq * 2 * sizeof(float));
            const size_t esz = bf16 ? sizeof(uint16_t) : sizeof(float);
            Buffer out_ref(*be, out_elems * esz), out_lab(*be, out_elems * esz);
            Buffer grad_ref(*be, in_elems * esz), grad_lab(*be, in_elems * esz);
            auto dest = [&](const Buffer& b, int64_t offset) {
                return bf16 ? Dest::rounded(b.h() + offset) : Dest(b.f() + offset);
            };
            // fp32 gradients accumulate onto the same random values; bf16 ones overwrite NaNs
            auto reset = [&] {
                if (bf16) {
                    const std::vector<uint16_t> nan16(static_cast<size_t>(in_elems), 0x7fc0);
                    grad_ref.put(nan16);
                    grad_lab.put(nan16);
                    out_ref.put(std::vector<uint16_t>(static_cast<size_t>(out_elems), 0x7fc0));
                    out_lab.put(std::vector<uint16_t>(static_cast<size_t>(out_elems), 0x7fc0));
                } else {
                    const std::vector<float> g = randn(in_elems, rng, 1.0f);
                    grad_ref.put(g);
                    grad_lab.put(g);
                    const std::vector<float> nan32(static_cast<size_t>(out_elems), std::numeric_limits<float>::quiet_NaN());
                    out_ref.put(nan32);
                    out_lab.put(nan32);
                }
            };
            struct Want {
                const char* what;
                bool dq, dk, dv;
            };
            for (const Want w : {Want{"all gradients", true, true, true}, Want{"dq alone", true, false, false},
                                 Want{"dv alone", false, false, true}}) {
                reset();
                auto pick = [&](const Buffer& b, bool on, int64_t offset) { return on ? dest(b, offset) : Dest(); };
                be->attention_forward(dest(out_ref, 0), probs.f(), q, k, v, s);
                be->attention_backward(pick(grad_ref, w.dq, 0), pick(grad_ref, w.dk, ko), pick(grad_ref, w.dv, vo),
                                       dout.f(), probs.f(), q, k, v, s);
                be->synchronize();
                fused.forward(dest(out_lab, 0), stats.f(), q, k, v, s);
                fused.backward(pick(grad_lab, w.dq, 0), pick(grad_lab, w.dk, ko), pick(grad_lab, w.dv, vo), dout.f(),
                               stats.f(), q, k, v, s);
                cudaStreamSynchronize(stream);
                const double tol = bf16 ? 2e-3 : 1e-5;
                // written: how many elements the op must write (bf16 destinations start as NaNs)
                auto compare = [&](const std::string& what, Buffer& got, Buffer& want, int64_t written) {
                    std::vector<float> g, r;
                    if (bf16) {
                        g = widen(got.get<uint16_t>());
                        r = widen(want.get<uint16_t>());
                    } else {
                        g = got.get<float>();
                        r = want.get<float>();
                    }
                    // the same elements written: NaN in one and not the other is a defect of one side
                    size_t nan_mismatch = 0;
                    int64_t numbers = 0;
                    for (size_t i = 0; i < g.size(); ++i) {
                        if (std::isnan(g[i]) != std::isnan(r[i])) ++nan_mismatch;
                        if (!std::isnan(r[i])) ++numbers;
                        if (std::isnan(g[i]) && std::isnan(r[i])) g[i] = r[i] = 0.0f;
                    }
                    harness::check(nan_mismatch == 0, std::string(label) + ": " + what + ": written where the reference is not, or the reverse");
                    if (bf16) harness::check(numbers == written, std::string(label) + ": " + what + ": " +
                                             std::to_string(numbers) + " elements written, expected " + std::to_string(written));
                    harness::check_close(std::string(label) + ": " + what, g.data(), r.data(), g.size(), tol);
                };
                const int64_t q_rows = c.batch * c.nq * D, kv_rows = c.batch * c.nk * D;
                if (w.dq && w.dk && w.dv) compare("forward", out_lab, out_ref, out_elems);
                compare(std::string("backward, ") + w.what, grad_lab, grad_ref,
                        (w.dq ? q_rows : 0) + (w.dk ? kv_rows : 0) + (w.dv ? kv_rows : 0));
            }
            if (!timing) continue;
            const double ref_ms = median_ms(*be, stream, [&] {
                be->attention_forward(dest(out_ref, 0), probs.f(), q, k, v, s);
                be->attention_backward(dest(grad_ref, 0), dest(grad_ref, ko), dest(grad_ref, vo), dout.f(), probs.f(),
                                       q, k, v, s);
            });
            const double lab_ms = median_ms(*be, stream, [&] {
                fused.forward(dest(out_lab, 0), stats.f(), q, k, v, s);
                fused.backward(dest(grad_lab, 0), dest(grad_lab, ko), dest(grad_lab, vo), dout.f(), stats.f(), q, k, v,
                               s);
            });
            std::printf("{\"bench\":\"cuda-fusions\",\"name\":\"fused attention forward + backward\","
                        "\"replaces\":\"attention_forward + attention_backward\",\"shape\":\"%s\",\"ms\":%.4f,"
                        "\"ms_replaced\":%.4f,\"speedup\":%.3f}\n",
                        label, lab_ms, ref_ms, ref_ms / lab_ms);
            std::fflush(stdout);
        }
    }
    cudaStreamDestroy(stream);
    const int failed = harness::failures();
    std::printf("%s: %d failure(s)\n", failed == 0 ? "PASSED" : "FAILED", failed);
    return failed == 0 ? 0 : 1;
}
