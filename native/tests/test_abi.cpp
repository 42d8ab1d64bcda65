// The C ABI as a user sees it (only cae.h, the shared libcae): every argument checked, errors
// reported through status and message, never an abort; buffers copy correctly; memory is
// returned.
#include <cstring>
#include <string>
#include <vector>

#include "cae/cae.h"
#include "harness.h"

namespace {

// Checks that `status` is `expected` and that the last error mentions `needle`.
void expect_error(const char* what, cae_status status, cae_status expected, const char* needle) {
    std::string message = cae_last_error();
    bool ok = status == expected && message.find(needle) != std::string::npos;
    std::printf("    %-44s -> %s: %s\n", what, cae_status_name(status), message.c_str());
    harness::check(ok, std::string(what) + ": expected " + cae_status_name(expected) + " mentioning \"" +
                           needle + "\"");
}

cae_context* cpu_context(int threads) {
    cae_context_options o;
    cae_context_options_init(&o);
    o.backend = CAE_BACKEND_CPU;
    o.num_threads = threads;
    cae_context* ctx = nullptr;
    harness::check(cae_context_create(&o, &ctx) == CAE_OK && ctx != nullptr, "create a CPU context");
    return ctx;
}

}  // namespace

TEST_CASE("abi version and build info") {
    harness::check(cae_abi_version() == CAE_ABI_VERSION, "cae_abi_version() == CAE_ABI_VERSION");
    std::string info = cae_build_info();
    std::printf("    build: %s\n", info.c_str());
    harness::check(info.front() == '{' && info.back() == '}', "build info is a JSON object");
    harness::check(info.find("\"abi\":" + std::to_string(CAE_ABI_VERSION)) != std::string::npos,
                   "build info names the ABI version");
    harness::check(std::string(cae_status_name(CAE_ERR_INVALID_HANDLE)) == "CAE_ERR_INVALID_HANDLE",
                   "status names");
    harness::check(std::string(cae_status_name(12345)) == "CAE_UNKNOWN_STATUS", "unknown status name");
}

TEST_CASE("devices and backends") {
    int32_t count = -1;
    harness::check(cae_device_count(&count) == CAE_OK && count >= 0, "device count");
    std::printf("    %d CUDA device(s)\n", count);
    cae_backend_info info;
    for (cae_backend b : {CAE_BACKEND_CPU, CAE_BACKEND_CUDA, CAE_BACKEND_AUTO}) {
        harness::check(cae_backend_query(b, &info) == CAE_OK, "backend query");
        std::printf("    backend %d: compiled %d usable %d (%s)\n", b, info.compiled, info.usable, info.reason);
    }
    harness::check(cae_backend_query(CAE_BACKEND_CPU, &info) == CAE_OK && info.usable == 1, "CPU usable");
    expect_error("backend query, backend 7", cae_backend_query(7, &info), CAE_ERR_INVALID_ARGUMENT, "backend is 7");
    expect_error("device count, NULL", cae_device_count(nullptr), CAE_ERR_INVALID_ARGUMENT, "count is NULL");
    cae_device_info dev;
    expect_error("device query, index past the end", cae_device_query(count, &dev), CAE_ERR_INVALID_ARGUMENT,
                 "out of range");
}

