// A stand-in for libcublasLt with the documented column-major semantics of the entry points
// libcae uses, computing on HOST memory, for test_cuda_cublaslt_mapping: it checks that the CUDA
// backend's row-major-to-column-major mapping (gemm_cublaslt.cu) asks cuBLASLt for the right
// product, on machines without a GPU. It is strict where cuBLASLt is documented to be strict:
// ld >= rows for every layout, attribute value sizes, op(A) m x k / op(B) k x n / C m x n
// consistency, equal batch counts, and pointer / row-stride / batch-stride alignment at least
// the MIN_ALIGNMENT preferences the algorithm was chosen for. It offers no algorithm when k is 13
// (success, none returned), 11 (NOT_SUPPORTED) or 10 (INVALID_VALUE).
// On the CUDA emulator's streams (a hook at the start of the stream object, see
// native/emu/runtime.cpp) the product is queued in stream order instead of computed at once, with
// the operands read when the stream runs, as a device library reads them.
// Types: CUDA_R_32F everywhere, or CUDA_R_16BF A and B with CUDA_R_32F C and D (compute 32F).
// Epilogues: DEFAULT, BIAS (an fp32 vector, one value per row of D, here without batches) and
// BGRADB (the sums of op(B) over k written to that vector, one per column of D, without batches).
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

constexpr int kSuccess = 0, kNotInitialized = 1, kInvalidValue = 7, kNotSupported = 15;

struct Desc {
    int compute, scale;
    int32_t transa = 0, transb = 0;
    uint32_t epilogue = 1;        // DEFAULT
    float* bias = nullptr;  // BIAS: one value per row of D; BGRADB: one per column of D
};
struct Layout {
    int type;
    uint64_t rows, cols;
    int64_t ld;
    int32_t batch = 1;
    int64_t stride = 0;
};
struct Pref {
    uint64_t workspace = 0;
    uint32_t align[4] = {256, 256, 256, 256};  // A, B, C, D
};
struct Algo {  // what we keep in cublasLtMatmulAlgo_t's 64 bytes
    uint64_t magic;
    uint32_t align[4];
    uint64_t pad[5];
};
static_assert(sizeof(Algo) == 64, "algo size");
struct Heuristic {
    Algo algo;
    size_t workspace;
    int state;
    float waves;
    int reserved[4];
};
constexpr uint64_t kMagic = 0xcae0cae0cae0cae0ull;

int g_handles = 0;

constexpr int kR32F = 0, kR16BF = 14;

size_t element_bytes(const Layout& l) { return l.type == kR16BF ? 2 : 4; }

bool aligned(const void* p, const Layout& l, uint32_t align, bool batched) {
    const uint64_t a = align;
    if (reinterpret_cast<uint64_t>(p) % a) return false;
    if ((static_cast<uint64_t>(l.ld) * element_bytes(l)) % a) return false;
    if (batched && (static_cast<uint64_t>(l.stride) * element_bytes(l)) % a) return false;
    return true;
}

// Element e of a matrix of the layout's type.
inline double value(const void* x, const Layout& l, int64_t e) {
    if (l.type == kR16BF) {
        const uint32_t u = static_cast<uint32_t>(static_cast<const uint16_t*>(x)[e]) << 16;
        float f;
        std::memcpy(&f, &u, sizeof(f));
        return f;
    }
    return static_cast<const float*>(x)[e];
}

// op(X) element (i, j) of a column-major matrix.
inline double at(const void* x, const Layout& l, int32_t op, int64_t i, int64_t j) {
    return value(x, l, op ? i * l.ld + j : j * l.ld + i);
}

int check_shapes(const Desc* d, const Layout* a, const Layout* b, const Layout* c, const Layout* dd, int64_t* m,
                 int64_t* n, int64_t* k) {
    const int64_t am = d->transa ? a->cols : a->rows, ak = d->transa ? a->rows : a->cols;
    const int64_t bk = d->transb ? b->cols : b->rows, bn = d->transb ? b->rows : b->cols;
    if (ak != bk || static_cast<int64_t>(c->rows) != am || static_cast<int64_t>(c->cols) != bn) return kInvalidValue;
    if (dd->rows != c->rows || dd->cols != c->cols || dd->ld != c->ld) return kInvalidValue;
    if (a->batch != c->batch || b->batch != c->batch) return kInvalidValue;
    // Supported types: all 32F, or 16BF A and B with 32F C and D, with compute 32F (68).
    if (c->type != kR32F || dd->type != kR32F || a->type != b->type) return kNotSupported;
    if (a->type == kR16BF && d->compute != 68) return kNotSupported;
    *m = am;
    *n = bn;
    *k = ak;
    return kSuccess;
}

// One product with everything it needs, copied: the descriptors may change or go before a queued
// product runs.
struct Matmul {
    Desc desc;
    Layout la, lb, lc, ld;
    int64_t m, n, k;
    float alpha, beta;
    const void *A, *B, *C;
    void* D;
};

