#include "server/balancer_service.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/page_token.h"
#include "server/validation.h"

namespace jambalancer {
namespace {

constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

// Finishes the call with the validation error; the request changes nothing.
grpc::ServerUnaryReactor* Reject(grpc::ServerUnaryReactor* reactor,
                                 const absl::Status& status) {
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* BalancerService::Dispatch(
    grpc::ServerUnaryReactor* reactor, JamBalancer::Operation operation) {
  const bool posted =
      balancer_->Post([reactor, operation = std::move(operation)](
                          JamCollection& collection) mutable {
        std::move(operation)(collection);
        reactor->Finish(grpc::Status::OK);
      });
  if (!posted) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
  }
  return reactor;
}

grpc::ServerUnaryReactor* BalancerService::CurrentJam(
    grpc::CallbackServerContext* context, const v1::CurrentJamRequest*,
    v1::CurrentJamResponse* response) {
  return Dispatch(context->DefaultReactor(),
                  [response](JamCollection& collection) {
                    CurrentJamResult result = collection.CurrentJam();
                    response->set_jam_id(std::move(result.jam_id));
                    response->set_user_count(result.user_count);
                    response->set_new_jam(result.new_jam);
                  });
}

grpc::ServerUnaryReactor* BalancerService::Refresh(
    grpc::CallbackServerContext* context, const v1::RefreshRequest* request,
    v1::RefreshResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status status = Validate(*request); !status.ok()) {
    return Reject(reactor, status);
  }
  return Dispatch(reactor, [request, response](JamCollection& collection) {
    // Views into the request, which gRPC keeps alive until Finish.
    std::vector<absl::string_view> user_ids(request->user_ids().begin(),
                                            request->user_ids().end());
    response->set_user_count(collection.Refresh(request->jam_id(), user_ids));
  });
}

grpc::ServerUnaryReactor* BalancerService::RemoveUser(
    grpc::CallbackServerContext* context, const v1::RemoveUserRequest* request,
    v1::RemoveUserResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status status = Validate(*request); !status.ok()) {
    return Reject(reactor, status);
  }
  return Dispatch(reactor, [request, response](JamCollection& collection) {
    RemoveUserResult result =
        collection.RemoveUser(request->jam_id(), request->user_id());
    response->set_removed(result.removed);
    response->set_user_count(result.user_count);
  });
}

grpc::ServerUnaryReactor* BalancerService::HasCapacity(
    grpc::CallbackServerContext* context, const v1::HasCapacityRequest* request,
    v1::HasCapacityResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status status = Validate(*request); !status.ok()) {
    return Reject(reactor, status);
  }
  return Dispatch(reactor, [request, response](JamCollection& collection) {
    HasCapacityResult result = collection.HasCapacity(request->jam_id());
    response->set_has_capacity(result.has_capacity);
    response->set_user_count(result.user_count);
    response->set_max_users(collection.max_users());
  });
}

grpc::ServerUnaryReactor* BalancerService::AddUser(
    grpc::CallbackServerContext* context, const v1::AddUserRequest* request,
    v1::AddUserResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status status = Validate(*request); !status.ok()) {
    return Reject(reactor, status);
  }
  return Dispatch(reactor, [request, response](JamCollection& collection) {
    AddUserResult result =
        collection.AddUser(request->jam_id(), request->user_id());
    response->set_added(result.added);
    response->set_user_count(result.user_count);
    response->set_redirect_jam_id(std::move(result.redirect_jam_id));
  });
}

grpc::ServerUnaryReactor* BalancerService::GetStats(
    grpc::CallbackServerContext* context, const v1::GetStatsRequest*,
    v1::GetStatsResponse* response) {
  return Dispatch(context->DefaultReactor(),
                  [response](JamCollection& collection) {
                    const CollectionStats stats = collection.Stats();
                    response->set_jam_count(stats.jam_count);
                    response->set_user_count(stats.user_count);
                    response->set_max_users(collection.max_users());
                    response->set_full_jam_count(stats.full_jam_count);
                  });
}

grpc::ServerUnaryReactor* BalancerService::ListJams(
    grpc::CallbackServerContext* context, const v1::ListJamsRequest* request,
    v1::ListJamsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> after = DecodePageToken(request->page_token());
  if (!after.ok()) return Reject(reactor, after.status());
  const uint32_t page_size = request->page_size() == 0
                                 ? kDefaultPageSize
                                 : std::min(request->page_size(), kMaxPageSize);
  return Dispatch(reactor, [after = *std::move(after), page_size,
                            response](JamCollection& collection) {
    JamPage page = collection.ListJams(after, page_size);
    for (JamSnapshot& snapshot : page.jams) {
      v1::Jam* jam = response->add_jams();
      jam->set_jam_id(std::move(snapshot.jam_id));
      for (std::string& user_id : snapshot.user_ids) {
        jam->add_user_ids(std::move(user_id));
      }
    }
    if (page.has_more) {
      response->set_next_page_token(
          EncodePageToken(response->jams(response->jams_size() - 1).jam_id()));
    }
  });
}

}  // namespace jambalancer
