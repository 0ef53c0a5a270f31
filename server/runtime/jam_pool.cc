#include "server/runtime/jam_pool.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/util/log.h"

namespace jambalancer {

JamPool::JamPool(uint32_t max_users, bool run_inline)
    : state_(max_users), strand_(run_inline) {}

bool JamPool::Post(Operation operation) {
  return strand_.Post([this, operation = std::move(operation)]() mutable {
    std::move(operation)(state_, absl::Now());
    ArmExpiryTimer();
  });
}

void JamPool::ArmExpiryTimer() {
  const absl::Time next =
      std::min(state_.jams.NextExpiry(), state_.sessions.NextExpiry());
  // Most operations leave the earliest expiry as it was: no lock taken then.
  if (next == timer_at_) return;
  timer_at_ = next;
  strand_.SetTimer(next, [this] {
    timer_at_ = absl::InfiniteFuture();  // The strand cleared its timer.
    Expire(absl::Now());
    ArmExpiryTimer();
  });
}

void JamPool::Expire(absl::Time now) {
  state_.jams.ExpireReservations(now);
  const std::vector<std::string> expired = state_.sessions.Expire(now);
  if (expired.empty()) return;
  const bool idle = state_.removals.empty();
  for (const std::string& frontend_id : expired) {
    ++state_.sessions_expired;
    Log(LogLevel::kInfo, "front-end lease expired, removing its users",
        {{"frontend_id", frontend_id}});
    state_.removals.push_back(frontend_id);
  }
  if (idle) RemoveStep();
}

void JamPool::RemoveStep() {
  if (state_.removals.empty()) return;
  const absl::Time begin = absl::Now();
  if (removal_.steps == 0 || removal_.frontend_id != state_.removals.front()) {
    removal_ = RemovalProgress();
    removal_.frontend_id = state_.removals.front();
    removal_.started = begin;
  }
  const FrontEndRemoval step =
      state_.jams.RemoveFrontEnd(state_.removals.front(), kRemovalStep, begin);
  state_.members_removed_by_expiry += step.members_removed;
  state_.reservations_removed_by_expiry += step.reservations_removed;
  const absl::Time end = absl::Now();
  removal_.members += step.members_removed;
  removal_.reservations += step.reservations_removed;
  ++removal_.steps;
  removal_.longest_step = std::max(removal_.longest_step, end - begin);
  if (step.done) {
    Log(LogLevel::kInfo, "front end's users removed after its lease expired",
        {{"frontend_id", state_.removals.front()},
         {"members", absl::StrCat(removal_.members)},
         {"reservations", absl::StrCat(removal_.reservations)},
         {"steps", absl::StrCat(removal_.steps)},
         {"took_ms",
          absl::StrCat(absl::ToDoubleMilliseconds(end - removal_.started))},
         {"longest_step_ms",
          absl::StrCat(absl::ToDoubleMilliseconds(removal_.longest_step))}});
    removal_ = RemovalProgress();
    state_.removals.pop_front();
  }
  if (state_.removals.empty()) return;
  // The next step queues behind whatever calls arrived meanwhile.
  strand_.Post([this] {
    RemoveStep();
    ArmExpiryTimer();
  });
}

}  // namespace jambalancer
