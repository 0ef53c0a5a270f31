#ifndef JAM_BALANCER_CLIENT_BALANCER_CLIENT_H_
#define JAM_BALANCER_CLIENT_BALANCER_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
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
// A client speaks for one front end (Options::frontend_id) or for none.
// The calls of a front end need its live session: the server answers them
// FAILED_PRECONDITION until Sync starts one, and after its lease ran out
// (or the balancer restarted). FrontEndSession (client/frontend_session.h)
// keeps a session alive and resyncs it.
//
// Thread-safe: one client (and its channel) may serve many threads.
class BalancerClient {
 public:
  struct Options {
    // Deadline of every call, counted from its start (for Sync, the whole
    // stream's).
    absl::Duration deadline = absl::Seconds(5);
    // The front end this client speaks for, sent by CurrentJam, Refresh,
    // RemoveUser and AddUser (which then need its live session), and the
    // session that KeepAlive, EndSession and Sync act on. Empty: anonymous
    // calls (the server answers KeepAlive, EndSession and Sync
    // INVALID_ARGUMENT).
    std::string frontend_id = "";
  };

  // One jam a front end hosts and its users there, as Sync sends it.
  struct JamUsers {
    std::string jam_id;
    std::vector<std::string> user_ids;
  };

  // A Sync stream's messages hold at most this many bytes (encoded) or this
  // many jams, whichever comes first, so that a front end of any size stays
  // below gRPC's message limit (4 MB by default). A single jam larger than
  // that (beyond the server's limit of users per jam) goes alone.
  static constexpr size_t kMaxSyncMessageBytes = 1 << 20;
  static constexpr int kMaxSyncMessageJams = 1000;

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
  // With `hold_seat` above zero, the leaving member's seat stays reserved
  // for the user that long (whole milliseconds; the server caps it like a
  // reservation), so that a page reload lands in the same jam.
  absl::StatusOr<v1::RemoveUserResponse> RemoveUser(
      absl::string_view jam_id, absl::string_view user_id,
      absl::Duration hold_seat = absl::ZeroDuration());
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

  // Renews the lease of this client's front end. FAILED_PRECONDITION if it
  // has no live session (Sync starts one).
  absl::StatusOr<v1::KeepAliveResponse> KeepAlive();
  // Ends the session of this client's front end and removes its members and
  // reservations. FAILED_PRECONDITION if it has no live session.
  absl::StatusOr<v1::EndSessionResponse> EndSession();
  // Every front end's session, in front-end id order.
  absl::StatusOr<v1::ListSessionsResponse> ListSessions();
  // One jam's members with the front end of each (none for a jam the
  // balancer does not hold).
  absl::StatusOr<v1::GetJamResponse> GetJam(absl::string_view jam_id);
  // Starts or renews the session of this client's front end with a lease of
  // `lease_ttl` (zero or less: the server's default; whole milliseconds,
  // and the server refuses less than 500 ms and caps long ones), and makes
  // `jams` everything it hosts: its members not listed are removed. The
  // jams go in as many messages as needed (see kMaxSyncMessageBytes) on one
  // stream, applied together when it ends; a stream that fails changes
  // nothing.
  absl::StatusOr<v1::SyncResponse> Sync(absl::Duration lease_ttl,
                                        absl::Span<const JamUsers> jams);

  const Options& options() const { return options_; }

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
