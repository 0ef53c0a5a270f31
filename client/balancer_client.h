#ifndef JAM_BALANCER_CLIENT_BALANCER_CLIENT_H_
#define JAM_BALANCER_CLIENT_BALANCER_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"

namespace jambalancer {

// Client of the jam balancer for front-end servers. Each method is one
// blocking call with its own deadline; a failed call returns the gRPC status
// as an absl::Status with the same code and message.
//
// A client speaks for one front end (Options::frontend_id) or for none.
// The calls of a front end need its live session: the server answers them
// FAILED_PRECONDITION until Sync starts one, and after its lease ran out
// (or the balancer restarted, or a new leader took over). FrontEndSession
// (client/frontend_session.h) keeps a session alive and resyncs it.
//
// Pools. Every call but KeepAlive, EndSession, Sync, ListPools and
// GetRouting names a pool (its `pool` argument, BatchRequest.pool; empty:
// the default pool, "default"). An unconfigured pool is NOT_FOUND, returned
// at once.
//
// Replicas. Given several targets (one per replica of a balancer that runs
// with --etcd_endpoints, where each pool has an election of its own and
// only its leader answers the pool's calls), the client keeps a route per
// pool: the replica believed to lead it (unknown: the default pool's) and
// the highest epoch seen for it. A pool's call goes to its route. When that
// replica answers UNAVAILABLE and names the pool's leader (trailing
// metadata jam-balancer-leader), the route moves there, the whole table is
// refreshed with GetRouting from the replica that answered (pools move
// together), and the call is sent again; UNAVAILABLE without a name (a
// standby that knows no leader yet, a replica that is down or shutting
// down) moves the route to the next replica in the list. Each goes at once,
// as many times in a row as there are replicas (so one round reaches them
// all); then the call waits a backoff of 50 ms, doubling up to 500 ms,
// before the next round. All of it within the call's own deadline
// (Options::deadline); then the last error is returned. A CANCELLED the
// client did not cause (a call that raced a replica's shutdown) is treated
// like UNAVAILABLE. Other errors, and DEADLINE_EXCEEDED (a replica that
// hangs uses up the deadline), are returned at once.
//
// Session calls span the pools: a replica applies KeepAlive, EndSession and
// Sync to every pool it leads. With several targets the client first
// refreshes the table (GetRouting), then sends the call to every distinct
// leader in it (the default pool's route, and the replicas named leader of
// a pool), side by side: Sync sends each leader the jams of its pools (none:
// an empty Sync, so that its pools hold the session too). Answers merge:
// the earliest lease, summed counts; KeepAlive fails FAILED_PRECONDITION if
// any leader did (resync), EndSession only if every leader did. When a
// leader answers UNAVAILABLE, the table is refreshed (asking that replica
// first: its view made it refuse; the default pool's route moves on as
// above if it named no leader) and the call sent again (Sync and KeepAlive
// to every leader, EndSession to those that have not answered), paced as
// above; any other error is returned at once. Each leader applies
// its part of a Sync or not: a Sync that fails may have been applied by
// some leaders.
//
// Epochs. Every answer of a replicated balancer to a pool's call carries
// the epoch of the pool's leadership (trailing metadata
// jam-balancer-epoch; it grows with each new leadership of the pool). The
// client never returns such an answer of a lower epoch than it has seen for
// the pool (nor, once it has seen one, a successful answer without an
// epoch): it comes from a replica that no longer leads the pool, and counts
// as UNAVAILABLE from it (without following the leader it names). GetRouting
// raises the epochs too. The answers of the session calls, ListPools and
// GetRouting are not checked (the server gates each pool itself, and any
// replica answers the last two).
//
// Which retries are safe. A standby refuses a call before applying it, and
// a leader that lost its lease (fenced) or whose state belongs to an older
// epoch discards its answer after the fact, so a call refused by the gate
// changed nothing that anyone will see. A call that broke mid-flight to a
// live leader (its connection closed: UNAVAILABLE with no metadata, or
// CANCELLED by a server shutting down) may have
// been applied before it is retried elsewhere: AddUser, Refresh, KeepAlive
// and Sync are idempotent; CurrentJam with a user re-answers the user's one
// reservation; RemoveUser may answer removed: false on the retry (the first
// attempt removed the user); EndSession may answer FAILED_PRECONDITION (the
// first attempt ended the session); a Batch is as safe as its operations.
// And a new leader starts empty: calls of a front end are answered
// FAILED_PRECONDITION until it resyncs (FrontEndSession does).
//
// One target behaves exactly as a client of a single balancer: one RPC per
// call (session calls included), its error returned as it is, whatever
// metadata it carries. The epoch check alone still applies (never
// triggering with a balancer that runs alone, which sends no epoch); a
// session call's answer is checked against the default pool's epoch only
// when it carries one.
//
// Thread-safe: one client (and its channels) may serve many threads.
class BalancerClient {
 public:
  // TLS to the balancer (PEM contents; FromFiles reads them from files).
  struct Tls {
    // CAs that sign the server's certificate; empty: the system's roots.
    std::string ca_pem;
    // This client's certificate chain and key, for a server that requires
    // one (--tls_client_ca): both or neither.
    std::string cert_pem;
    std::string key_pem;

