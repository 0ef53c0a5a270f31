#include "server/rpc/jam_balancer_service_impl.h"

#include <grpcpp/support/proto_buffer_writer.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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
  // Finishes the call, its operation having run on `pool` (null: none
  // found) at `epoch` (none: it did not run); any thread. Counts it as
  // handled.
  auto finish = [this, method, reactor, started, context](
                    const ServedPool* pool, const grpc::Status& result,
                    std::optional<int64_t> epoch = std::nullopt) {
    const grpc::Status status =
        pool == nullptr ? result : Gate(context, *pool, result, epoch);
    metrics_->Handled(
        method, static_cast<absl::StatusCode>(status.error_code()),
        absl::FromChrono(std::chrono::steady_clock::now() - started));
    reactor->Finish(status);
  };

  // A call cancelled before its message arrived reaches here without one
  // (not even an empty one): never parse it, it would count as an invalid
  // request.
  if (!request->Valid()) {
    finish(nullptr,
           grpc::Status(grpc::StatusCode::CANCELLED,
                        "the call ended before its request message arrived"));
    return reactor;
  }
  if (std::optional<grpc::Status> gone = Abandoned(context); gone.has_value()) {
    finish(nullptr, *gone);
    return reactor;
  }
  auto call = std::make_unique<Call<Command, Request, Response>>();
  absl::Status status = ParseRequest(*request, &call->request());
  ServedPool* pool = nullptr;
  if (status.ok()) {
    absl::StatusOr<ServedPool*> found =
        pools_->Find("pool", call->request().pool());
    if (found.ok()) {
      pool = *found;
    } else {
      status = found.status();
    }
  }
  if (status.ok() && !pool->Serving(absl::Now())) {
    finish(pool, grpc::Status::OK);  // Refused by the pool's gate.
    return reactor;
  }
  if (status.ok()) {
    absl::StatusOr<Command> command = pool->parser.Parse(call->request());
    if (command.ok()) {
      call->command.emplace(*std::move(command));
    } else {
      status = command.status();
    }
  }
  if (!status.ok()) {
    finish(nullptr, ToGrpcStatus(status));
    return reactor;
  }
  const bool posted =
      pool->pool.Post([context, response, finish, pool, call = std::move(call)](
                          PoolState& state, absl::Time now) mutable {
        // Whoever asked is gone: the operation is not run.
        if (std::optional<grpc::Status> gone = Abandoned(context);
            gone.has_value()) {
          finish(pool, *gone);
          return;
        }
        const absl::Status applied =
            Apply(*call->command, now, state, &call->response());
        finish(pool,
               applied.ok() ? Serialize(call->response(), response)
                            : ToGrpcStatus(applied),
               state.epoch);
      });
  if (!posted) finish(pool, kShuttingDown);
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

namespace {

// Whether an answer of `pool`'s operation, run at `applied_epoch` (none: not
// run), may go out: `status` if so, else UNAVAILABLE naming the pool's
// leader (also set in `leader`, empty if unknown).
grpc::Status Admitted(const ServedPool& pool, const grpc::Status& status,
                      std::optional<int64_t> applied_epoch,
                      std::string* leader) {
  leader->clear();
  if (pool.gate == nullptr) return status;
  if (pool.gate->MayServe(absl::Now()) &&
      (!applied_epoch.has_value() || *applied_epoch == pool.gate->Epoch())) {
    return status;
  }
  // A standby, a fenced leader, or an answer from a state of an earlier
  // leadership: none may reach the caller.
  *leader = pool.gate->LeaderAddress();
  const std::string of_pool = absl::StrCat(
      "this replica is not the leader of pool \"", pool.config.name, "\"");
  return grpc::Status(
      grpc::StatusCode::UNAVAILABLE,
      leader->empty()
          ? absl::StrCat(of_pool, ", and no leader is known yet: retry")
          : absl::StrCat(of_pool, ": call the leader at ", *leader,
                         " (trailing metadata ", kLeaderMetadataKey, ")"));
}

void AddGateMetadata(grpc::CallbackServerContext* context, int64_t epoch,
                     const std::string& leader) {
  if (epoch > 0) {
    context->AddTrailingMetadata(kEpochMetadataKey, absl::StrCat(epoch));
  }
  if (!leader.empty()) context->AddTrailingMetadata(kLeaderMetadataKey, leader);
}

}  // namespace

