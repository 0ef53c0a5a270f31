#include "server/rpc/jam_balancer_service_impl.h"

#include <grpcpp/support/proto_buffer_writer.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/arena.h"
#include "server/rpc/operations.h"
#include "server/rpc/request_parser.h"

namespace jambalancer {
namespace {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

// Serializes `response` into `bytes`: OK, or INTERNAL if it cannot.
grpc::Status Serialize(const google::protobuf::Message& response,
                       grpc::ByteBuffer* bytes) {
  grpc::ProtoBufferWriter writer(bytes, grpc::kProtoBufferWriterMaxBufferLength,
                                 static_cast<int>(response.ByteSizeLong()));
  return response.SerializeToZeroCopyStream(&writer)
             ? grpc::Status::OK
             : grpc::Status(grpc::StatusCode::INTERNAL,
                            "cannot serialize the response");
}

const grpc::Status kShuttingDown(grpc::StatusCode::UNAVAILABLE,
                                 "server is shutting down");

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
      std::vector<std::string>(std::begin(kRpcNames), std::end(kRpcNames)),
      std::vector<std::string>(std::begin(kRpcTypes), std::end(kRpcTypes)));
}

template <typename Command, typename Request, typename Response>
grpc::ServerUnaryReactor* JamBalancerServiceImpl::Serve(
    Rpc rpc, grpc::CallbackServerContext* context,
    const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  const auto started = std::chrono::steady_clock::now();
  const auto method = static_cast<size_t>(rpc);
  metrics_->Started(method);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Finishes the call, its operation having run at `epoch` (none: it did not
  // run); any thread. Counts it as handled.
  auto finish = [this, method, reactor, started, context](
                    const grpc::Status& result,
                    std::optional<int64_t> epoch = std::nullopt) {
    const grpc::Status status = Gate(context, result, epoch);
    metrics_->Handled(
        method, static_cast<absl::StatusCode>(status.error_code()),
        absl::FromChrono(std::chrono::steady_clock::now() - started));
    reactor->Finish(status);
  };
  if (!MayStart()) {
    finish(grpc::Status::OK);  // Refused by the gate.
    return reactor;
  }

  // A call cancelled before its message arrived reaches here without one
  // (not even an empty one): never parse it, it would count as an invalid
  // request.
  if (!request->Valid()) {
    finish(grpc::Status(grpc::StatusCode::CANCELLED,
                        "the call ended before its request message arrived"));
    return reactor;
  }
  if (std::optional<grpc::Status> gone = Abandoned(context); gone.has_value()) {
    finish(*gone);
    return reactor;
  }
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
  const bool posted =
      pool_->Post([context, response, finish, call = std::move(call)](
                      PoolState& state, absl::Time now) mutable {
        // Whoever asked is gone: the operation is not run.
        if (std::optional<grpc::Status> gone = Abandoned(context);
            gone.has_value()) {
          finish(*gone);
          return;
        }
        const int64_t epoch = state.epoch;
        if constexpr (std::is_same_v<Command, EndSessionCommand>) {
          // Answered once the front end's users are all gone (the pool removes
          // them in steps); the call lives until then.
          Call<Command, Request, Response>& ending = *call;
          const absl::Status applied =
              Apply(*ending.command, now, state,
                    [response, finish, epoch,
                     call = std::move(call)](absl::StatusOr<uint64_t> removed) {
                      if (!removed.ok()) {
                        finish(ToGrpcStatus(removed.status()), epoch);
                        return;
                      }
                      call->response().set_removed_user_count(*removed);
                      finish(Serialize(call->response(), response), epoch);
                    });
          if (!applied.ok()) finish(ToGrpcStatus(applied), epoch);
        } else {
          const absl::Status applied =
              Apply(*call->command, now, state, &call->response());
          finish(applied.ok() ? Serialize(call->response(), response)
                              : ToGrpcStatus(applied),
                 epoch);
        }
      });
  if (!posted) finish(kShuttingDown);
  return reactor;
}

std::optional<grpc::Status> JamBalancerServiceImpl::Abandoned(
    grpc::CallbackServerContext* context) {
  if (context->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED,
                        "the call was cancelled before it ran");
  }
  if (context->deadline() <= std::chrono::system_clock::now()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "the call's deadline passed before it ran");
  }
  return std::nullopt;
}

bool JamBalancerServiceImpl::MayStart() const {
  return gate_ == nullptr || gate_->MayServe(absl::Now());
}