    // Reads the PEM files; an empty path leaves its field empty.
    // INVALID_ARGUMENT naming the file: unreadable, not PEM, or a
    // certificate without a key (or the reverse).
    static absl::StatusOr<Tls> FromFiles(const std::string& ca_file,
                                         const std::string& cert_file,
                                         const std::string& key_file);
  };

  struct Options {
    // Deadline of every call, counted from its start (for Sync, the whole
    // stream's). With several replicas it bounds all of a call's attempts
    // together.
    absl::Duration deadline = absl::Seconds(5);
    // The front end this client speaks for, sent by CurrentJam, Refresh,
    // RemoveUser and AddUser (which then need its live session), and the
    // session that KeepAlive, EndSession and Sync act on. Empty: anonymous
    // calls (the server answers KeepAlive, EndSession and Sync
    // INVALID_ARGUMENT).
    std::string frontend_id = "";
    // None: plaintext. With TLS the server's certificate must be valid for
    // the host of each target (its IP address or DNS name).
    std::optional<Tls> tls;
  };

  // One jam a front end hosts and its users there, as Sync sends it.
  struct JamUsers {
    std::string jam_id;
    std::vector<std::string> user_ids;
    // The jam's pool (empty: the default pool).
    std::string pool = "";
  };

  // The name of the pool that calls with an empty pool name go to.
  static constexpr char kDefaultPool[] = "default";

  // A Sync stream's messages hold at most this many bytes (encoded) or this
  // many jams, whichever comes first, so that a front end of any size stays
  // below gRPC's message limit (4 MB by default). A single jam larger than
  // that (beyond the server's limit of users per jam) goes alone.
  static constexpr size_t kMaxSyncMessageBytes = 1 << 20;
  static constexpr int kMaxSyncMessageJams = 1000;

  // The wait between a call's rounds over the replicas: the first, and the
  // longest (it doubles in between).
  static constexpr absl::Duration kInitialBackoff = absl::Milliseconds(50);
  static constexpr absl::Duration kMaxBackoff = absl::Milliseconds(500);
  // Trailing metadata of a replicated balancer's answers (the server's
  // server/rpc/serving_gate.h names the same keys).
  static constexpr char kEpochMetadataKey[] = "jam-balancer-epoch";
  static constexpr char kLeaderMetadataKey[] = "jam-balancer-leader";