grpc::Status JamBalancerServiceImpl::Gate(
    grpc::CallbackServerContext* context, const ServedPool& pool,
    const grpc::Status& status, std::optional<int64_t> applied_epoch) {
  if (pool.gate == nullptr) return status;
  std::string leader;
  const grpc::Status admitted = Admitted(pool, status, applied_epoch, &leader);
  AddGateMetadata(context, pool.gate->Epoch(), leader);
  return admitted;
}

absl::StatusOr<std::vector<ServedPool*>> JamBalancerServiceImpl::ServingPools(
    grpc::CallbackServerContext* context) const {
  std::vector<ServedPool*> serving;
  const absl::Time now = absl::Now();
  for (const std::unique_ptr<ServedPool>& pool : pools_->pools()) {
    if (pool->Serving(now)) serving.push_back(pool.get());
  }
  if (!serving.empty()) return serving;
  const grpc::Status refused =
      Gate(context, pools_->default_pool(), grpc::Status::OK, std::nullopt);
  return absl::UnavailableError(absl::StrCat(
      "this replica serves no pool now (", refused.error_message(), ")"));
}

#define JAM_BALANCER_DEFINE_HANDLER(Method, field)                            \
  grpc::ServerUnaryReactor* JamBalancerServiceImpl::Method(                   \
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,  \
      grpc::ByteBuffer* response) {                                           \
    return Serve<Method##Command, v1::Method##Request, v1::Method##Response>( \
        Rpc::k##Method, context, request, response);                          \
  }
JAM_BALANCER_POOL_RPCS(JAM_BALANCER_DEFINE_HANDLER)
#undef JAM_BALANCER_DEFINE_HANDLER

// One call on several pools: an operation posted to each, their answers
// gathered; the last pool to answer finishes the call. The answer is the
// first error in pool order (each pool's answer gated as a single-pool
// call's would be), else `merge` of the pools' parts. Trailing metadata:
// the default pool's epoch when it is among the pools, and the leader of a
// pool whose gate refused. Deletes itself when done. Thread-safe.
template <typename Part>
class JamBalancerServiceImpl::PoolsCall {
 public:
  // Merges the parts (one per pool, in the pools' order) into the answer;
  // OK or an error.
  using Merge = absl::AnyInvocable<grpc::Status(std::vector<Part>&) &&>;
  // Finishes the call with its status (counting it).
  using Finish = absl::AnyInvocable<void(const grpc::Status&) &&>;

  // `gated`: each pool's answer goes through its gate (calls that act on
  // the pools); else (reads any replica answers) only the operations'
  // statuses count.
  PoolsCall(grpc::CallbackServerContext* context,
            std::vector<ServedPool*> pools, Merge merge, Finish finish,
            bool gated = true)
      : context_(context),
        gated_(gated),
        pools_(std::move(pools)),
        parts_(pools_.size()),
        answers_(pools_.size(), grpc::Status::OK),
        epochs_(pools_.size()),
        remaining_(pools_.size()),
        merge_(std::move(merge)),
        finish_(std::move(finish)) {}

  const std::vector<ServedPool*>& pools() const { return pools_; }

  // Posts `operation(*this, i, state, now)` to the strand of each pool i,
  // which must Answer(i, ...) once; a pool shut down is answered
  // UNAVAILABLE. The last answer deletes this object (maybe inside a Post):
  // the loop reads only its own copy of the pools.
  template <typename Operation>
  void PostToEach(const Operation& operation) {
    const std::vector<ServedPool*> targets = pools_;
    for (size_t i = 0; i < targets.size(); ++i) {
      if (!targets[i]->pool.Post(
              [this, i, operation](PoolState& state, absl::Time now) {
                operation(*this, i, state, now);
              })) {
        Answer(i, kShuttingDown, {}, std::nullopt);
      }
    }
  }

  // The part of pool `index`, computed on its strand at `epoch`; `status`
  // is its operation's result (not OK: `part` is not used).
  void Answer(size_t index, const grpc::Status& status, Part part,
              std::optional<int64_t> epoch) {
    {
      absl::MutexLock lock(&mu_);
      answers_[index] = status;
      parts_[index] = std::move(part);
      epochs_[index] = epoch;
      if (--remaining_ > 0) return;
    }
    Complete();
  }

