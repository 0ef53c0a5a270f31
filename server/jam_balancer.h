#ifndef JAM_BALANCER_SERVER_JAM_BALANCER_H_
#define JAM_BALANCER_SERVER_JAM_BALANCER_H_

#include <cstddef>
#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "server/jam_collection.h"
#include "server/strand.h"

namespace jambalancer {

// The one owner of the jam collection: every operation on it runs on one
// strand, in the order posted, and gets the current time from the strand.
// Nothing else can reach the collection, so it needs no lock. A strand timer
// expires reservations on time even when no call arrives.
//
// Thread-safe.
class JamBalancer {
 public:
  // Runs on the strand with exclusive access to the collection; `now` is the
  // time the operation starts.
  using Operation = absl::AnyInvocable<void(JamCollection&, absl::Time now) &&>;

  // REQUIRES: max_users >= 1. `run_inline`: see Strand.
  explicit JamBalancer(uint32_t max_users, bool run_inline = false);

  JamBalancer(const JamBalancer&) = delete;
  JamBalancer& operator=(const JamBalancer&) = delete;

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

#endif  // JAM_BALANCER_SERVER_JAM_BALANCER_H_
