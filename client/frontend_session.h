#ifndef JAM_BALANCER_CLIENT_FRONTEND_SESSION_H_
#define JAM_BALANCER_CLIENT_FRONTEND_SESSION_H_

#include <cstdint>
#include <functional>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/balancer_client.h"

namespace jambalancer {

// Keeps a front end's session on the balancer alive, and restores it when
// the balancer lost it (its lease ran out, or the balancer restarted and
// forgot everything).
//
// The front end knows the truth of what it hosts: `truth` returns it, every
// jam (of any pool: JamUsers::pool) with the users connected to it there.
// Start() Syncs that truth and starts a thread that renews the lease
// (KeepAlive) every third of it. When the balancer answers
// FAILED_PRECONDITION (the front end has no live session) to a KeepAlive,
// or to a call made through Call(), the session asks `truth` again and
// Syncs it, so the balancer holds exactly what the front end hosts; Call()
// then retries its call once.
//
// With replicas that split the pools between them, the client's Sync gives
// each pool's leader its part and its KeepAlive renews the session on
// every leader. A pool that moves starts over on its new leader without
// the session: the first KeepAlive or call there answers
// FAILED_PRECONDITION, and the resync restores it.
//
//   BalancerClient::Options options;
//   options.frontend_id = "fe-1";
//   auto client = BalancerClient::Connect("balancer:50051", options);
//   FrontEndSession session(*client, absl::Seconds(10), [&] {
//     return presence.Snapshot();  // Thread-safe, the front end's own.
//   });
//   if (absl::Status s = session.Start(); !s.ok()) ...  // Retry later.
//   auto added = session.Call(
//       [&](BalancerClient& c) { return c.AddUser(jam, user); });
//   ...
//   session.End();  // On shutdown: the balancer removes our users at once.
//
// `truth` runs on the thread that resyncs (the keep-alive thread, or a
// thread inside Call, Resync or Start), one Sync at a time; it must be
// thread-safe and must not call back into the session. A user whose AddUser
// is in flight while `truth` runs may be left out of the Sync and removed
// by it, so a front end should count a joining user as present before it
// calls AddUser.
//
// The keep-alive period is a third of the lease the balancer grants (it
// caps long leases), as its answers tell against this machine's clock. The
// client's deadline bounds each call: keep it below a third of the lease,
// or one slow KeepAlive lets the lease run out. A KeepAlive that fails
// otherwise (the balancer is unreachable) is tried again a period later.
//
// Thread-safe: Call, Resync and the counters may be used from many threads;
// Start, Stop and End from any thread, but not from `truth`.
class FrontEndSession {
 public:
  using Truth = std::function<std::vector<BalancerClient::JamUsers>()>;

  // REQUIRES: `client` outlives this session, and its
  // options().frontend_id is not empty. `lease_ttl` is what each Sync asks
  // for: zero for the server's default; the server refuses less than
  // 500 ms.
  FrontEndSession(BalancerClient& client, absl::Duration lease_ttl,
                  Truth truth);
  // Stops the keep-alive thread; the session on the balancer is left to its
  // lease (End() removes it at once).
  ~FrontEndSession();

  FrontEndSession(const FrontEndSession&) = delete;
  FrontEndSession& operator=(const FrontEndSession&) = delete;

  // Syncs `truth` and, if that succeeded, starts the keep-alive thread.
  // Returns the Sync's status; on error nothing is started and Start may be
  // called again. Calling it while started only resyncs.
  absl::Status Start();

  // Stops the keep-alive thread and waits for it and for a Sync in
  // progress; from then on Call no longer resyncs. Idempotent. Start()
  // starts again.
  void Stop();

  // Stop(), then EndSession: the balancer removes the front end's members
  // and reservations.
  absl::StatusOr<v1::EndSessionResponse> End();

  // Syncs `truth` now, e.g. after the front end lost track of its presence
  // (also while stopped: that starts a session that nothing keeps alive).
  // Concurrent callers share one Sync when it began after they asked.
  absl::Status Resync();

  // Runs `fn(client)`, one call of the client (e.g. AddUser), and returns
  // its result. While started, a FAILED_PRECONDITION answer (no live
  // session) resyncs and then runs `fn` once more, returning the second
  // result (or the first, if the Sync failed). `fn` returns absl::Status or
  // absl::StatusOr<T>, and may run twice.
  template <typename Fn>
  std::invoke_result_t<Fn&, BalancerClient&> Call(Fn&& fn) {
    const int64_t asked = syncs_started();
    auto result = fn(client_);
    if (!NeedsResync(StatusOf(result))) return result;
    if (!ResyncAfter(asked, /*only_if_started=*/true).ok()) return result;
    return fn(client_);
  }

  // Successful Syncs so far (Start's included).
  int64_t sync_count() const;
  // Successful KeepAlives of the keep-alive thread so far.
  int64_t keep_alive_count() const;
  // The lease as the balancer last granted it (Sync or KeepAlive);
  // InfinitePast before the first Sync.
  absl::Time lease_expires() const;

 private:
  static const absl::Status& StatusOf(const absl::Status& status) {
    return status;
  }
  template <typename T>
  static const absl::Status& StatusOf(const absl::StatusOr<T>& result) {
    return result.status();
  }
  // Whether `status` says the front end has no live session.
  static bool NeedsResync(const absl::Status& status);

  // Syncs begun so far; a Sync numbered above it began after this call.
  int64_t syncs_started() const;
  // Syncs the truth, unless a Sync that began after `seen` syncs had begun
  // succeeded meanwhile (the session is back: OK at once). With
  // `only_if_started`, FAILED_PRECONDITION instead while stopped, so that
  // nothing brings back a session that Stop or End left.
  absl::Status ResyncAfter(int64_t seen, bool only_if_started)
      ABSL_LOCKS_EXCLUDED(sync_mu_, mu_);
  // Records a lease granted until `expires` to a call sent at `sent`.
  void Granted(absl::Time sent, uint64_t expires_unix_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The keep-alive thread's body.
  void KeepAliveLoop() ABSL_LOCKS_EXCLUDED(mu_);

  BalancerClient& client_;
  const absl::Duration lease_ttl_;
  const Truth truth_;

  // Held by Start, Stop and End: they never race for the thread.
  absl::Mutex control_mu_ ABSL_ACQUIRED_BEFORE(sync_mu_);
  std::thread keep_alive_thread_ ABSL_GUARDED_BY(control_mu_);

  // Held during each Sync (truth included): one Sync at a time.
  absl::Mutex sync_mu_ ABSL_ACQUIRED_BEFORE(mu_);

  // Never held during a call.
  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t syncs_started_ ABSL_GUARDED_BY(mu_) = 0;
  // The number of the latest successful Sync (0: none yet).
  int64_t last_synced_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t keep_alives_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time lease_expires_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // A third of the lease last granted; set by Start's Sync before the
  // keep-alive thread reads it.
  absl::Duration keep_alive_period_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_CLIENT_FRONTEND_SESSION_H_