void run(const Matmul& job) {
    const Desc* dsc = &job.desc;
    const Layout *la = &job.la, *lb = &job.lb, *lc = &job.lc, *ld = &job.ld;
    const int64_t m = job.m, n = job.n, k = job.k;
    const void *A = job.A, *B = job.B, *C = job.C;
    void* D = job.D;
    const float al_v = job.alpha, be_v = job.beta;
    for (int32_t z = 0; z < lc->batch; ++z) {
        const char* a = static_cast<const char*>(A) + z * la->stride * element_bytes(*la);
        const char* b = static_cast<const char*>(B) + z * lb->stride * element_bytes(*lb);
        const float* c = static_cast<const float*>(C) + z * lc->stride;
        float* d = static_cast<float*>(D) + z * ld->stride;
        for (int64_t j = 0; j < n; ++j)
            for (int64_t i = 0; i < m; ++i) {
                double s = 0.0;
                for (int64_t p = 0; p < k; ++p)
                    s += at(a, *la, dsc->transa, i, p) * at(b, *lb, dsc->transb, p, j);
                double v = al_v * s;
                if (be_v != 0.0f) v += static_cast<double>(be_v) * c[j * lc->ld + i];  // beta == 0: C not read
                if (dsc->epilogue == 4) v += dsc->bias[i];  // BIAS: broadcast over the columns of D
                d[j * ld->ld + i] = static_cast<float>(v);
            }
        if (dsc->epilogue == 512) {  // BGRADB: sums of op(B) over k, one per column of D
            for (int64_t j = 0; j < n; ++j) {
                double s = 0.0;
                for (int64_t p = 0; p < k; ++p) s += at(b, *lb, dsc->transb, p, j);
                dsc->bias[j] = static_cast<float>(s);
            }
        }
    }
}

void run_queued(void* job) { run(*static_cast<const Matmul*>(job)); }
void release_queued(void* job) { delete static_cast<Matmul*>(job); }

// The start of a stream of the CUDA emulator (native/emu/runtime.cpp): a way to queue host work.
struct EmulatorStream {
    uint64_t magic;
    // fn(data) runs in stream order (again at every replay of a graph that captured it);
    // release(data) when nothing can run it any more.
    void (*enqueue_host)(void* stream, void (*fn)(void*), void* data, void (*release)(void*));
};
constexpr uint64_t kEmulatorStreamMagic = 0xcae0e3a1a7005eedull;

}  // namespace

