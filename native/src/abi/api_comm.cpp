// C ABI: communicators, and attaching one to a model.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "cae/cae.h"
#include "comm/comm.h"
#include "common/error.h"
#include "abi/handles.h"
#include "model/model.h"

struct cae_comm {
    std::shared_ptr<cae::Communicator> impl;
    cae_comm_kind kind;
};

namespace {

cae::Communicator& comm_of(const cae_comm* c) {
    cae::check_handle(c, cae::HandleKind::Comm, "comm");
    return *c->impl;
}

cae_comm* register_comm(std::unique_ptr<cae::Communicator> impl, cae_comm_kind kind) {
    auto* c = new cae_comm{std::shared_ptr<cae::Communicator>(std::move(impl)), kind};
    cae::register_handle(c, cae::HandleKind::Comm);
    return c;
}

}  // namespace

CAE_API cae_status cae_comm_create(cae_comm_kind kind, cae_comm** out) {
    return cae::abi_guard("cae_comm_create", [&] {
        CAE_REQUIRE(out != nullptr, "out is NULL");
        *out = nullptr;
        CAE_REQUIRE(kind == CAE_COMM_AUTO || kind == CAE_COMM_SINGLE || kind == CAE_COMM_MPI, "kind is ", kind,
                    ", expected CAE_COMM_AUTO (0), CAE_COMM_SINGLE (1) or CAE_COMM_MPI (2)");
        if (kind == CAE_COMM_AUTO) kind = cae::launched_by_mpi() ? CAE_COMM_MPI : CAE_COMM_SINGLE;
        *out = kind == CAE_COMM_MPI ? register_comm(cae::make_mpi_communicator(nullptr), CAE_COMM_MPI)
                                    : register_comm(cae::make_single_communicator(), CAE_COMM_SINGLE);
    });
}

CAE_API cae_status cae_comm_create_from_mpi(const void* mpi_comm, cae_comm** out) {
    return cae::abi_guard("cae_comm_create_from_mpi", [&] {
        CAE_REQUIRE(out != nullptr, "out is NULL");
        *out = nullptr;
        CAE_REQUIRE(mpi_comm != nullptr, "mpi_comm is NULL");
        *out = register_comm(cae::make_mpi_communicator(mpi_comm), CAE_COMM_MPI);
    });
}

CAE_API cae_status cae_comm_destroy(cae_comm* comm) {
    return cae::abi_guard("cae_comm_destroy", [&] {
        if (!cae::check_handle_or_null(comm, cae::HandleKind::Comm, "comm")) return;
        cae::unregister_handle(comm);
        delete comm;
    });
}

CAE_API cae_status cae_comm_query(const cae_comm* comm, cae_comm_info* out) {
    return cae::abi_guard("cae_comm_query", [&] {
        const cae::Communicator& c = comm_of(comm);
        CAE_REQUIRE(out != nullptr, "out is NULL");
        std::memset(out, 0, sizeof(*out));
        out->kind = comm->kind;
        out->rank = c.rank();
        out->size = c.size();
        out->local_rank = c.local_rank();
        out->local_size = c.local_size();
        const std::string lib = c.library();
        std::memcpy(out->library, lib.data(), std::min(lib.size(), sizeof(out->library) - 1));
    });
}

CAE_API cae_status cae_comm_allreduce_sum(cae_comm* comm, float* data, int64_t count) {
    return cae::abi_guard("cae_comm_allreduce_sum", [&] {
        cae::Communicator& c = comm_of(comm);
        CAE_REQUIRE(count >= 0, "count is ", count);
        CAE_REQUIRE(data != nullptr || count == 0, "data is NULL");
        c.allreduce_sum(data, count);
    });
}

CAE_API cae_status cae_comm_allreduce_sum_f64(cae_comm* comm, double* data, int64_t count) {
    return cae::abi_guard("cae_comm_allreduce_sum_f64", [&] {
        cae::Communicator& c = comm_of(comm);
        CAE_REQUIRE(count >= 0, "count is ", count);
        CAE_REQUIRE(data != nullptr || count == 0, "data is NULL");
        c.allreduce_sum(data, count);
    });
}

CAE_API cae_status cae_comm_broadcast(cae_comm* comm, void* data, int64_t bytes, int32_t root) {
    return cae::abi_guard("cae_comm_broadcast", [&] {
        cae::Communicator& c = comm_of(comm);
        CAE_REQUIRE(bytes >= 0, "bytes is ", bytes);
        CAE_REQUIRE(data != nullptr || bytes == 0, "data is NULL");
        CAE_REQUIRE(root >= 0 && root < c.size(), "root is ", root, ", the communicator has ", c.size(), " ranks");
        c.broadcast(data, bytes, root);
    });
}

CAE_API cae_status cae_comm_barrier(cae_comm* comm) {
    return cae::abi_guard("cae_comm_barrier", [&] { comm_of(comm).barrier(); });
}

CAE_API cae_status cae_comm_abort(cae_comm* comm, int32_t code) {
    return cae::abi_guard("cae_comm_abort", [&] { comm_of(comm).abort(code); });
}

CAE_API cae_status cae_model_set_comm(cae_model* model, cae_comm* comm) {
    return cae::abi_guard("cae_model_set_comm", [&] {
        cae::check_handle(model, cae::HandleKind::Model, "model");
        if (comm == nullptr) {
            model->impl->set_comm(nullptr);
            return;
        }
        cae::check_handle(comm, cae::HandleKind::Comm, "comm");
        model->impl->set_comm(comm->impl);
    });
}

CAE_API cae_status cae_model_query_comm(const cae_model* model, cae_model_comm_info* out) {
    return cae::abi_guard("cae_model_query_comm", [&] {
        cae::check_handle(model, cae::HandleKind::Model, "model");
        CAE_REQUIRE(out != nullptr, "out is NULL");
        std::memset(out, 0, sizeof(*out));
        const cae::Model& m = *model->impl;
        out->ranks = m.ranks();
        out->on_device = m.reduces_on_device() ? 1 : 0;
        const std::string& how = m.reduction();
        std::memcpy(out->reduction, how.data(), std::min(how.size(), sizeof(out->reduction) - 1));
    });
}
