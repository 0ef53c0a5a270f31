#ifndef JAM_BALANCER_SERVER_ETCD_ETCD_CLIENT_H_
#define JAM_BALANCER_SERVER_ETCD_ETCD_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "etcd/v3electionpb/v3election.grpc.pb.h"
#include "server/etcd/call_canceller.h"
#include "server/etcd/lease_keepalive.h"

namespace jambalancer {

// A key as etcd holds it.
struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  // The lease the key is attached to (0: none).
  int64_t lease = 0;
};

struct EtcdLease {
  int64_t id = 0;
  // As granted: etcd raises a TTL below its minimum.
  absl::Duration ttl;
};

// What a won campaign holds: proof of leadership (the key still has create
// revision `rev`) and what Resign and Proclaim take.
struct EtcdLeaderKey {
  std::string name;  // the election
  std::string key;   // the leader's key under it
  int64_t rev = 0;   // the key's create revision
  int64_t lease = 0;
};

struct EtcdCampaignResult {
  EtcdLeaderKey leader;
  // The store's revision in the answer's header.
  int64_t revision = 0;
};

// The project's client of etcd v3: leases, the election API and the few
// key-value calls a leader needs, over the wire-compatible subset of etcd's
// API in proto/etcd/.
//
// One channel to all endpoints, with round-robin load balancing: a call goes
// to a member whose connection is up, so a dead member (connection refused)
// is skipped at once, and a new call or stream after a failure tends to land
// on another member. Calls failing UNAVAILABLE are retried by gRPC (3
// attempts; etcd answers "leader changed" and "no leader" that way during
// its own elections), so a Put may apply twice: fine for this client's
// users, who write the same value again. Connections send HTTP/2 keepalive
// pings every 10 s while calls are open (etcd's default enforcement allows
// one per 5 s), so a stream to a member that stopped answering fails within
// about 15 s instead of hanging.
//
// Every unary call has the client's per-call timeout; Campaign and Observe
// wait as long as it takes, until cancelled. Errors keep gRPC's code, with
// the call named in the message ("etcd LeaseGrant: ...").
//
// Thread-safe: any thread may make calls, concurrently.
class EtcdClient {
 public:
  // TLS to etcd, as etcdctl's --cacert, --cert and --key (PEM contents).
  struct Tls {
    // CAs that sign the members' certificates; empty: the system's roots.
    std::string ca_pem;
    // The client's certificate chain and key, for members that run with
    // --client-cert-auth; both or neither.
    std::string cert_pem;
    std::string key_pem;
  };

  struct Options {
    // Deadline of each unary call, from its start.
    absl::Duration call_timeout = absl::Seconds(5);
    // None: plaintext. With TLS, a member's certificate must be valid for
    // the host the client dialed: the one name of a dns:/// target, else
    // the FIRST endpoint's host (gRPC checks one name per channel), so
    // several members given by address need certificates that all carry the
    // first one's; one DNS name for all members avoids that.
    std::optional<Tls> tls;
  };

  // Splits "host:port,host:port" (an optional http:// or https:// on each
  // is dropped; Connect checks it against Options::tls). INVALID_ARGUMENT
  // naming the bad entry: no port, a port out of range, or an empty list.
  static absl::StatusOr<std::vector<std::string>> ParseEndpoints(
      absl::string_view list);

  // The gRPC target for `endpoints` (host:port each, in any form
  // ParseEndpoints accepts, and checked like it): "ipv4:a:p,b:p" for IPv4
  // addresses, "ipv6:[a]:p,..." for IPv6 ones, "dns:///name:p" for one host
  // name (gRPC re-resolves it; a name that resolves to every member works).
  // Several host names, or a mix of address families, is INVALID_ARGUMENT:
  // give addresses, or one name.
  static absl::StatusOr<std::string> ChannelTarget(
      absl::Span<const std::string> endpoints);

  // A client on a new channel to `endpoints` (see ChannelTarget). Does not
  // wait for etcd: calls fail UNAVAILABLE while no member answers (also
  // when the TLS handshake fails: a certificate the member refuses, or one
  // of the member's that the client does not trust). INVALID_ARGUMENT for an
  // https:// endpoint without options.tls, an http:// one with it, or a
  // client certificate without its key (or the reverse).
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Connect(
      absl::Span<const std::string> endpoints, Options options);
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Connect(
      absl::Span<const std::string> endpoints) {
    return Connect(endpoints, Options());
  }

  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  const Options& options() const { return options_; }