  // Channels (plaintext, or TLS per options.tls) to the replicas `targets`
  // (each host:port, or any gRPC target URI; duplicates count once), one
  // channel each, created now. A leader address learned from metadata that is
  // not among them gets a channel of its own when first named (the last few are
  // kept). Several targets: the client follows the leader (see above); their
  // channels retry connecting at least every second, so a replica that comes
  // back is reached soon. One target: exactly Connect(target). REQUIRES:
  // `targets` is not empty (else every call fails UNAVAILABLE).
  static std::unique_ptr<BalancerClient> Connect(
      absl::Span<const std::string> targets, Options options);
  // `target`: one gRPC target, or several replicas' host:port separated by
  // commas ("10.0.0.1:50051,10.0.0.2:50051", see SplitTargets).
  static std::unique_ptr<BalancerClient> Connect(absl::string_view target,
                                                 Options options);
  static std::unique_ptr<BalancerClient> Connect(absl::string_view target) {
    return Connect(target, Options());
  }

  // Plaintext channel credentials, or those of `tls` (for channels made
  // elsewhere that should match a client's, such as a load generator's).
  static std::shared_ptr<grpc::ChannelCredentials> Credentials(
      const std::optional<Tls>& tls);

  // The targets of a --target value: its comma-separated elements
  // (whitespace around them and empty ones dropped), except that a target
  // URI with a scheme ("dns:///h:1", "ipv4:10.0.0.1:1,10.0.0.2:1",
  // "unix:/path") is one target, commas included, as gRPC reads it. Never
  // empty: "" is the one target "".
  static std::vector<std::string> SplitTargets(absl::string_view target);

  // One balancer on `channel` (a single target; current_target() is "").
  BalancerClient(std::shared_ptr<grpc::ChannelInterface> channel,
                 Options options);
  ~BalancerClient();

  BalancerClient(const BalancerClient&) = delete;
  BalancerClient& operator=(const BalancerClient&) = delete;

  // The calls of one pool take its name as their last argument, `pool`
  // (empty: the default pool).

  // The jam a new user should join; reserves nothing.
  absl::StatusOr<v1::CurrentJamResponse> CurrentJam();
  // The jam `user_id` should join, with a seat reserved there for `ttl`
  // (zero: the server's default; the server caps long ones). Join it with
  // AddUser before the reservation expires. An empty `user_id` reserves
  // nothing (as CurrentJam()).
  absl::StatusOr<v1::CurrentJamResponse> CurrentJam(
      absl::string_view user_id, absl::Duration ttl = absl::ZeroDuration(),
      absl::string_view pool = "");
  absl::StatusOr<v1::RefreshResponse> Refresh(
      absl::string_view jam_id, absl::Span<const std::string> user_ids,
      absl::string_view pool = "");
  // With `hold_seat` above zero, the leaving member's seat stays reserved
  // for the user that long (whole milliseconds; the server caps it like a
  // reservation), so that a page reload lands in the same jam.
  absl::StatusOr<v1::RemoveUserResponse> RemoveUser(
      absl::string_view jam_id, absl::string_view user_id,
      absl::Duration hold_seat = absl::ZeroDuration(),
      absl::string_view pool = "");
  // With a user id, a member of the jam or holder of a reservation there
  // always has capacity.
  absl::StatusOr<v1::HasCapacityResponse> HasCapacity(
      absl::string_view jam_id, absl::string_view user_id = "",
      absl::string_view pool = "");
  absl::StatusOr<v1::AddUserResponse> AddUser(absl::string_view jam_id,
                                              absl::string_view user_id,
                                              absl::string_view pool = "");
  absl::StatusOr<v1::GetStatsResponse> GetStats(absl::string_view pool = "");
  // page_size 0 means the server's default; page_token "" the first page.
  absl::StatusOr<v1::ListJamsResponse> ListJams(uint32_t page_size,
                                                absl::string_view page_token,
                                                absl::string_view pool = "");

  // Runs the operations in order in one atomic step on the server, in the
  // pool request.pool() (operations' own pools: empty or the same).
  absl::StatusOr<v1::BatchResponse> Batch(const v1::BatchRequest& request);