grpc::Status JamBalancerServiceImpl::Gate(
    grpc::CallbackServerContext* context, const grpc::Status& status,
    std::optional<int64_t> applied_epoch) const {
  if (gate_ == nullptr) return status;
  const int64_t epoch = gate_->Epoch();
  if (epoch > 0) {
    context->AddTrailingMetadata(kEpochMetadataKey, absl::StrCat(epoch));
  }
  if (gate_->MayServe(absl::Now()) &&
      (!applied_epoch.has_value() || *applied_epoch == epoch)) {
    return status;
  }
  // A standby, a fenced leader, or an answer from a state of an earlier
  // leadership: none may reach the caller.
  const std::string leader = gate_->LeaderAddress();
  if (!leader.empty()) context->AddTrailingMetadata(kLeaderMetadataKey, leader);
  return grpc::Status(
      grpc::StatusCode::UNAVAILABLE,
      leader.empty() ? "this replica is not the leader, and no leader is "
                       "known yet: retry"
                     : absl::StrCat("this replica is not the leader: call the "
                                    "leader at ",
                                    leader, " (trailing metadata ",
                                    kLeaderMetadataKey, ")"));
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

// One Sync stream: its messages are parsed as they come (on an arena of the
// stream's own) and applied together, on the strand, once the client
// half-closes. A stream that breaks before that changes nothing. Deletes
// itself when gRPC is done with it.
class JamBalancerServiceImpl::SyncReactor
    : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  SyncReactor(JamBalancerServiceImpl* service,
              grpc::CallbackServerContext* context, grpc::ByteBuffer* response)
      : service_(service),
        context_(context),
        response_(response),
        started_(std::chrono::steady_clock::now()) {
    service_->metrics_->Started(kMethod);
    if (!service_->MayStart()) {
      Done(grpc::Status::OK);  // Refused by the gate.
      return;
    }
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Half-closed, or broken (then nothing is applied).
      if (context_->IsCancelled()) {
        Done(grpc::Status(grpc::StatusCode::CANCELLED,
                          "the Sync stream broke before it ended"));
      } else {
        Apply();
      }
      return;
    }
    auto* message =
        google::protobuf::Arena::CreateMessage<v1::SyncRequest>(&arena_);
    if (absl::Status status = ParseRequest(incoming_, message); !status.ok()) {
      Done(ToGrpcStatus(absl::Status(status.code(),
                                     absl::StrCat("messages[", messages_.size(),
                                                  "]: ", status.message()))));
      return;
    }
    messages_.push_back(message);
    incoming_.Clear();
    StartRead(&incoming_);
  }

  void OnDone() override { delete this; }

 private:
  static constexpr size_t kMethod = static_cast<size_t>(Rpc::kSync);

  void Apply() {
    absl::StatusOr<SyncCommand> command = service_->parser_.Parse(messages_);
    if (!command.ok()) {
      Done(ToGrpcStatus(command.status()));
      return;
    }
    command_.emplace(*std::move(command));
    // Grouping the lists takes a while for a large Sync: done here, off the
    // strand, which then applies the plan in steps.
    JamCollection::Replacement plan =
        JamCollection::PlanReplace(command_->frontend_id, command_->jams);
    const bool posted =
        service_->pool_->Post([this, plan = std::move(plan)](
                                  PoolState& state, absl::Time now) mutable {
          if (std::optional<grpc::Status> gone = service_->Abandoned(context_);
              gone.has_value()) {
            Done(*gone);
            return;
          }
          const int64_t epoch = state.epoch;
          SyncTask task(std::move(plan), command_->lease_ttl,
                        [this, epoch](absl::StatusOr<SyncOutcome> outcome) {
                          if (!outcome.ok()) {
                            Done(ToGrpcStatus(outcome.status()), epoch);
                            return;
                          }
                          v1::SyncResponse response;
                          response.set_lease_expires_unix_ms(
                              absl::ToUnixMillis(outcome->lease_expires));
                          response.set_jam_count(outcome->counts.jam_count);
                          response.set_user_count(outcome->counts.member_count);
                          Done(Serialize(response, response_), epoch);
                        });
          const absl::Status queued =
              jambalancer::Apply(*command_, now, state, std::move(task));
          if (!queued.ok()) Done(ToGrpcStatus(queued), epoch);
        });
    if (!posted) Done(kShuttingDown);
  }

  // Counts the call and finishes it, its operation having run at `epoch`
  // (none: it did not run); `this` lives until OnDone.
  void Done(const grpc::Status& result,
            std::optional<int64_t> epoch = std::nullopt) {
    const grpc::Status status = service_->Gate(context_, result, epoch);
    service_->metrics_->Handled(
        kMethod, static_cast<absl::StatusCode>(status.error_code()),
        absl::FromChrono(std::chrono::steady_clock::now() - started_));
    Finish(status);
  }

  JamBalancerServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  grpc::ByteBuffer* const response_;
  const std::chrono::steady_clock::time_point started_;
  grpc::ByteBuffer incoming_;
  google::protobuf::Arena arena_;
  std::vector<const v1::SyncRequest*> messages_;  // On arena_.
  std::optional<SyncCommand> command_;            // Borrows messages_.
};

grpc::ServerReadReactor<grpc::ByteBuffer>* JamBalancerServiceImpl::Sync(
    grpc::CallbackServerContext* context, grpc::ByteBuffer* response) {
  return new SyncReactor(this, context, response);
}

}  // namespace jambalancer
