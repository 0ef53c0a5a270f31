#include "server/balancer_service.h"

#include <grpcpp/support/proto_buffer_writer.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/arena.h"
#include "server/page_token.h"
#include "server/request_parser.h"
#include "server/validation.h"

namespace jambalancer {
namespace {

constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;
constexpr int kMaxBatchOperations = 1000;

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

// Requests without ids have nothing to check beyond parsing.
absl::Status Validate(const v1::GetStatsRequest&) { return absl::OkStatus(); }
absl::Status Validate(const v1::ListJamsRequest& request) {
  return DecodePageToken(request.page_token()).status();
}

// One call's messages, on an arena of its own: parsing a Batch and building
// its results take a few arena blocks instead of a heap block per message and
// string, and the call ends with one free per block. Alive until the strand
// has answered.
template <typename Request, typename Response>
class Call {
 public:
  Call()
      : arena_(Options()),
        request_(google::protobuf::Arena::CreateMessage<Request>(&arena_)),
        response_(google::protobuf::Arena::CreateMessage<Response>(&arena_)) {}

  Request& request() { return *request_; }
  Response& response() { return *response_; }

 private:
  static google::protobuf::ArenaOptions Options() {
    google::protobuf::ArenaOptions options;
    options.start_block_size = 1024;  // A single call fits in one block.
    return options;
  }

