#ifndef JAM_BALANCER_SERVER_ETCD_LEASE_KEEPALIVE_H_
#define JAM_BALANCER_SERVER_ETCD_LEASE_KEEPALIVE_H_

#include <cstdint>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace jambalancer {

// Keeps one etcd lease alive over etcd's LeaseKeepAlive stream, on a thread
// of its own: a keepalive every `interval`, each waiting for its answer
// before the next is sent.
//
// An answer is reported with the time its keepalive was SENT: etcd renews
// the lease when the keepalive arrives, later than that, so sent + ttl is
// never after the lease's real end (what a leader's fence is computed from).
// A keepalive unanswered within `interval` (a stopped or partitioned
// member), or a stream that fails, is reported to on_error, and the stream
// is opened again after a backoff (50 ms doubling up to `interval`; the
// channel's round robin sends the new stream to another member). It keeps
// trying until stopped, or until etcd answers TTL 0: the lease is gone, and
// the thread ends after reporting that answer.
//
// Created by EtcdClient::StartKeepAlive. on_ack and on_error run on the
// keepalive's thread, never concurrently, and must not call Stop().
// Stop() and the destructor may be called from any other thread.
class LeaseKeepAlive {
 public:
  struct Ack {
    // When the answered keepalive was sent.
    absl::Time sent;
    // The TTL etcd renewed the lease to; zero: the lease no longer exists.
    absl::Duration ttl;
  };
  using OnAck = std::function<void(const Ack&)>;
  using OnError = std::function<void(const absl::Status&)>;

  LeaseKeepAlive(const LeaseKeepAlive&) = delete;
  LeaseKeepAlive& operator=(const LeaseKeepAlive&) = delete;
  ~LeaseKeepAlive();

  // Cancels the stream and joins the thread; no callback runs after it
  // returns. Idempotent.
  void Stop();

  int64_t lease_id() const { return lease_id_; }

 private:
  friend class EtcdClient;
  // REQUIRES: `stub` outlives this object; interval > 0.
  LeaseKeepAlive(etcdserverpb::Lease::Stub* stub, int64_t lease_id,
                 absl::Duration interval, OnAck on_ack, OnError on_error);

  // What ended one stream.
  enum class StreamEnd { kFailed, kLeaseGone, kStopped };

  void Run();
  // Opens one stream and keeps the lease alive on it until it fails, the
  // lease is gone or Stop() is called. `error` says why it failed; `acked`
  // whether etcd answered at least once.
  StreamEnd RunStream(absl::Status* error, bool* acked);
  // Waits `timeout` unless stopped first; true if stopped.
  bool WaitStopped(absl::Duration timeout);

  etcdserverpb::Lease::Stub* const stub_;
  const int64_t lease_id_;
  const absl::Duration interval_;
  const OnAck on_ack_;
  const OnError on_error_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The open stream's context, so that Stop() can cancel it.
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;

  std::thread thread_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_ETCD_LEASE_KEEPALIVE_H_