  // Renews the lease of this client's front end. FAILED_PRECONDITION if it
  // has no live session (Sync starts one).
  absl::StatusOr<v1::KeepAliveResponse> KeepAlive();
  // Ends the session of this client's front end and removes its members and
  // reservations. FAILED_PRECONDITION if it has no live session.
  absl::StatusOr<v1::EndSessionResponse> EndSession();
  // Every front end's session in the pool, in front-end id order.
  absl::StatusOr<v1::ListSessionsResponse> ListSessions(
      absl::string_view pool = "");
  // One jam's members with the front end of each (none for a jam the
  // balancer does not hold).
  absl::StatusOr<v1::GetJamResponse> GetJam(absl::string_view jam_id,
                                            absl::string_view pool = "");
  // The pools the balancer is configured for, with their settings, counts
  // and leaders.
  absl::StatusOr<v1::ListPoolsResponse> ListPools();
  // Where each pool is served, as the replica that answered knows it (any
  // replica answers); the client's routes learn from it too.
  absl::StatusOr<v1::GetRoutingResponse> GetRouting();
  // Starts or renews the session of this client's front end with a lease of
  // `lease_ttl` (zero or less: the server's default; whole milliseconds,
  // and the server refuses less than 500 ms and caps long ones), and makes
  // `jams` everything it hosts, in every pool: its members not listed are
  // removed. The jams go in as many messages as needed (see
  // kMaxSyncMessageBytes) on one stream per leader, each applied when it
  // ends; a stream that fails changes nothing on its leader.
  absl::StatusOr<v1::SyncResponse> Sync(absl::Duration lease_ttl,
                                        absl::Span<const JamUsers> jams);

  const Options& options() const { return options_; }

  // Whether the server's health service reports `service` ("" = the server
  // as a whole) SERVING. An error if the health check itself fails. Asks
  // the replica believed to lead the default pool, once: a standby of every
  // pool is alive ("" SERVING) but NOT_SERVING for the balancer service.
  absl::StatusOr<bool> IsServing(absl::string_view service = "");

  // The replica that answered a call, and the epoch of its answer.
  struct Leader {
    std::string target;
    // 0: a balancer that runs alone (its answers carry no epoch).
    int64_t epoch = 0;
  };
  // Asks the replicas for the pool's stats (GetStats, following its leader
  // as every call does) and returns the one that answered, with its epoch.
  absl::StatusOr<Leader> FindLeader(absl::string_view pool = "");

  // The highest epoch seen for the pool so far (0: none). Thread-safe.
  int64_t highest_epoch(absl::string_view pool = "") const;
  // The target of the replica believed to lead the pool, where its next
  // call goes ("" for a client made from a channel). Thread-safe.
  std::string current_target(absl::string_view pool = "") const;

 private:
  using Stub = v1::JamBalancerService::Stub;
  // One replica's channel and stubs. Immutable; shared with the calls in
  // flight on it, so that it outlives them when replaced.
  struct Replica;
  // Who gave a call's answer, and its epoch (0: none).
  struct Answered {
    std::string target;
    int64_t epoch = 0;
  };
  // One attempt of a call: the RPC on `replica`'s stub with `context`,
  // filling the call's response (cleared first).
  using Attempt = absl::FunctionRef<grpc::Status(const Replica& replica,
                                                 grpc::ClientContext& context)>;
  // Which epoch an answer must not be below (see the class comment).
  enum class EpochCheck {
    kPool,       // The pool's; required once the pool has one.
    kIfPresent,  // The pool's, if the answer carries one.
    kNone,       // Not checked.
  };
  // A pool's route: the replica believed to lead it (null: unknown, the
  // default pool's is used; never null for the default pool), and the
  // highest epoch seen for it.
  struct Route {
    std::shared_ptr<const Replica> replica;
    int64_t epoch = 0;
    // The replica was named leader (metadata, routing) or answered; else it
    // is only the next one to try, and session calls do not go to it.
    bool named = false;
  };
  // The leaders of the pools as of one moment, for one round of a session
  // call.
  struct Leaders {
    // The replica of the pool: its named leader, else the default pool's.
    const std::shared_ptr<const Replica>& For(absl::string_view pool) const;