TEST_CASE("context creation checks its options") {
    cae_context* ctx = nullptr;
    cae_context_options o;
    expect_error("create, NULL options", cae_context_create(nullptr, &ctx), CAE_ERR_INVALID_ARGUMENT,
                 "options is NULL");
    harness::check(ctx == nullptr, "out stays NULL on failure");
    cae_context_options_init(&o);
    expect_error("create, NULL out", cae_context_create(&o, nullptr), CAE_ERR_INVALID_ARGUMENT, "out is NULL");
    o.backend = 9;
    expect_error("create, backend 9", cae_context_create(&o, &ctx), CAE_ERR_INVALID_ARGUMENT, "backend is 9");
    cae_context_options_init(&o);
    o.num_threads = -3;
    expect_error("create, -3 threads", cae_context_create(&o, &ctx), CAE_ERR_INVALID_ARGUMENT, "num_threads");
    cae_context_options_init(&o);
    o.backend = CAE_BACKEND_CPU;
    o.device_index = 2;
    expect_error("create, CPU device 2", cae_context_create(&o, &ctx), CAE_ERR_INVALID_ARGUMENT, "device_index");
    cae_context_options_init(&o);
    o.reserved = 1;
    expect_error("create, reserved != 0", cae_context_create(&o, &ctx), CAE_ERR_INVALID_ARGUMENT, "reserved");

    int32_t devices = 0;
    cae_device_count(&devices);
    if (devices == 0) {
        cae_context_options_init(&o);
        o.backend = CAE_BACKEND_CUDA;
        cae_status s = cae_context_create(&o, &ctx);
        expect_error("create CUDA without a device", s, CAE_ERR_UNSUPPORTED, "CUDA");
        cae_context_options_init(&o);  // AUTO falls back to the CPU
        harness::check(cae_context_create(&o, &ctx) == CAE_OK, "AUTO context without a device");
        cae_context_info info;
        cae_context_query(ctx, &info);
        harness::check(info.backend == CAE_BACKEND_CPU, "AUTO resolves to the CPU without a device");
        cae_context_destroy(ctx);
    }
}

TEST_CASE("context query, threads and seed") {
    cae_context_options o;
    cae_context_options_init(&o);
    o.backend = CAE_BACKEND_CPU;
    o.num_threads = 3;
    o.seed = 0xFEEDFACECAFEBEEFull;
    cae_context* ctx = nullptr;
    harness::check(cae_context_create(&o, &ctx) == CAE_OK, "create");
    cae_context_info info;
    harness::check(cae_context_query(ctx, &info) == CAE_OK, "query");
    std::printf("    %s\n", info.description);
    harness::check(info.backend == CAE_BACKEND_CPU && info.num_threads == 3 && info.device_index == 0 &&
                       info.seed == 0xFEEDFACECAFEBEEFull,
                   "query returns the options");
    harness::check(cae_context_synchronize(ctx) == CAE_OK, "synchronize");
    double gflops = 0;
    harness::check(cae_context_measure_gemm(ctx, CAE_PRECISION_FP32, 64, 48, 32, 2, &gflops) == CAE_OK && gflops > 0,
                   "GEMM rate");
    std::printf("    fp32 GEMM 64x48x32: %.2f GFLOP/s\n", gflops);
    expect_error("GEMM rate, k = 0", cae_context_measure_gemm(ctx, CAE_PRECISION_FP32, 8, 8, 0, 2, &gflops),
                 CAE_ERR_INVALID_ARGUMENT, "expected 1 to 16384");
    expect_error("GEMM rate, NULL out", cae_context_measure_gemm(ctx, CAE_PRECISION_FP32, 8, 8, 8, 2, nullptr),
                 CAE_ERR_INVALID_ARGUMENT, "gflops is NULL");
    double bf16_gflops = 0;
    harness::check(cae_context_measure_gemm(ctx, CAE_PRECISION_BF16, 64, 48, 32, 2, &bf16_gflops) == CAE_OK &&
                       bf16_gflops > 0,
                   "bf16 GEMM rate");
    std::printf("    bf16 GEMM 64x48x32: %.2f GFLOP/s\n", bf16_gflops);
    expect_error("GEMM rate, precision 5", cae_context_measure_gemm(ctx, 5, 8, 8, 8, 2, &gflops),
                 CAE_ERR_INVALID_ARGUMENT, "precision is 5");
    harness::check(cae_context_destroy(ctx) == CAE_OK, "destroy");
    expect_error("query a destroyed context", cae_context_query(ctx, &info), CAE_ERR_INVALID_HANDLE,
                 "not a live cae_context");
    expect_error("destroy twice", cae_context_destroy(ctx), CAE_ERR_INVALID_HANDLE, "not a live cae_context");
    harness::check(cae_context_destroy(nullptr) == CAE_OK, "destroy(NULL) is accepted");
    int forged = 0;
    expect_error("query a forged handle", cae_context_query(reinterpret_cast<cae_context*>(&forged), &info),
                 CAE_ERR_INVALID_HANDLE, "not a live cae_context");
}