 private:
  void Complete() {
    grpc::Status result = grpc::Status::OK;
    std::string leader;
    int64_t epoch = 0;
    for (size_t i = 0; i < pools_.size(); ++i) {
      const ServedPool& pool = *pools_[i];
      if (gated_ && pool.gate != nullptr &&
          pool.config.name == kDefaultPoolName) {
        epoch = pool.gate->Epoch();
      }
      std::string refused_by;
      const grpc::Status admitted =
          gated_ ? Admitted(pool, answers_[i], epochs_[i], &refused_by)
                 : answers_[i];
      if (result.ok() && !admitted.ok()) {
        result = admitted;
        leader = refused_by;
      }
    }
    if (result.ok()) result = std::move(merge_)(parts_);
    AddGateMetadata(context_, epoch, leader);
    std::move(finish_)(result);
    delete this;
  }

  grpc::CallbackServerContext* const context_;
  const bool gated_;
  const std::vector<ServedPool*> pools_;
  absl::Mutex mu_;
  std::vector<Part> parts_ ABSL_GUARDED_BY(mu_);
  std::vector<grpc::Status> answers_ ABSL_GUARDED_BY(mu_);
  std::vector<std::optional<int64_t>> epochs_ ABSL_GUARDED_BY(mu_);
  size_t remaining_ ABSL_GUARDED_BY(mu_);
  Merge merge_;
  Finish finish_;
};

namespace {

// A unary call's bookkeeping for the handlers of their own: its start, and
// finishing it counted under its method.
class UnaryCall {
 public:
  UnaryCall(Rpc rpc, grpc::CallbackServerContext* context, RpcMetrics* metrics)
      : method_(static_cast<size_t>(rpc)),
        reactor_(context->DefaultReactor()),
        metrics_(metrics),
        started_(std::chrono::steady_clock::now()) {
    metrics_->Started(method_);
  }
  grpc::ServerUnaryReactor* reactor() const { return reactor_; }
  void Finish(const grpc::Status& status) const {
    metrics_->Handled(
        method_, static_cast<absl::StatusCode>(status.error_code()),
        absl::FromChrono(std::chrono::steady_clock::now() - started_));
    reactor_->Finish(status);
  }

 private:
  const size_t method_;
  grpc::ServerUnaryReactor* const reactor_;
  RpcMetrics* const metrics_;
  const std::chrono::steady_clock::time_point started_;
};

// Parses a request of a handler of its own; INVALID_ARGUMENT or CANCELLED
// as Serve would answer it.
template <typename Request>
absl::Status ParseOwn(const grpc::ByteBuffer* bytes, Request* request) {
  if (!bytes->Valid()) {
    return absl::CancelledError(
        "the call ended before its request message arrived");
  }
  return ParseRequest(*bytes, request);
}

}  // namespace

template <typename Command, typename Request>
absl::StatusOr<std::vector<ServedPool*>>
JamBalancerServiceImpl::ParseServerCall(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* bytes,
                                        Request* request,
                                        std::optional<Command>* command) const {
  if (absl::Status parsed = ParseOwn(bytes, request); !parsed.ok()) {
    return parsed;
  }
  // Its fields follow the same rules in every pool.
  absl::StatusOr<Command> checked =
      pools_->default_pool().parser.Parse(*request);
  if (!checked.ok()) return checked.status();
  command->emplace(*std::move(checked));
  return ServingPools(context);
}

