#ifndef JAM_BALANCER_SERVER_RUNTIME_JAM_POOL_H_
#define JAM_BALANCER_SERVER_RUNTIME_JAM_POOL_H_

#include <cstddef>
#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "server/core/jam_collection.h"
#include "server/runtime/strand.h"

namespace jambalancer {

// A pool of jams: one JamCollection and the strand that owns it. Every
// operation on the collection runs on the strand, in the order posted, and
// gets the current time from the strand; nothing else can reach the
// collection, so it needs no lock. A strand timer expires reservations on
// time even when no call arrives. The server has one pool today; several
// pools would be several JamPools, each on its own strand.
//
// Thread-safe.
class JamPool {
 public:
  // Runs on the strand with exclusive access to the collection; `now` is the
  // time the operation starts.
  using Operation = absl::AnyInvocable<void(JamCollection&, absl::Time now) &&>;

  // REQUIRES: max_users >= 1. `run_inline`: see Strand.
  JamPool(uint32_t max_users, bool run_inline);

  JamPool(const JamPool&) = delete;
  JamPool& operator=(const JamPool&) = delete;

  // Queues `operation`. Returns false, dropping it unrun, after Shutdown.
  bool Post(Operation operation);

  // Runs what is queued, then refuses further operations. Idempotent.
  void Shutdown() { strand_.Shutdown(); }

  size_t QueueDepth() const { return strand_.QueueDepth(); }
  const LatencyHistogram& strand_wait_time() const {
    return strand_.wait_time();
  }
  const LatencyHistogram& strand_run_time() const { return strand_.run_time(); }

 private:
  // Points the strand's timer at the collection's next expiry. Strand only.
  void ArmExpiryTimer();

  JamCollection collection_;  // Touched only by tasks on strand_.
  // The time the strand's timer is set for. Touched only on strand_.
  absl::Time timer_at_ = absl::InfiniteFuture();
  Strand strand_;  // Last member: its thread stops first.
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RUNTIME_JAM_POOL_H_
