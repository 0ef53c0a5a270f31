#include "server/runtime/jam_pool.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/util/log.h"

namespace jambalancer {

JamPool::JamPool(uint32_t max_users, bool run_inline)
    : max_users_(max_users),
      state_(std::make_unique<PoolState>(max_users)),
      strand_(run_inline) {}

bool JamPool::Post(Operation operation) {
  return strand_.Post([this, operation = std::move(operation)]() mutable {
    std::move(operation)(*state_, absl::Now());
    ScheduleRemoval();
    ArmExpiryTimer();
  });
}

bool JamPool::Reset(Operation init) {
  return strand_.Post([this, init = std::move(init)]() mutable {
    for (FrontEndRemovalTask& task : state_->removals) {
      task.Finish(absl::UnavailableError(
          "the pool's state was reset (this replica stopped leading)"));
    }
    state_ = std::make_unique<PoolState>(max_users_);
    removal_ = RemovalProgress();
    std::move(init)(*state_, absl::Now());
    ScheduleRemoval();
    ArmExpiryTimer();
  });
}

void JamPool::ArmExpiryTimer() {
  const absl::Time next =
      std::min(state_->jams.NextExpiry(), state_->sessions.NextExpiry());
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
  state_->jams.ExpireReservations(now);
  for (std::string& frontend_id : state_->sessions.Expire(now)) {
    ++state_->sessions_expired;
    Log(LogLevel::kInfo, "front-end lease expired, removing its users",
        {{"frontend_id", frontend_id}});
    state_->removals.emplace_back(std::move(frontend_id), /*expired=*/true);
  }
  ScheduleRemoval();
}

void JamPool::ScheduleRemoval() {
  if (state_->removals.empty() || removal_posted_) return;
  removal_posted_ = true;
  // The step queues behind whatever calls arrived meanwhile.
  const bool posted = strand_.Post([this] {
    removal_posted_ = false;
    RemoveStep();
    ScheduleRemoval();
    ArmExpiryTimer();
  });
  if (posted) return;
  // Shutting down: the removals cannot finish; whoever waits is told.
  for (FrontEndRemovalTask& task : state_->removals) {
    task.Finish(absl::UnavailableError("server is shutting down"));
  }
}

void JamPool::RemoveStep() {
  if (state_->removals.empty()) return;
  FrontEndRemovalTask& task = state_->removals.front();
  const absl::Time begin = absl::Now();
  if (removal_.steps == 0 || removal_.frontend_id != task.frontend_id) {
    removal_ = RemovalProgress();
    removal_.frontend_id = task.frontend_id;
    removal_.started = begin;
  }
  const FrontEndRemoval step =
      state_->jams.RemoveFrontEnd(task.frontend_id, kRemovalStep, begin);
  state_->CountRemoved(task, step);
  const absl::Time end = absl::Now();
  removal_.reservations += step.reservations_removed;
  ++removal_.steps;
  removal_.longest_step = std::max(removal_.longest_step, end - begin);
  if (!step.done) return;
  Log(LogLevel::kInfo,
      task.expired ? "front end's users removed after its lease expired"
                   : "front end's users removed after it ended its session",
      {{"frontend_id", task.frontend_id},
       {"members", absl::StrCat(task.members_removed)},
       {"reservations", absl::StrCat(removal_.reservations)},
       {"steps", absl::StrCat(removal_.steps)},
       {"took_ms",
        absl::StrCat(absl::ToDoubleMilliseconds(end - removal_.started))},
       {"longest_step_ms",
        absl::StrCat(absl::ToDoubleMilliseconds(removal_.longest_step))}});
  removal_ = RemovalProgress();
  task.Finish(task.members_removed);
  state_->removals.pop_front();
}

}  // namespace jambalancer