  google::protobuf::Arena arena_;
  Request* const request_;    // Owned by arena_.
  Response* const response_;  // Owned by arena_.
};

void ApplyCurrentJam(const v1::CurrentJamRequest& request, absl::Time now,
                     JamCollection& collection,
                     v1::CurrentJamResponse* response) {
  // Prepare has set reservation_ttl_ms when user_id is set.
  CurrentJamResult result =
      request.user_id().empty()
          ? collection.CurrentJam(now)
          : collection.ReserveSeat(
                request.user_id(),
                absl::Milliseconds(request.reservation_ttl_ms()), now);
  response->set_jam_id(std::move(result.jam_id));
  response->set_user_count(result.user_count);
  response->set_new_jam(result.new_jam);
  if (result.reservation_expires != absl::InfinitePast()) {
    response->set_reservation_expires_unix_ms(
        absl::ToUnixMillis(result.reservation_expires));
  }
}

void ApplyRefresh(const v1::RefreshRequest& request, absl::Time now,
                  JamCollection& collection, v1::RefreshResponse* response) {
  std::vector<absl::string_view> user_ids(request.user_ids().begin(),
                                          request.user_ids().end());
  response->set_user_count(collection.Refresh(request.jam_id(), user_ids, now));
}

void ApplyRemoveUser(const v1::RemoveUserRequest& request, absl::Time now,
                     JamCollection& collection,
                     v1::RemoveUserResponse* response) {
  RemoveUserResult result =
      collection.RemoveUser(request.jam_id(), request.user_id(), now);
  response->set_removed(result.removed);
  response->set_user_count(result.user_count);
}

void ApplyHasCapacity(const v1::HasCapacityRequest& request, absl::Time now,
                      JamCollection& collection,
                      v1::HasCapacityResponse* response) {
  HasCapacityResult result =
      collection.HasCapacity(request.jam_id(), request.user_id(), now);
  response->set_has_capacity(result.has_capacity);
  response->set_user_count(result.user_count);
  response->set_max_users(collection.max_users());
}

void ApplyAddUser(const v1::AddUserRequest& request, absl::Time now,
                  JamCollection& collection, v1::AddUserResponse* response) {
  AddUserResult result =
      collection.AddUser(request.jam_id(), request.user_id(), now);
  response->set_added(result.added);
  response->set_user_count(result.user_count);
  response->set_redirect_jam_id(std::move(result.redirect_jam_id));
}

void ApplyGetStats(const v1::GetStatsRequest&, absl::Time now,
                   JamCollection& collection, v1::GetStatsResponse* response) {
  const CollectionStats stats = collection.Stats(now);
  response->set_jam_count(stats.jam_count);
  response->set_user_count(stats.user_count);
  response->set_max_users(collection.max_users());
  response->set_full_jam_count(stats.full_jam_count);
  response->set_reservation_count(stats.reservation_count);
}

void ApplyListJams(const v1::ListJamsRequest& request, absl::Time now,
                   JamCollection& collection, v1::ListJamsResponse* response) {
  // Validated before posting, so the token decodes.
  const std::string after = DecodePageToken(request.page_token()).value();
  const uint32_t page_size = request.page_size() == 0
                                 ? kDefaultPageSize
                                 : std::min(request.page_size(), kMaxPageSize);
  JamPage page = collection.ListJams(after, page_size, now);
  for (JamSnapshot& snapshot : page.jams) {
    v1::Jam* jam = response->add_jams();
    jam->set_jam_id(std::move(snapshot.jam_id));
    for (std::string& user_id : snapshot.user_ids) {
      jam->add_user_ids(std::move(user_id));
    }
    jam->set_reserved_count(snapshot.reserved_count);
  }
  if (page.has_more) {
    response->set_next_page_token(
        EncodePageToken(response->jams(response->jams_size() - 1).jam_id()));
  }
}

void ApplyBatch(const v1::BatchRequest& request, absl::Time now,
                JamCollection& collection, v1::BatchResponse* response) {
  // Prepare has checked every operation: each has its case set.
  response->mutable_results()->Reserve(request.operations_size());
  for (const v1::BatchOperation& operation : request.operations()) {
    v1::BatchResult* result = response->add_results();
    switch (operation.operation_case()) {
      case v1::BatchOperation::kCurrentJam:
        ApplyCurrentJam(operation.current_jam(), now, collection,
                        result->mutable_current_jam());
        break;
      case v1::BatchOperation::kRefresh:
        ApplyRefresh(operation.refresh(), now, collection,
                     result->mutable_refresh());
        break;
      case v1::BatchOperation::kRemoveUser:
        ApplyRemoveUser(operation.remove_user(), now, collection,
                        result->mutable_remove_user());
        break;
      case v1::BatchOperation::kHasCapacity:
        ApplyHasCapacity(operation.has_capacity(), now, collection,
                         result->mutable_has_capacity());
        break;
      case v1::BatchOperation::kAddUser:
        ApplyAddUser(operation.add_user(), now, collection,
                     result->mutable_add_user());
        break;
      case v1::BatchOperation::kGetStats:
        ApplyGetStats(operation.get_stats(), now, collection,
                      result->mutable_get_stats());
        break;
      case v1::BatchOperation::OPERATION_NOT_SET:
        break;
    }
  }
}

}  // namespace

template <typename Request>
absl::Status BalancerService::Prepare(Request* request) const {
  return Validate(*request);
}

absl::Status BalancerService::Prepare(v1::CurrentJamRequest* request) const {
  if (absl::Status status = Validate(*request); !status.ok()) return status;
  if (!request->user_id().empty()) {
    const absl::Duration asked =
        absl::Milliseconds(request->reservation_ttl_ms());
    const absl::Duration ttl =
        asked == absl::ZeroDuration()
            ? options_.reservation_ttl
            : std::min(asked, options_.max_reservation_ttl);
    request->set_reservation_ttl_ms(
        static_cast<uint32_t>(absl::ToInt64Milliseconds(ttl)));
  }
  return absl::OkStatus();
}

absl::Status BalancerService::Prepare(v1::BatchRequest* request) const {
  if (request->operations_size() > kMaxBatchOperations) {
    return absl::InvalidArgumentError(
        absl::StrCat("operations must hold at most ", kMaxBatchOperations,
                     " operations, got ", request->operations_size()));
  }
  for (int i = 0; i < request->operations_size(); ++i) {
    v1::BatchOperation* operation = request->mutable_operations(i);
    absl::Status status;
    switch (operation->operation_case()) {
      case v1::BatchOperation::kCurrentJam:
        status = Prepare(operation->mutable_current_jam());
        break;
      case v1::BatchOperation::kRefresh:
        status = Prepare(operation->mutable_refresh());
        break;
      case v1::BatchOperation::kRemoveUser:
        status = Prepare(operation->mutable_remove_user());
        break;
      case v1::BatchOperation::kHasCapacity:
        status = Prepare(operation->mutable_has_capacity());
        break;
      case v1::BatchOperation::kAddUser:
        status = Prepare(operation->mutable_add_user());
        break;
      case v1::BatchOperation::kGetStats:
        status = Prepare(operation->mutable_get_stats());
        break;
      case v1::BatchOperation::OPERATION_NOT_SET:
        return absl::InvalidArgumentError(
            absl::StrCat("operations[", i, "] must set one operation"));
    }
    if (!status.ok()) {
      // Where the operation sits, e.g. "operations[3].add_user.".
      const absl::string_view field =
          operation->GetDescriptor()
              ->FindFieldByNumber(operation->operation_case())
              ->name();
      return absl::Status(
          status.code(),
          absl::StrCat("operations[", i, "].", field, ".", status.message()));
    }
  }
  return absl::OkStatus();
}

template <typename Request, typename Response>
grpc::ServerUnaryReactor* BalancerService::Serve(
    RpcMethod method, grpc::CallbackServerContext* context,
    const grpc::ByteBuffer* request, grpc::ByteBuffer* response,
    void (*apply)(const Request&, absl::Time now, JamCollection&, Response*)) {
  const auto started = std::chrono::steady_clock::now();
  metrics_->Started(method);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Finishes the call; any thread. Counts it as handled.
  auto finish = [this, method, reactor, started](const grpc::Status& status) {
    metrics_->Handled(
        method, status.error_code(),
        absl::FromChrono(std::chrono::steady_clock::now() - started));
    reactor->Finish(status);
  };

  auto call = std::make_unique<Call<Request, Response>>();
  absl::Status status = ParseRequest(*request, &call->request());
  if (status.ok()) status = Prepare(&call->request());
  if (!status.ok()) {
    finish(ToGrpcStatus(status));
    return reactor;
  }
  const bool posted =
      balancer_->Post([response, apply, finish, call = std::move(call)](
                          JamCollection& collection, absl::Time now) {
        apply(call->request(), now, collection, &call->response());
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

grpc::ServerUnaryReactor* BalancerService::CurrentJam(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve(RpcMethod::kCurrentJam, context, request, response,
               &ApplyCurrentJam);
}

grpc::ServerUnaryReactor* BalancerService::Refresh(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve(RpcMethod::kRefresh, context, request, response, &ApplyRefresh);
}

grpc::ServerUnaryReactor* BalancerService::RemoveUser(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve(RpcMethod::kRemoveUser, context, request, response,
               &ApplyRemoveUser);
}

grpc::ServerUnaryReactor* BalancerService::HasCapacity(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve(RpcMethod::kHasCapacity, context, request, response,
               &ApplyHasCapacity);
}

grpc::ServerUnaryReactor* BalancerService::AddUser(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve(RpcMethod::kAddUser, context, request, response, &ApplyAddUser);
}

grpc::ServerUnaryReactor* BalancerService::GetStats(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve(RpcMethod::kGetStats, context, request, response,
               &ApplyGetStats);
}

grpc::ServerUnaryReactor* BalancerService::ListJams(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve(RpcMethod::kListJams, context, request, response,
               &ApplyListJams);
}

grpc::ServerUnaryReactor* BalancerService::Batch(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Serve(RpcMethod::kBatch, context, request, response, &ApplyBatch);
}

}  // namespace jambalancer