grpc::ServerUnaryReactor* JamBalancerServiceImpl::KeepAlive(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  const UnaryCall call(Rpc::kKeepAlive, context, metrics_);
  auto message = std::make_shared<v1::KeepAliveRequest>();
  std::optional<KeepAliveCommand> command;
  absl::StatusOr<std::vector<ServedPool*>> pools =
      ParseServerCall(context, request, message.get(), &command);
  if (!pools.ok()) {
    call.Finish(ToGrpcStatus(pools.status()));
    return call.reactor();
  }
  // Renewed in every pool this replica serves: the lease answered is the
  // earliest; a pool without the session fails the call (the front end
  // must resync).
  auto* gather = new PoolsCall<absl::Time>(
      context, *std::move(pools),
      [response](std::vector<absl::Time>& expiries) {
        v1::KeepAliveResponse answer;
        answer.set_lease_expires_unix_ms(absl::ToUnixMillis(
            *std::min_element(expiries.begin(), expiries.end())));
        return Serialize(answer, response);
      },
      [call](const grpc::Status& status) { call.Finish(status); });
  gather->PostToEach([context, message, command = *command](
                         PoolsCall<absl::Time>& gather, size_t i,
                         PoolState& state, absl::Time now) {
    if (std::optional<grpc::Status> gone = Abandoned(context)) {
      gather.Answer(i, *gone, {}, std::nullopt);
      return;
    }
    v1::KeepAliveResponse renewed;
    const absl::Status applied = Apply(command, now, state, &renewed);
    gather.Answer(i, ToGrpcStatus(applied),
                  absl::FromUnixMillis(renewed.lease_expires_unix_ms()),
                  state.epoch);
  });
  return call.reactor();
}

grpc::ServerUnaryReactor* JamBalancerServiceImpl::EndSession(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  const UnaryCall call(Rpc::kEndSession, context, metrics_);
  auto message = std::make_shared<v1::EndSessionRequest>();
  std::optional<EndSessionCommand> command;
  absl::StatusOr<std::vector<ServedPool*>> pools =
      ParseServerCall(context, request, message.get(), &command);
  if (!pools.ok()) {
    call.Finish(ToGrpcStatus(pools.status()));
    return call.reactor();
  }
  // Ended in every pool this replica serves; answered once every pool has
  // removed the front end's users. A pool where the session is not live
  // has nothing to end; the call fails only if no pool had it.
  struct Ended {
    bool had_session = false;
    uint64_t removed = 0;
  };
  const std::string frontend_id(command->frontend_id);
  auto* gather = new PoolsCall<Ended>(
      context, *std::move(pools),
      [response, frontend_id](std::vector<Ended>& parts) {
        v1::EndSessionResponse answer;
        bool had_session = false;
        for (const Ended& part : parts) {
          had_session = had_session || part.had_session;
          answer.set_removed_user_count(answer.removed_user_count() +
                                        part.removed);
        }
        if (!had_session) {
          return grpc::Status(
              grpc::StatusCode::FAILED_PRECONDITION,
              absl::StrCat("front end ", frontend_id,
                           " has no live session (Sync starts one)"));
        }
        return Serialize(answer, response);
      },
      [call](const grpc::Status& status) { call.Finish(status); });
  gather->PostToEach([context, message, command = *command](
                         PoolsCall<Ended>& gather, size_t i, PoolState& state,
                         absl::Time now) {
    if (std::optional<grpc::Status> gone = Abandoned(context)) {
      gather.Answer(i, *gone, {}, std::nullopt);
      return;
    }
    const int64_t epoch = state.epoch;
    const absl::Status applied =
        Apply(command, now, state,
              [gather = &gather, i, epoch](absl::StatusOr<uint64_t> removed) {
                if (!removed.ok()) {
                  gather->Answer(i, ToGrpcStatus(removed.status()), {}, epoch);
                  return;
                }
                gather->Answer(i, grpc::Status::OK, {true, *removed}, epoch);
              });
    // No live session here: nothing to end in this pool.
    if (applied.code() == absl::StatusCode::kFailedPrecondition) {
      gather.Answer(i, grpc::Status::OK, {}, epoch);
    } else if (!applied.ok()) {
      gather.Answer(i, ToGrpcStatus(applied), {}, epoch);
    }
  });
  return call.reactor();
}

