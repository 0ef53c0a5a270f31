#ifndef JAM_BALANCER_SERVER_HA_LEADERSHIP_H_
#define JAM_BALANCER_SERVER_HA_LEADERSHIP_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/etcd/etcd_client.h"
#include "server/util/latency_histogram.h"

namespace jambalancer {

struct LeadershipOptions {
  // host:port of each etcd member, at least one (see EtcdClient::Connect).
  std::vector<std::string> etcd_endpoints;
  // TLS to etcd (PEM files, read once at Start), named as etcdctl's flags:
  // the CA of the members' certificates (empty: the system's roots), and
  // this client's certificate and key for members that require one (both
  // or neither). All empty: plaintext, unless the endpoints say https://.
  std::string etcd_cacert;
  std::string etcd_cert;
  std::string etcd_key;
  // The election's key prefix in etcd.
  std::string election_name = "jam-balancer";
  // The process's etcd lease; whole seconds on the wire (rounded up), at
  // least 1 s. Also the deadline of each etcd call the loop makes.
  absl::Duration ttl = absl::Seconds(2);
  // The value a leader proclaims: what front ends dial.
  std::string advertise_address;
  // A leader stops serving this long before its lease could have ended;
  // in [0, ttl).
  absl::Duration fence_margin = absl::Milliseconds(200);
};

// A client of the etcd members `options` names, with its TLS files read
// (the client every Leadership makes for itself). INVALID_ARGUMENT for bad
// endpoints or files.
absl::StatusOr<std::unique_ptr<EtcdClient>> ConnectEtcd(
    const LeadershipOptions& options);

// What a process knows of the election at one moment.
struct LeaderView {
  // This process leads (and is not fenced).
  bool leading = false;
  // The leader key's create revision (0: no leader known). It grows with
  // every new leadership, so a larger epoch is a later leader.
  int64_t epoch = 0;
  // The leader's advertise_address ("" unknown).
  std::string leader_address;

  friend bool operator==(const LeaderView& a, const LeaderView& b) {
    return a.leading == b.leading && a.epoch == b.epoch &&
           a.leader_address == b.leader_address;
  }
  friend bool operator!=(const LeaderView& a, const LeaderView& b) {
    return !(a == b);
  }
};

// Running totals of one process's part in the election, for /metrics.
struct LeadershipStats {
  uint64_t elections_won = 0;
  // Time led in all, the leadership going on included.
  absl::Duration time_leading;
  // Keepalives etcd answered, by round trip (send to answer).
  LatencyHistogram::Snapshot keepalive_round_trip;
  // Keepalives that failed (each error the keepalive stream reported).
  uint64_t keepalive_failures = 0;
};

// One process's part in electing the single serving balancer through etcd's
// election API. Only the leader serves; the others stand by, watching who
// leads, and one of them takes over when the leader's lease ends or it
// resigns.
//
// A loop on a thread of its own grants a lease of `ttl`, keeps it alive (a
// keepalive every ttl/3) and campaigns with it. A leader whose keepalives go
// unanswered (etcd down or unreachable, or this process paused) stops
// serving at its fence, steps down, and starts over with a new lease once it
// reaches etcd. A lease that ends (keepalive answered TTL 0, or no answer for
// a whole ttl) ends the campaign on it too (etcd would not), and the loop
// starts over. etcd errors are retried with backoff (100 ms doubling to
// 2 s). etcd is never on the serving path: MayServe reads one atomic.
//
// The fence: a leader may serve until the last acknowledged keepalive's SEND
// time + ttl - fence_margin. etcd renewed the lease when that keepalive
// arrived (later), so the fence falls before the lease can end, before any
// standby can win: two processes never both serve, as long as the clocks of
// this host and etcd's run at the same rate (times are absl::Now(): a wall
// clock stepped back would stretch the fence), and nobody else revokes this
// process's lease or deletes its key. If someone does, the leader serves on
// until its next keepalive is answered TTL 0 or it sees the new leader
// (milliseconds in the tests, at most ttl/3 plus a round trip). etcd itself
// may: a raft leader that was stalled (paused, slow disk) revokes, once it
// resumes, the leases its successor renewed meanwhile (etcd issue 15247;
// etcd 3.4.23 has no guard against it).
//
// Thread-safe: MayServe and View from any thread; Resign and the destructor
// from any thread but on_change's.
class Leadership {
 public:
  using OnChange = std::function<void(const LeaderView&)>;