TEST_CASE("buffers: copies between every kind") {
    cae_context* ctx = cpu_context(2);
    const int64_t n = 1000;
    std::vector<float> src(n), back(n, -1.0f);
    for (int64_t i = 0; i < n; ++i) src[i] = 0.5f * static_cast<float>(i) - 7.0f;
    const int64_t bytes = n * static_cast<int64_t>(sizeof(float));

    cae_memory_kind kinds[] = {CAE_MEMORY_HOST, CAE_MEMORY_HOST_PINNED, CAE_MEMORY_DEVICE};
    for (cae_memory_kind a : kinds) {
        for (cae_memory_kind b : kinds) {
            cae_buffer *x = nullptr, *y = nullptr;
            harness::check(cae_buffer_create(ctx, a, bytes, &x) == CAE_OK, "create x");
            harness::check(cae_buffer_create(ctx, b, bytes + 8, &y) == CAE_OK, "create y");
            harness::check(cae_buffer_write(x, 0, src.data(), bytes) == CAE_OK, "write");
            harness::check(cae_buffer_copy(y, 8, x, 0, bytes) == CAE_OK, "copy");
            std::fill(back.begin(), back.end(), -1.0f);
            harness::check(cae_buffer_read(y, 8, back.data(), bytes) == CAE_OK, "read");
            harness::check(std::memcmp(back.data(), src.data(), bytes) == 0,
                           "round trip kind " + std::to_string(a) + " -> " + std::to_string(b));
            uint32_t head = 1;
            cae_buffer_read(y, 0, &head, 4);
            harness::check(head == 0, "new buffers are zero-filled");
            cae_memory_kind k;
            int64_t size = 0;
            harness::check(cae_buffer_kind(y, &k) == CAE_OK && k == b, "kind");
            harness::check(cae_buffer_size(y, &size) == CAE_OK && size == bytes + 8, "size");
            cae_buffer_destroy(x);
            cae_buffer_destroy(y);
        }
    }

    cae_buffer* h = nullptr;
    cae_buffer_create(ctx, CAE_MEMORY_HOST_PINNED, 64, &h);
    void* p = nullptr;
    harness::check(cae_buffer_host_pointer(h, &p) == CAE_OK && p != nullptr, "pinned host pointer");
    harness::check(reinterpret_cast<uintptr_t>(p) % 64 == 0, "64-byte aligned");
    harness::check(cae_buffer_fill(h, 4, 8, 0xAB) == CAE_OK, "fill");
    const unsigned char* c = static_cast<const unsigned char*>(p);
    harness::check(c[3] == 0 && c[4] == 0xAB && c[11] == 0xAB && c[12] == 0, "fill writes exactly the range");
    cae_buffer_destroy(h);
    cae_context_destroy(ctx);
}

