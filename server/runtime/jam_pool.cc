#include "server/runtime/jam_pool.h"

#include <utility>

#include "absl/time/clock.h"

namespace jambalancer {

JamPool::JamPool(uint32_t max_users, bool run_inline)
    : collection_(max_users), strand_(run_inline) {}

bool JamPool::Post(Operation operation) {
  return strand_.Post([this, operation = std::move(operation)]() mutable {
    std::move(operation)(collection_, absl::Now());
    ArmExpiryTimer();
  });
}

void JamPool::ArmExpiryTimer() {
  const absl::Time next = collection_.NextExpiry();
  // Most operations leave the earliest expiry as it was: no lock taken then.
  if (next == timer_at_) return;
  timer_at_ = next;
  strand_.SetTimer(next, [this] {
    timer_at_ = absl::InfiniteFuture();  // The strand cleared its timer.
    collection_.ExpireReservations(absl::Now());
    ArmExpiryTimer();
  });
}

}  // namespace jambalancer
