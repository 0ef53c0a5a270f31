#ifndef JAM_BALANCER_CLIENT_BALANCER_CLIENT_H_
#define JAM_BALANCER_CLIENT_BALANCER_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"

namespace jambalancer {

// Client of the jam balancer for front-end servers. Each method is one
// blocking RPC with its own deadline; a failed call returns the gRPC status
// as an absl::Status with the same code and message.
//
// Thread-safe: one client (and its channel) may serve many threads.
class BalancerClient {
 public:
  struct Options {
    // Deadline of every call, counted from its start.
    absl::Duration deadline = absl::Seconds(5);
  };

  // Plaintext channel to `target` (host:port, or any gRPC target URI).
  static std::unique_ptr<BalancerClient> Connect(absl::string_view target,
                                                 Options options);
  static std::unique_ptr<BalancerClient> Connect(absl::string_view target) {
    return Connect(target, Options());
  }

  BalancerClient(std::shared_ptr<grpc::ChannelInterface> channel,
                 Options options);

  // The jam a new user should join; reserves nothing.
  absl::StatusOr<v1::CurrentJamResponse> CurrentJam();
  // The jam `user_id` should join, with a seat reserved there for `ttl`
  // (zero: the server's default; the server caps long ones). Join it with
  // AddUser before the reservation expires.
  absl::StatusOr<v1::CurrentJamResponse> CurrentJam(
      absl::string_view user_id, absl::Duration ttl = absl::ZeroDuration());
  absl::StatusOr<v1::RefreshResponse> Refresh(
      absl::string_view jam_id, absl::Span<const std::string> user_ids);
  absl::StatusOr<v1::RemoveUserResponse> RemoveUser(absl::string_view jam_id,
                                                    absl::string_view user_id);
  // With a user id, a member of the jam or holder of a reservation there
  // always has capacity.
  absl::StatusOr<v1::HasCapacityResponse> HasCapacity(
      absl::string_view jam_id, absl::string_view user_id = "");
  absl::StatusOr<v1::AddUserResponse> AddUser(absl::string_view jam_id,
                                              absl::string_view user_id);
  absl::StatusOr<v1::GetStatsResponse> GetStats();
  // page_size 0 means the server's default; page_token "" the first page.
  absl::StatusOr<v1::ListJamsResponse> ListJams(uint32_t page_size,
                                                absl::string_view page_token);

  // Runs the operations in order in one atomic step on the server.
  absl::StatusOr<v1::BatchResponse> Batch(const v1::BatchRequest& request);

  // Whether the server's health service reports `service` ("" = the server
  // as a whole) SERVING. An error if the health check itself fails.
  absl::StatusOr<bool> IsServing(absl::string_view service = "");

 private:
  using Stub = v1::JamBalancerService::Stub;
  // One unary call with this client's deadline.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(
      grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                   Response*),
      const Request& request);

  std::unique_ptr<Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;
  Options options_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_CLIENT_BALANCER_CLIENT_H_
