#ifndef JAM_BALANCER_SERVER_JAM_BALANCER_H_
#define JAM_BALANCER_SERVER_JAM_BALANCER_H_

#include <cstddef>
#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "server/jam_collection.h"
#include "server/strand.h"

namespace jambalancer {

// The one owner of the jam collection: every operation on it runs on one
// strand, in the order posted. Nothing else can reach the collection, so it
// needs no lock.
//
// Thread-safe.
class JamBalancer {
 public:
  // Runs on the strand with exclusive access to the collection.
  using Operation = absl::AnyInvocable<void(JamCollection&) &&>;

  // REQUIRES: max_users >= 1.
  explicit JamBalancer(uint32_t max_users);

  JamBalancer(const JamBalancer&) = delete;
  JamBalancer& operator=(const JamBalancer&) = delete;

  // Queues `operation`. Returns false, dropping it unrun, after Shutdown.
  bool Post(Operation operation);

  // Runs what is queued, then refuses further operations. Idempotent.
  void Shutdown() { strand_.Shutdown(); }

  size_t QueueDepth() const { return strand_.QueueDepth(); }

 private:
  JamCollection collection_;  // Touched only by tasks on strand_.
  Strand strand_;             // Last member: its thread stops first.
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_JAM_BALANCER_H_