  // Starts granting/keeping alive a lease and campaigning on a thread of its
  // own. on_change is called (from Leadership's own thread, never
  // concurrently with itself) on every transition: became leader (with the
  // new epoch), stepped down (fenced, lost the lease, resigned; the view then
  // knows no leader), or a new leader (or a new address) seen while standing
  // by. It must not call Resign or destroy this object; it may call
  // MayServe and View. INVALID_ARGUMENT for bad options; does not wait for
  // etcd.
  static absl::StatusOr<std::unique_ptr<Leadership>> Start(
      LeadershipOptions options, OnChange on_change);

  Leadership(const Leadership&) = delete;
  Leadership& operator=(const Leadership&) = delete;

  // Cheap and thread-safe (atomics, no lock): true iff this process leads
  // and `now` is before its fence deadline. A leader paused past that
  // deadline answers false the moment it resumes, before any etcd round
  // trip.
  bool MayServe(absl::Time now) const;

  // A snapshot; `leading` is false once the fence has passed even if the
  // loop has not stepped down yet.
  LeaderView View() const;

  // The totals so far. Thread-safe.
  LeadershipStats Stats() const;

  // Stops serving at once, resigns if leading (so a standby takes over at
  // once), revokes the lease and stops campaigning and watching for good.
  // Waits at most `timeout` for that; the loop finishes it in the
  // background otherwise. Idempotent.
  void Resign(absl::Duration timeout);

  // Hands the leadership to the next candidate in etcd's queue and goes to
  // the back of it: stops serving at once (if leading), ends the term
  // (resigning the leader key, revoking the lease) and starts a new one
  // that campaigns again. A standby that yields likewise moves to the back.
  // Returns at once; the loop does the rest. For rebalancing.
  void Yield();

  // Stops serving at once, stops the loop and revokes the lease (best
  // effort), which hands a leadership over at once. Waits for at most two
  // etcd calls of at most ttl each (one in flight, the revoke); a few
  // milliseconds when etcd answers. No on_change call starts once
  // destruction has begun (one running finishes first).
  ~Leadership();

 private:
  struct Term;

  Leadership(LeadershipOptions options, OnChange on_change,
             std::unique_ptr<EtcdClient> client);

  // The loop's thread: terms, one lease each, until stopped or resigned.
  void Run();
  // One term on `lease`, granted at `granted_at`, until its lease is lost,
  // the leader is fenced, or a stop, resign or yield request. True if it
  // ended because of a yield.
  bool RunTerm(const EtcdLease& lease, absl::Time granted_at);
  // Workers of a term, each on a thread of its own.
  void Campaign(Term* term);
  void Observe(Term* term);
  void OnAck(Term* term, const LeaseKeepAlive::Ack& ack);

  // Whether the loop has something to handle (its wait condition).
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits `timeout` unless a stop or resign comes first; true if one did.
  bool WaitInterrupted(absl::Duration timeout);
  // The fence deadline of a lease known to last until `lease_end`.
  absl::Time Fence(absl::Time lease_end) const;
  // Tells on_change, unless stopping. Loop thread only.
  void Notify(const LeaderView& view) ABSL_LOCKS_EXCLUDED(mu_);
  // MayServe false from now on, until the loop leads again.
  void StopServing() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const LeadershipOptions options_;
  const OnChange on_change_;
  const std::unique_ptr<EtcdClient> client_;

  // The fence deadline in Unix nanoseconds while leading, else the minimum.
  // Written under mu_; read without it.
  std::atomic<int64_t> serve_until_ns_;

  // Statistics (see Stats).
  LatencyHistogram keepalive_round_trip_{LatencyHistogram::DefaultBounds()};
  std::atomic<uint64_t> keepalive_failures_{0};
  uint64_t elections_won_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration time_led_ ABSL_GUARDED_BY(mu_);  // Ended leaderships.
  // When the current leadership began; InfiniteFuture when not leading.
  absl::Time leading_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();

  mutable absl::Mutex mu_;
  LeaderView view_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool resign_ ABSL_GUARDED_BY(mu_) = false;
  bool yield_ ABSL_GUARDED_BY(mu_) = false;
  // The loop has ended (after a resign, or when stopped).
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  // The term running now, if any.
  Term* term_ ABSL_GUARDED_BY(mu_) = nullptr;

  std::thread thread_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_HA_LEADERSHIP_H_