  // --- Leases ---

  // A new lease of `ttl`, rounded up to whole seconds (etcd's unit; at least
  // 1 s).
  absl::StatusOr<EtcdLease> GrantLease(absl::Duration ttl);
  // Ends the lease and deletes its keys. NOT_FOUND if it no longer exists.
  absl::Status RevokeLease(int64_t lease_id);
  // What is left of the lease; NOT_FOUND if it no longer exists.
  absl::StatusOr<absl::Duration> LeaseTimeToLive(int64_t lease_id);
  // Starts keeping the lease alive on a thread of its own, a keepalive every
  // `interval` (a third of the TTL is usual); see LeaseKeepAlive.
  // REQUIRES: this client outlives the result; interval > 0.
  std::unique_ptr<LeaseKeepAlive> StartKeepAlive(
      int64_t lease_id, absl::Duration interval, LeaseKeepAlive::OnAck on_ack,
      LeaseKeepAlive::OnError on_error);

  // --- Election ---

  // Campaigns in election `name` with a key attached to `lease` whose value
  // is `value`, and waits until it leads. No deadline: it ends when this
  // campaigner leads, on an error, or when `cancel` (if given) is cancelled
  // (CANCELLED). etcd deletes the key of a campaign cancelled while it
  // waits, but not of one cancelled while etcd is still writing the key: that
  // key stays, and may even come to lead, until its lease ends: revoke the
  // lease of a cancelled campaign. etcd does not end a campaign when `lease`
  // ends: cancel it then. It may even answer after the lease ended (its key
  // gone): Leader() tells. Campaigning again with the same lease is
  // idempotent (same key).
  absl::StatusOr<EtcdCampaignResult> Campaign(absl::string_view name,
                                              int64_t lease,
                                              absl::string_view value,
                                              CallCanceller* cancel = nullptr);
  // Replaces the value the leader proclaims. FAILED_PRECONDITION if `leader`
  // no longer leads.
  absl::Status Proclaim(const EtcdLeaderKey& leader, absl::string_view value);
  // Deletes `leader`'s key if it still is that key (create revision), so the
  // next campaigner leads at once.
  absl::Status Resign(const EtcdLeaderKey& leader);
  // The current leader's key (its value: what it proclaims; its
  // create_revision: the leadership's epoch). NOT_FOUND when none.
  absl::StatusOr<EtcdKeyValue> Leader(absl::string_view name);
  // Calls `on_leader` (on this thread) with the current leader, if any, then
  // with every new leader or new value, in order; nothing when a leader goes
  // until the next one comes. Returns when the stream fails, or CANCELLED
  // once `cancel` is cancelled. REQUIRES: cancel != nullptr (nothing else
  // ends a healthy stream).
  absl::Status Observe(
      absl::string_view name,
      const std::function<void(const EtcdKeyValue&)>& on_leader,
      CallCanceller* cancel);

  // --- Keys ---

  // Writes `key` (attached to `lease` unless 0). Returns the store's
  // revision after the write.
  absl::StatusOr<int64_t> Put(absl::string_view key, absl::string_view value,
                              int64_t lease = 0);
  // The key `key`, or with `range_end` the keys in [key, range_end), in key
  // order. Linearizable (a quorum round trip).
  absl::StatusOr<std::vector<EtcdKeyValue>> Range(
      absl::string_view key, absl::string_view range_end = "");
  // The range_end that makes Range read every key starting with `prefix`.
  static std::string PrefixEnd(absl::string_view prefix);
  // Writes `key` only if `leader` still leads (its key's create revision is
  // still `leader.rev`), atomically: the leader-only write. Returns the
  // store's revision after the write; FAILED_PRECONDITION, writing nothing,
  // if `leader` no longer leads.
  absl::StatusOr<int64_t> PutIfLeader(const EtcdLeaderKey& leader,
                                      absl::string_view key,
                                      absl::string_view value);

 private:
  EtcdClient(std::shared_ptr<grpc::Channel> channel, Options options);

  // A context whose deadline is the per-call timeout.
  std::unique_ptr<grpc::ClientContext> NewUnaryContext() const;

  const Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::unique_ptr<v3electionpb::Election::Stub> election_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_ETCD_ETCD_CLIENT_H_