grpc::ServerUnaryReactor* JamBalancerServiceImpl::ListPools(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  const UnaryCall call(Rpc::kListPools, context, metrics_);
  v1::ListPoolsRequest message;
  if (absl::Status status = ParseOwn(request, &message); !status.ok()) {
    call.Finish(ToGrpcStatus(status));
    return call.reactor();
  }
  // Any replica answers, for every pool (a pool it does not serve holds
  // nothing here): each pool's counts are read on its strand.
  std::vector<ServedPool*> all;
  for (const std::unique_ptr<ServedPool>& pool : pools_->pools()) {
    all.push_back(pool.get());
  }
  auto* gather = new PoolsCall<v1::Pool>(
      context, all,
      [response, all](std::vector<v1::Pool>& parts) {
        v1::ListPoolsResponse answer;
        const absl::Time now = absl::Now();
        for (size_t i = 0; i < parts.size(); ++i) {
          const ServedPool& served = *all[i];
          v1::Pool& pool = *answer.add_pools();
          pool = std::move(parts[i]);
          pool.set_name(served.config.name);
          pool.set_max_users(served.config.max_users);
          pool.set_reservation_ttl_ms(static_cast<uint32_t>(
              absl::ToInt64Milliseconds(served.config.reservation_ttl)));
          pool.set_max_reservation_ttl_ms(static_cast<uint32_t>(
              absl::ToInt64Milliseconds(served.config.max_reservation_ttl)));
          pool.set_serving(served.Serving(now));
          if (served.gate != nullptr) {
            pool.set_leader_address(served.gate->LeaderAddress());
            pool.set_epoch(served.gate->Epoch());
          }
        }
        return Serialize(answer, response);
      },
      [call](const grpc::Status& status) { call.Finish(status); },
      /*gated=*/false);
  gather->PostToEach([](PoolsCall<v1::Pool>& gather, size_t i, PoolState& state,
                        absl::Time now) {
    v1::GetStatsResponse stats;
    (void)Apply(GetStatsCommand{}, now, state, &stats);
    v1::Pool pool;
    pool.set_jam_count(stats.jam_count());
    pool.set_user_count(stats.user_count());
    pool.set_reservation_count(stats.reservation_count());
    pool.set_session_count(stats.session_count());
    // Read-only: answered whoever leads.
    gather.Answer(i, grpc::Status::OK, std::move(pool), std::nullopt);
  });
  return call.reactor();
}

grpc::ServerUnaryReactor* JamBalancerServiceImpl::GetRouting(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  const UnaryCall call(Rpc::kGetRouting, context, metrics_);
  v1::GetRoutingRequest message;
  if (absl::Status status = ParseOwn(request, &message); !status.ok()) {
    call.Finish(ToGrpcStatus(status));
    return call.reactor();
  }
  // What this replica knows of every pool's election; no strand involved.
  v1::GetRoutingResponse answer;
  for (const std::unique_ptr<ServedPool>& pool : pools_->pools()) {
    v1::PoolRoute& route = *answer.add_routes();
    route.set_pool(pool->config.name);
    if (pool->gate != nullptr) {
      route.set_leader_address(pool->gate->LeaderAddress());
      route.set_epoch(pool->gate->Epoch());
    }
  }
  call.Finish(Serialize(answer, response));
  return call.reactor();
}