TEST_CASE("buffers: bad arguments") {
    cae_context* ctx = cpu_context(1);
    cae_buffer* b = nullptr;
    expect_error("create, 0 bytes", cae_buffer_create(ctx, CAE_MEMORY_DEVICE, 0, &b), CAE_ERR_INVALID_ARGUMENT,
                 "bytes is 0");
    expect_error("create, kind 5", cae_buffer_create(ctx, 5, 16, &b), CAE_ERR_INVALID_ARGUMENT, "kind is 5");
    expect_error("create, NULL context", cae_buffer_create(nullptr, CAE_MEMORY_HOST, 16, &b),
                 CAE_ERR_INVALID_ARGUMENT, "context is NULL");
    expect_error("create, 2^62 bytes", cae_buffer_create(ctx, CAE_MEMORY_DEVICE, int64_t(1) << 62, &b),
                 CAE_ERR_OUT_OF_MEMORY, "could not allocate");

    harness::check(cae_buffer_create(ctx, CAE_MEMORY_DEVICE, 16, &b) == CAE_OK, "create");
    expect_error("cross-kind handle", cae_context_synchronize(reinterpret_cast<cae_context*>(b)),
                 CAE_ERR_INVALID_HANDLE, "is a cae_buffer, expected a cae_context");
    char data[32] = {0};
    void* p = nullptr;
    expect_error("write past the end", cae_buffer_write(b, 8, data, 9), CAE_ERR_INVALID_ARGUMENT, "do not fit");
    expect_error("write, negative offset", cae_buffer_write(b, -1, data, 4), CAE_ERR_INVALID_ARGUMENT,
                 "negative");
    expect_error("write, offset overflow", cae_buffer_write(b, INT64_MAX, data, INT64_MAX),
                 CAE_ERR_INVALID_ARGUMENT, "do not fit");
    expect_error("write, NULL source", cae_buffer_write(b, 0, nullptr, 4), CAE_ERR_INVALID_ARGUMENT,
                 "src is NULL");
    expect_error("read past the end", cae_buffer_read(b, 0, data, 17), CAE_ERR_INVALID_ARGUMENT, "do not fit");
    expect_error("host pointer of device memory", cae_buffer_host_pointer(b, &p), CAE_ERR_INVALID_ARGUMENT,
                 "no host address");
    expect_error("overlapping self copy", cae_buffer_copy(b, 0, b, 4, 8), CAE_ERR_INVALID_ARGUMENT, "overlaps");
    harness::check(cae_buffer_copy(b, 0, b, 8, 8) == CAE_OK, "disjoint self copy");
    harness::check(cae_buffer_write(b, 16, data, 0) == CAE_OK, "empty write at the end");

    cae_context* other = cpu_context(1);
    cae_buffer* c = nullptr;
    cae_buffer_create(other, CAE_MEMORY_DEVICE, 16, &c);
    expect_error("copy across contexts", cae_buffer_copy(b, 0, c, 0, 4), CAE_ERR_INVALID_ARGUMENT,
                 "different contexts");
    cae_buffer_destroy(c);
    cae_context_destroy(other);

    cae_buffer_destroy(b);
    expect_error("use a destroyed buffer", cae_buffer_write(b, 0, data, 4), CAE_ERR_INVALID_HANDLE,
                 "not a live cae_buffer");
    harness::check(cae_buffer_destroy(nullptr) == CAE_OK, "destroy(NULL) is accepted");
    cae_context_destroy(ctx);
}

TEST_CASE("buffers outlive their context handle; memory returns to baseline") {
    cae_memory_stats before, during, after;
    cae_memory_query(&before);
    cae_context* ctx = cpu_context(1);
    cae_buffer *d = nullptr, *h = nullptr;
    cae_buffer_create(ctx, CAE_MEMORY_DEVICE, 4096, &d);
    cae_buffer_create(ctx, CAE_MEMORY_HOST, 1000, &h);
    cae_memory_query(&during);
    harness::check(during.live_contexts == before.live_contexts + 1, "one more live context");
    harness::check(during.live_buffers == before.live_buffers + 2, "two more live buffers");
    harness::check(during.device_bytes == before.device_bytes + 4096, "device bytes counted");
    harness::check(during.host_bytes == before.host_bytes + 1000, "host bytes counted");

    cae_context_destroy(ctx);  // the buffers keep the context's resources alive
    float x = 3.5f, y = 0.0f;
    harness::check(cae_buffer_write(d, 0, &x, 4) == CAE_OK && cae_buffer_read(d, 0, &y, 4) == CAE_OK && y == 3.5f,
                   "a buffer works after its context handle is destroyed");
    cae_memory_query(&during);
    harness::check(during.live_contexts == before.live_contexts + 1, "context alive while buffers are");
    cae_buffer_destroy(d);
    cae_buffer_destroy(h);
    cae_memory_query(&after);
    harness::check(after.live_contexts == before.live_contexts && after.live_buffers == before.live_buffers &&
                       after.host_bytes == before.host_bytes && after.device_bytes == before.device_bytes,
                   "memory back to its baseline");
    expect_error("memory query, NULL", cae_memory_query(nullptr), CAE_ERR_INVALID_ARGUMENT, "out is NULL");
}

HARNESS_MAIN