extern "C" {

int cublasLtCreate(void** handle) {
    *handle = &g_handles;
    ++g_handles;
    return kSuccess;
}
int cublasLtDestroy(void* handle) {
    if (handle != &g_handles) return kNotInitialized;
    --g_handles;
    return kSuccess;
}
size_t cublasLtGetVersion() { return 130099; }
const char* cublasLtGetStatusString(int status) { return status == kSuccess ? "success" : "fake failure"; }

int cublasLtMatmulDescCreate(void** desc, int compute, int scale) {
    if (compute != 68 && compute != 77) return kNotSupported;  // CUBLAS_COMPUTE_32F(_FAST_TF32)
    if (scale != 0) return kNotSupported;                      // CUDA_R_32F
    *desc = new Desc{compute, scale};
    return kSuccess;
}
int cublasLtMatmulDescDestroy(void* desc) {
    delete static_cast<Desc*>(desc);
    return kSuccess;
}
int cublasLtMatmulDescSetAttribute(void* desc, int attr, const void* buf, size_t size) {
    Desc* d = static_cast<Desc*>(desc);
    if (attr == 8) {  // BIAS_POINTER
        if (size != sizeof(void*)) return kInvalidValue;
        std::memcpy(&d->bias, buf, sizeof(void*));
        return kSuccess;
    }
    if (attr == 7) {  // EPILOGUE: DEFAULT, BIAS or BGRADB
        uint32_t e;
        if (size != sizeof(e)) return kInvalidValue;
        std::memcpy(&e, buf, sizeof e);
        if (e != 1 && e != 4 && e != 512) return kNotSupported;
        d->epilogue = e;
        return kSuccess;
    }
    if (size != sizeof(int32_t)) return kInvalidValue;
    int32_t v;
    std::memcpy(&v, buf, sizeof v);
    if (v != 0 && v != 1) return kInvalidValue;
    if (attr == 3) d->transa = v;
    else if (attr == 4) d->transb = v;
    else return kInvalidValue;
    return kSuccess;
}

int cublasLtMatrixLayoutCreate(void** layout, int type, uint64_t rows, uint64_t cols, int64_t ld) {
    if (type != kR32F && type != kR16BF) return kNotSupported;
    if (ld < static_cast<int64_t>(rows) || rows == 0 || cols == 0) return kInvalidValue;  // COL order: ld >= rows
    *layout = new Layout{type, rows, cols, ld};
    return kSuccess;
}
int cublasLtMatrixLayoutDestroy(void* layout) {
    delete static_cast<Layout*>(layout);
    return kSuccess;
}
int cublasLtMatrixLayoutSetAttribute(void* layout, int attr, const void* buf, size_t size) {
    Layout* l = static_cast<Layout*>(layout);
    if (attr == 5 && size == sizeof(int32_t)) {
        std::memcpy(&l->batch, buf, size);
        return l->batch >= 1 ? kSuccess : kInvalidValue;
    }
    if (attr == 6 && size == sizeof(int64_t)) {
        std::memcpy(&l->stride, buf, size);
        return kSuccess;
    }
    return kInvalidValue;
}

int cublasLtMatmulPreferenceCreate(void** pref) {
    *pref = new Pref;
    return kSuccess;
}
int cublasLtMatmulPreferenceDestroy(void* pref) {
    delete static_cast<Pref*>(pref);
    return kSuccess;
}
int cublasLtMatmulPreferenceSetAttribute(void* pref, int attr, const void* buf, size_t size) {
    Pref* p = static_cast<Pref*>(pref);
    if (attr == 1 && size == sizeof(uint64_t)) {
        std::memcpy(&p->workspace, buf, size);
        return kSuccess;
    }
    if (attr >= 5 && attr <= 8 && size == sizeof(uint32_t)) {
        uint32_t v;
        std::memcpy(&v, buf, size);
        if (v == 0 || (v & (v - 1)) != 0 || v < 2) return kInvalidValue;  // a power of two, at least one bf16
        p->align[attr - 5] = v;
        return kSuccess;
    }
    return kInvalidValue;
}

int cublasLtMatmulAlgoGetHeuristic(void* handle, void* desc, void* a, void* b, void* c, void* d, void* pref,
                                   int requested, Heuristic* results, int* returned) {
    if (handle != &g_handles) return kNotInitialized;
    if (requested < 1) return kInvalidValue;
    int64_t m, n, k;
    const int st = check_shapes(static_cast<Desc*>(desc), static_cast<Layout*>(a), static_cast<Layout*>(b),
                                static_cast<Layout*>(c), static_cast<Layout*>(d), &m, &n, &k);
    if (st != kSuccess) return st;
    // Shapes "without an algorithm", in the three ways cuBLASLt says so, to test the caller's fallback.
    if (k == 13) {
        *returned = 0;
        return kSuccess;
    }
    if (k == 11) return kNotSupported;
    if (k == 10) return kInvalidValue;
    std::memset(&results[0], 0, sizeof(Heuristic));
    results[0].algo.magic = kMagic;
    std::memcpy(results[0].algo.align, static_cast<Pref*>(pref)->align, sizeof(results[0].algo.align));
    results[0].workspace = 0;
    results[0].state = kSuccess;
    results[0].waves = 1.0f;
    *returned = 1;
    return kSuccess;
}

int cublasLtMatmul(void* handle, void* desc, const void* alpha, const void* A, void* a_desc, const void* B,
                   void* b_desc, const void* beta, const void* C, void* c_desc, void* D, void* d_desc,
                   const void* algo, void* workspace, size_t workspace_bytes, void* stream) {
    (void)workspace;
    (void)workspace_bytes;
    if (handle != &g_handles) return kNotInitialized;
    const Desc* dsc = static_cast<const Desc*>(desc);
    const Layout *la = static_cast<Layout*>(a_desc), *lb = static_cast<Layout*>(b_desc),
                 *lc = static_cast<Layout*>(c_desc), *ld = static_cast<Layout*>(d_desc);
    int64_t m, n, k;
    int st = check_shapes(dsc, la, lb, lc, ld, &m, &n, &k);
    if (st != kSuccess) return st;
    const Algo* al = static_cast<const Algo*>(algo);
    if (al == nullptr || al->magic != kMagic) return kInvalidValue;
    if ((dsc->epilogue == 4 || dsc->epilogue == 512) && (dsc->bias == nullptr || lc->batch != 1)) return kInvalidValue;
    const bool batched = lc->batch > 1;
    if (!aligned(A, *la, al->align[0], batched) || !aligned(B, *lb, al->align[1], batched) ||
        !aligned(C, *lc, al->align[2], batched) || !aligned(D, *ld, al->align[3], batched))
        return kInvalidValue;  // the algorithm was chosen for stricter alignment than these buffers have
    Matmul job{*dsc, *la, *lb, *lc, *ld, m, n, k, *static_cast<const float*>(alpha), *static_cast<const float*>(beta),
               A, B, C, D};
    if (stream != nullptr) {
        EmulatorStream hook;
        std::memcpy(&hook, stream, sizeof(hook));
        if (hook.magic == kEmulatorStreamMagic) {
            hook.enqueue_host(stream, &run_queued, new Matmul(job), &release_queued);
            return kSuccess;
        }
    }
    run(job);
    return kSuccess;
}

}  // extern "C"