// One Sync stream: its messages are parsed as they come (on an arena of the
// stream's own) and applied once the client half-closes: in every pool this
// replica serves, each pool's part in strand steps of that pool. A stream
// that breaks before that changes nothing; a Sync naming an unconfigured
// pool, or one this replica does not serve, is refused whole. Deletes itself
// when gRPC is done with it.
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
    absl::StatusOr<std::vector<ServedPool*>> serving =
        service_->ServingPools(context_);
    if (!serving.ok()) {
      Done(ToGrpcStatus(serving.status()));  // Refused by the gates.
      return;
    }
    serving_ = *std::move(serving);
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

  // Each serving pool's part of the Sync (empty for a pool no jam names),
  // or the error that refuses the whole Sync.
  absl::Status SplitParts() {
    std::vector<std::pair<std::string, SyncCommand>> named =
        SplitByPool(*command_);
    for (auto& [name, part] : named) {
      absl::StatusOr<ServedPool*> pool =
          service_->pools_->Find("jams[].pool", name);
      if (!pool.ok()) return pool.status();
      if (std::find(serving_.begin(), serving_.end(), *pool) ==
          serving_.end()) {
        const grpc::Status refused =
            Gate(context_, **pool, grpc::Status::OK, std::nullopt);
        return absl::UnavailableError(refused.error_message());
      }
    }
    parts_.reserve(serving_.size());
    for (ServedPool* pool : serving_) {
      auto it = std::find_if(named.begin(), named.end(), [pool](auto& entry) {
        return entry.first == pool->config.name;
      });
      if (it != named.end()) {
        parts_.push_back(std::move(it->second));
      } else {
        SyncCommand& empty = parts_.emplace_back();
        empty.frontend_id = command_->frontend_id;
        empty.lease_ttl = command_->lease_ttl;
      }
    }
    return absl::OkStatus();
  }

  void Apply() {
    absl::StatusOr<SyncCommand> command =
        service_->pools_->default_pool().parser.Parse(messages_);
    if (!command.ok()) {
      Done(ToGrpcStatus(command.status()));
      return;
    }
    command_.emplace(*std::move(command));
    if (absl::Status split = SplitParts(); !split.ok()) {
      Done(ToGrpcStatus(split));
      return;
    }
    auto* gather = new PoolsCall<SyncOutcome>(
        context_, serving_,
        [this](std::vector<SyncOutcome>& outcomes) {
          v1::SyncResponse response;
          absl::Time expires = absl::InfiniteFuture();
          for (const SyncOutcome& outcome : outcomes) {
            expires = std::min(expires, outcome.lease_expires);
            response.set_jam_count(response.jam_count() +
                                   outcome.counts.jam_count);
            response.set_user_count(response.user_count() +
                                    outcome.counts.member_count);
          }
          response.set_lease_expires_unix_ms(absl::ToUnixMillis(expires));
          return Serialize(response, response_);
        },
        [this](const grpc::Status& status) { Done(status); });
    // Grouping the lists takes a while for a large Sync: done here, off the
    // strands, which then apply the plans in steps.
    plans_.reserve(parts_.size());
    for (const SyncCommand& part : parts_) {
      plans_.push_back(JamCollection::PlanReplace(part.frontend_id, part.jams));
    }
    // Each pool's operation runs before the pool answers, so before the
    // call can finish: `this` is alive in it.
    gather->PostToEach([this](PoolsCall<SyncOutcome>& gather, size_t i,
                              PoolState& state, absl::Time now) {
      if (std::optional<grpc::Status> gone = Abandoned(context_)) {
        gather.Answer(i, *gone, {}, std::nullopt);
        return;
      }
      const int64_t epoch = state.epoch;
      SyncTask task(
          std::move(plans_[i]), parts_[i].lease_ttl,
          [gather = &gather, i, epoch](absl::StatusOr<SyncOutcome> outcome) {
            if (!outcome.ok()) {
              gather->Answer(i, ToGrpcStatus(outcome.status()), {}, epoch);
              return;
            }
            gather->Answer(i, grpc::Status::OK, *std::move(outcome), epoch);
          });
      const absl::Status queued =
          jambalancer::Apply(parts_[i], now, state, std::move(task));
      if (!queued.ok()) gather.Answer(i, ToGrpcStatus(queued), {}, epoch);
    });
  }

  // Counts the call and finishes it; `this` lives until OnDone.
  void Done(const grpc::Status& status) {
    service_->metrics_->Handled(
        kMethod, static_cast<absl::StatusCode>(status.error_code()),
        absl::FromChrono(std::chrono::steady_clock::now() - started_));
    Finish(status);
  }

  JamBalancerServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  grpc::ByteBuffer* const response_;
  const std::chrono::steady_clock::time_point started_;
  std::vector<ServedPool*> serving_;  // Pools served when the stream began.
  grpc::ByteBuffer incoming_;
  google::protobuf::Arena arena_;
  std::vector<const v1::SyncRequest*> messages_;  // On arena_.
  std::optional<SyncCommand> command_;            // Borrows messages_.
  // parts_[i]: serving_[i]'s part; they borrow command_.
  std::vector<SyncCommand> parts_;
  // plans_[i]: parts_[i] grouped, moved to its pool's strand.
  std::vector<JamCollection::Replacement> plans_;
};

grpc::ServerReadReactor<grpc::ByteBuffer>* JamBalancerServiceImpl::Sync(
    grpc::CallbackServerContext* context, grpc::ByteBuffer* response) {
  return new SyncReactor(this, context, response);
}

}  // namespace jambalancer