    std::shared_ptr<const Replica> fallback;  // The default pool's.
    // The pools' named leaders (Route::named).
    std::map<std::string, std::shared_ptr<const Replica>, std::less<>> known;
    // Each replica once: the default pool's first, then in pool order.
    std::vector<std::shared_ptr<const Replica>> distinct;
  };
  // How a session call treats a leader that answered in an earlier round.
  enum class Redo {
    kAll,         // Asked again (idempotent calls whose parts may move).
    kUnanswered,  // Not asked again (its answer is kept).
  };
  // One leg of a session call: the RPC on `replica` with `context`, which
  // fills `response` (cleared first); `leaders` says which pools it leads.
  template <typename Response>
  using Leg = absl::FunctionRef<grpc::Status(
      const Leaders& leaders, const Replica& replica,
      grpc::ClientContext& context, Response* response)>;

  BalancerClient(std::vector<std::shared_ptr<const Replica>> replicas,
                 Options options);

  // Runs `attempt` on the replica of `pool`'s route, and on others as the
  // answers say (see the class comment), until an answer may be returned or
  // the deadline passes. Returns that answer's status (or the last error)
  // and, on OK, who answered it in `answered` (may be null).
  absl::Status Run(absl::string_view pool, EpochCheck check, Attempt attempt,
                   Answered* answered);
  // One unary call with this client's deadline.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(
      absl::string_view pool, EpochCheck check,
      grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                   Response*),
      const Request& request);
  // A session call with several targets: `leg` on every distinct leader,
  // side by side, round after round as the class comment says. Returns the
  // leaders' answers (OK, or FAILED_PRECONDITION with Redo::kUnanswered),
  // or the error that ended the call.
  template <typename Response>
  absl::StatusOr<std::vector<absl::StatusOr<Response>>> FanOut(
      Redo redo, Leg<Response> leg);

  // The replica of `pool`'s route.
  std::shared_ptr<const Replica> RouteOf(absl::string_view pool) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // A copy of the routes' leaders.
  Leaders CurrentLeaders() const ABSL_LOCKS_EXCLUDED(mu_);
  // `replica` answered a call of `pool`: it leads the pool.
  void Confirm(const std::string& pool,
               const std::shared_ptr<const Replica>& replica)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Believes `leader` leads `pool`. Returns the number of replicas known.
  size_t FollowLeader(const std::string& pool, const std::string& leader)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Moves `pool`'s route on from `failed` to the next replica, unless
  // another call moved it on already. Returns the number of replicas known.
  size_t MoveOnFrom(const std::string& pool, const Replica* failed)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Updates the routes from GetRouting's answer: a pool's leader and epoch
  // unless they are older than the epoch seen for it.
  void LearnRoutes(const v1::GetRoutingResponse& routing)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Asks `first` (null: the default pool's replica), then the others, for
  // the routes until one answers, all by `deadline`. Returns whether one
  // did.
  bool RefreshRoutes(std::shared_ptr<const Replica> first, absl::Time deadline)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The replica of `target`, made (with its channel) if there is none yet.
  std::shared_ptr<const Replica> ReplicaFor(const std::string& target)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether an answer (`ok` or not) of `pool` that carried `epoch` (none:
  // no epoch) may be returned: not below the highest epoch seen for the
  // pool, which it raises, in one atomic step. Sets `highest` to the
  // highest seen before.
  bool Admit(const std::string& pool, EpochCheck check,
             std::optional<int64_t> epoch, bool ok, int64_t* highest)
      ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  // Whether calls follow the leaders (several targets).
  const bool follows_leader_;

  mutable absl::Mutex mu_;
  // The targets given first (listed_ of them, in their order), then the
  // leaders learned from metadata and routing, oldest first.
  std::vector<std::shared_ptr<const Replica>> replicas_ ABSL_GUARDED_BY(mu_);
  size_t listed_ ABSL_GUARDED_BY(mu_) = 0;
  // By pool name ("default" for the default pool, which is always there).
  std::map<std::string, Route, std::less<>> routes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_CLIENT_BALANCER_CLIENT_H_
