// Communicators through the C ABI. Alone: the single communicator and the argument checks. Under
// `mpirun -np 2` (the test_comm_mpi2 test): MPI's world, its collectives, and data-parallel
// training: 20 steps of 2 ranks x 4 images against 20 steps of 1 process x 8 images on the same
// batches (losses and final weights within fp32 tolerance, the ranks' weights bit-identical).
// CAE_TEST_BACKEND=cuda runs the models on the CUDA backend (the emulated one in the emu tests);
// CAE_TEST_REDUCTION names the gradient path the models must report (for example "NCCL").
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cae/cae.h"
#include "harness.h"
#include "model_batch.h"

namespace {

std::vector<float> all_values(cae_model* m) {
    int32_t n = 0;
    cae_model_param_count(m, &n);
    std::vector<float> out;
    for (int32_t i = 0; i < n; ++i) {
        cae_param_info info;
        cae_model_param_info(m, i, &info);
        std::vector<float> v(static_cast<size_t>(info.numel));
        cae_model_read(m, i, CAE_SLOT_VALUE, v.data(), info.numel);
        out.insert(out.end(), v.begin(), v.end());
    }
    return out;
}

cae_backend test_backend() {
    const char* v = std::getenv("CAE_TEST_BACKEND");
    return v != nullptr && std::string(v) == "cuda" ? CAE_BACKEND_CUDA : CAE_BACKEND_CPU;
}

std::string reduction_of(cae_model* m, cae_model_comm_info* info) {
    harness::check(cae_model_query_comm(m, info) == CAE_OK, std::string("query the model's reduction: ") + cae_last_error());
    return info->reduction;
}

bool launched() {
    const char* v = std::getenv("OMPI_COMM_WORLD_SIZE");
    return v != nullptr && std::atoi(v) > 1;
}

// Rows [first, first + rows) of a batch, as tensors over the batch's memory.
struct Rows {
    cae_tensor img{}, mask{};
    Rows(ModelBatch& b, int64_t first, int64_t rows) {
        img = b.img_t;
        mask = b.mask_t;
        const int64_t img_row = b.img_t.shape[1] * b.img_t.shape[2] * b.img_t.shape[3];
        img.shape[0] = mask.shape[0] = rows;
        img.host_data = b.images.data() + first * img_row;
        mask.host_data = b.mask.data() + first * b.mask_t.shape[1];
    }
};

TEST_CASE("single communicator: rank 0 of 1, collectives leave the data, arguments checked") {
    cae_comm* c = nullptr;
    harness::check(cae_comm_create(CAE_COMM_SINGLE, &c) == CAE_OK, "create single");
    cae_comm_info info;
    harness::check(cae_comm_query(c, &info) == CAE_OK, "query");
    harness::check(info.kind == CAE_COMM_SINGLE && info.rank == 0 && info.size == 1 && info.local_rank == 0 &&
                       info.local_size == 1 && std::string(info.library) == "single",
                   "single: rank 0 of 1, library \"single\"");
    float x[3] = {1, 2, 3};
    harness::check(cae_comm_allreduce_sum(c, x, 3) == CAE_OK && x[0] == 1 && x[2] == 3, "allreduce of one rank");
    harness::check(cae_comm_broadcast(c, x, sizeof(x), 0) == CAE_OK, "broadcast from 0");
    harness::check(cae_comm_broadcast(c, x, sizeof(x), 1) == CAE_ERR_INVALID_ARGUMENT &&
                       std::string(cae_last_error()).find("root is 1") != std::string::npos,
                   std::string("root out of range named: ") + cae_last_error());
    harness::check(cae_comm_allreduce_sum(c, nullptr, 2) == CAE_ERR_INVALID_ARGUMENT, "NULL data refused");
    harness::check(cae_comm_barrier(c) == CAE_OK && cae_comm_abort(c, 3) == CAE_OK, "barrier, abort of one rank");
    harness::check(cae_comm_create(7, &c) == CAE_ERR_INVALID_ARGUMENT &&
                       std::string(cae_last_error()).find("kind is 7") != std::string::npos,
                   std::string("bad kind named: ") + cae_last_error());
    harness::check(c == nullptr, "out is NULL after a failed create");
    cae_comm* d = nullptr;
    cae_comm_create(CAE_COMM_SINGLE, &d);
    harness::check(cae_comm_destroy(d) == CAE_OK, "destroy");
    harness::check(cae_comm_barrier(d) == CAE_ERR_INVALID_HANDLE, "a destroyed communicator is refused");
    harness::check(cae_comm_destroy(nullptr) == CAE_OK, "destroy NULL");
}

TEST_CASE("a model with a single communicator trains as one without") {
    cae_model_config c = tiny_config();
    Fixture a(c, 5), b(c, 5);
    cae_comm* comm = nullptr;
    cae_comm_create(CAE_COMM_SINGLE, &comm);
    harness::check(cae_model_set_comm(b.model, comm) == CAE_OK, "attach");
    cae_comm_destroy(comm);  // the model keeps it
    cae_model_comm_info how;
    harness::check(reduction_of(b.model, &how) == "none: one process" && how.ranks == 1 && how.on_device == 0,
                   std::string("one rank reduces nothing: ") + how.reduction);
    harness::check(cae_model_query_comm(b.model, nullptr) == CAE_ERR_INVALID_ARGUMENT, "NULL out refused");
    cae_step_options o;
    cae_step_options_init(&o);
    o.lr = 1e-3;
    for (int s = 0; s < 3; ++s) {
        ModelBatch batch = make_model_batch(c, 4, 8, 40 + s);
        o.step = s + 1;
        cae_step_result ra, rb;
        cae_train_step(a.model, &batch.img_t, &batch.mask_t, &o, &ra);
        harness::check(cae_train_step(b.model, &batch.img_t, &batch.mask_t, &o, &rb) == CAE_OK,
                       std::string("step with a destroyed-but-attached communicator: ") + cae_last_error());
        harness::check(ra.loss == rb.loss && rb.reduce_ms == 0, "same loss, no reduction");
    }
    std::vector<float> va = all_values(a.model), vb = all_values(b.model);
    harness::check(va == vb, "bit-identical weights");
    harness::check(cae_model_set_comm(b.model, nullptr) == CAE_OK, "detach");
}

TEST_CASE("step options: a batch offset outside the global batch is refused") {
    cae_model_config c = tiny_config();
    Fixture f(c);
    ModelBatch batch = make_model_batch(c, 4, 8, 1);
    cae_step_options o;
    cae_step_options_init(&o);
    cae_step_result r;
    o.batch_offset = 6;
    o.global_batch = 8;
    harness::check(cae_train_step(f.model, &batch.img_t, &batch.mask_t, &o, &r) == CAE_ERR_INVALID_ARGUMENT &&
                       std::string(cae_last_error()).find("batch_offset 6") != std::string::npos,
                   std::string("offset past the end named: ") + cae_last_error());
    o.global_batch = 0;
    harness::check(cae_train_step(f.model, &batch.img_t, &batch.mask_t, &o, &r) == CAE_ERR_INVALID_ARGUMENT,
                   "an offset without a global batch is refused");
}

TEST_CASE("MPI: world, sum, broadcast (under mpirun -np 2)") {
    if (!launched()) {
        std::printf("    SKIPPED: not started by mpirun (test_comm_mpi2 runs this case)\n");
        return;
    }
    cae_comm* c = nullptr;
    cae_status s = cae_comm_create(CAE_COMM_AUTO, &c);
    harness::check(s == CAE_OK, std::string("create from the launcher's environment: ") + cae_last_error());
    if (s != CAE_OK) return;
    cae_comm_info info;
    cae_comm_query(c, &info);
    std::printf("    rank %d of %d (local %d of %d), %s\n", info.rank, info.size, info.local_rank, info.local_size,
                info.library);
    harness::check(info.kind == CAE_COMM_MPI && info.size == std::atoi(std::getenv("OMPI_COMM_WORLD_SIZE")),
                   "MPI world of the launcher's size");
    harness::check(std::string(info.library).find("Open MPI") != std::string::npos, "library named");
    std::vector<float> x(3000000);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(info.rank + 1) * static_cast<float>(i % 7);
    cae_comm_allreduce_sum(c, x.data(), static_cast<int64_t>(x.size()));
    const float ranks_sum = static_cast<float>(info.size * (info.size + 1) / 2);
    bool ok = true;
    for (size_t i = 0; i < x.size(); ++i) ok = ok && x[i] == ranks_sum * static_cast<float>(i % 7);
    harness::check(ok, "sum over ranks of 3M floats");
    double d[2] = {0.5, static_cast<double>(info.rank)};
    cae_comm_allreduce_sum_f64(c, d, 2);
    harness::check(d[0] == 0.5 * info.size && d[1] == info.size * (info.size - 1) / 2.0, "sum of doubles");
    int64_t token = info.rank == 0 ? 0x5eed : -1;
    cae_comm_broadcast(c, &token, sizeof(token), 0);
    harness::check(token == 0x5eed, "broadcast from rank 0");
    harness::check(cae_comm_barrier(c) == CAE_OK, "barrier");
    cae_comm_destroy(c);
}

TEST_CASE("data parallel: 20 steps of ranks x 4 images equal 20 steps of one process (under mpirun -np 2)") {
    if (!launched()) {
        std::printf("    SKIPPED: not started by mpirun (test_comm_mpi2 runs this case)\n");
        return;
    }
    cae_comm* comm = nullptr;
    if (cae_comm_create(CAE_COMM_MPI, &comm) != CAE_OK) {
        harness::fail(std::string("create: ") + cae_last_error());
        return;
    }
    cae_comm_info info;
    cae_comm_query(comm, &info);
    const int64_t rows = 4, global = rows * info.size;
    cae_model_config c = tiny_config();  // stochastic depth on: its draws must follow the global rows
    Fixture ref(c, 11, 2, test_backend()), dp(c, 11, 2, test_backend());
    if (cae_model_set_comm(dp.model, comm) != CAE_OK) {
        harness::fail(std::string("attach: ") + cae_last_error());
        cae_comm_destroy(comm);
        return;
    }
    cae_model_comm_info how;
    const std::string reduction = reduction_of(dp.model, &how);
    std::printf("    rank %d sums gradients by %s\n", info.rank, reduction.c_str());
    harness::check(how.ranks == info.size, "the model reports the communicator's ranks");
    const char* expected = std::getenv("CAE_TEST_REDUCTION");
    if (expected != nullptr) {
        harness::check(reduction.find(expected) != std::string::npos,
                       "the gradients are summed by " + reduction + ", expected " + expected);
    } else {
        harness::check(reduction.find("MPI on host memory") == 0 && how.on_device == 0, "MPI on host memory");
    }
    cae_step_options o;
    cae_step_options_init(&o);
    o.lr = 2e-3;
    o.seed = 9;
    double worst_loss = 0, worst_norm = 0, reduce_ms = 0;
    for (int s = 0; s < 20; ++s) {
        ModelBatch batch = make_model_batch(c, global, 8, 1000 + s);
        o.step = s + 1;
        o.batch_offset = 0;
        o.global_batch = 0;
        cae_step_result r1, r2;
        cae_train_step(ref.model, &batch.img_t, &batch.mask_t, &o, &r1);
        Rows mine(batch, info.rank * rows, rows);
        o.batch_offset = info.rank * rows;
        o.global_batch = global;
        if (cae_train_step(dp.model, &mine.img, &mine.mask, &o, &r2) != CAE_OK) {
            harness::fail(std::string("data-parallel step: ") + cae_last_error());
            break;
        }
        worst_loss = std::max(worst_loss, std::abs(double(r2.loss) - r1.loss) / std::abs(double(r1.loss)));
        worst_norm = std::max(worst_norm, std::abs(double(r2.grad_norm) - r1.grad_norm) / double(r1.grad_norm));
        reduce_ms += r2.reduce_ms;
    }
    harness::check_error("loss of the global batch, worst step", worst_loss, 1e-5);
    harness::check_error("gradient norm after averaging, worst step", worst_norm, 1e-4);
    std::vector<float> want = all_values(ref.model), got = all_values(dp.model);
    // The key LayerNorm bias of the regressor's cross-attention has a gradient of exactly 0 in exact
    // arithmetic (it shifts every logit of a query alike, and the softmax ignores that): its float
    // gradient is rounding noise, which AdamW turns into steps of +-lr, in any implementation.
    double worst = 0;
    std::string worst_name;
    int32_t count = 0;
    cae_model_param_count(ref.model, &count);
    size_t at = 0;
    for (int32_t i = 0; i < count; ++i) {
        cae_param_info p;
        cae_model_param_info(ref.model, i, &p);
        const std::string name = p.name;
        const double e = harness::rel_error(got.data() + at, want.data() + at, static_cast<size_t>(p.numel));
        at += static_cast<size_t>(p.numel);
        if (name.find("norm1_k.bias") != std::string::npos) continue;
        if (e >= worst) worst = e, worst_name = name;
    }
    harness::check_error("weights after 20 steps, worst parameter (" + worst_name + ")", worst, 1e-5);
    std::vector<float> root = got;
    cae_comm_broadcast(comm, root.data(), static_cast<int64_t>(root.size() * sizeof(float)), 0);
    harness::check(std::memcmp(root.data(), got.data(), root.size() * sizeof(float)) == 0,
                   "every rank holds rank 0's weights bit for bit");
    std::printf("    rank %d: %.2f ms per step averaging over %d ranks\n", info.rank, reduce_ms / 20, info.size);
    cae_comm_destroy(comm);
}

}  // namespace

HARNESS_MAIN
