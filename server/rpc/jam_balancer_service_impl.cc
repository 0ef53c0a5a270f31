#include "server/rpc/jam_balancer_service_impl.h"

#include <grpcpp/support/proto_buffer_writer.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/arena.h"
#include "server/rpc/operations.h"
#include "server/rpc/request_parser.h"

namespace jambalancer {
namespace {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

// One call's request, its command and its response. The messages live on
// an arena of their own: parsing a Batch and building its results take a
// few arena blocks instead of a heap block per message and string, and the
// call ends with one free per block. The command borrows the request's
// strings. Alive until the strand has answered.
template <typename Command, typename Request, typename Response>
class Call {
 public:
  Call()
      : arena_(ArenaSettings()),
        request_(google::protobuf::Arena::CreateMessage<Request>(&arena_)),
        response_(google::protobuf::Arena::CreateMessage<Response>(&arena_)) {}

  Request& request() { return *request_; }
  Response& response() { return *response_; }
  // Set once the request has parsed into a command.
  std::optional<Command> command;

 private:
  static google::protobuf::ArenaOptions ArenaSettings() {
    google::protobuf::ArenaOptions options;
    options.start_block_size = 1024;  // A single call fits in one block.
    return options;
  }

  google::protobuf::Arena arena_;
  Request* const request_;    // Owned by arena_.
  Response* const response_;  // Owned by arena_.
};

}  // namespace

RpcMetrics JamBalancerServiceImpl::NewRpcMetrics() {
  return RpcMetrics(
      v1::JamBalancerService::service_full_name(),
      std::vector<std::string>(std::begin(kRpcNames), std::end(kRpcNames)));
}

template <typename Command, typename Request, typename Response>
grpc::ServerUnaryReactor* JamBalancerServiceImpl::Serve(
    Rpc rpc, grpc::CallbackServerContext* context,
    const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  const auto started = std::chrono::steady_clock::now();
  const auto method = static_cast<size_t>(rpc);
  metrics_->Started(method);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Finishes the call; any thread. Counts it as handled.
  auto finish = [this, method, reactor, started](const grpc::Status& status) {
    metrics_->Handled(
        method, static_cast<absl::StatusCode>(status.error_code()),
        absl::FromChrono(std::chrono::steady_clock::now() - started));
    reactor->Finish(status);
  };

  auto call = std::make_unique<Call<Command, Request, Response>>();
  absl::Status status = ParseRequest(*request, &call->request());
  if (status.ok()) {
    absl::StatusOr<Command> command = parser_.Parse(call->request());
    if (command.ok()) {
      call->command.emplace(*std::move(command));
    } else {
      status = command.status();
    }
  }
  if (!status.ok()) {
    finish(ToGrpcStatus(status));
    return reactor;
  }
  const bool posted = pool_->Post([response, finish, call = std::move(call)](
                                      PoolState& state, absl::Time now) {
    Apply(*call->command, now, state.jams, &call->response());
    grpc::ProtoBufferWriter writer(
        response, grpc::kProtoBufferWriterMaxBufferLength,
        static_cast<int>(call->response().ByteSizeLong()));
    finish(call->response().SerializeToZeroCopyStream(&writer)
               ? grpc::Status::OK
               : grpc::Status(grpc::StatusCode::INTERNAL,
                              "cannot serialize the response"));
  });
  if (!posted) {
    finish(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
  }
  return reactor;
}

#define JAM_BALANCER_DEFINE_HANDLER(Method, field)                            \
  grpc::ServerUnaryReactor* JamBalancerServiceImpl::Method(                   \
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,  \
      grpc::ByteBuffer* response) {                                           \
    return Serve<Method##Command, v1::Method##Request, v1::Method##Response>( \
        Rpc::k##Method, context, request, response);                          \
  }
JAM_BALANCER_RPCS(JAM_BALANCER_DEFINE_HANDLER)
#undef JAM_BALANCER_DEFINE_HANDLER

}  // namespace jambalancer
