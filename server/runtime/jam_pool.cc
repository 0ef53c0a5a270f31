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

JamPool::JamPool(uint32_t max_users, bool run_inline, const PoolLimits& limits,
                 std::string name)
    : name_(std::move(name)),
      max_users_(max_users),
      limits_(limits),
      state_(std::make_unique<PoolState>(max_users, limits)),
      strand_(run_inline) {}

JamPool::~JamPool() {
  strand_.Shutdown();
  for (std::thread& thread : retired_states_) thread.join();
}

bool JamPool::Post(Operation operation) {
  return strand_.Post([this, operation = std::move(operation)]() mutable {
    std::move(operation)(*state_, absl::Now());
    ScheduleRemoval();
    ScheduleSync();
    ArmExpiryTimer();
  });
}

void JamPool::AbandonQueued(const absl::Status& why) {
  for (FrontEndRemovalTask& task : state_->removals) task.Finish(why);
  for (SyncTask& task : state_->syncs) task.Finish(why);
}

bool JamPool::Reset(Operation init) {
  // Made here, not on the strand: sizing its tables for the limits takes a
  // while.
  auto fresh = std::make_unique<PoolState>(max_users_, limits_);
  return strand_.Post(
      [this, init = std::move(init), fresh = std::move(fresh)]() mutable {
        AbandonQueued(absl::UnavailableError(
            "the pool's state was reset (this replica stopped leading)"));
        // Freeing millions of records would stop the strand for seconds: the
        // old state goes away on a thread of its own.
        retired_states_.emplace_back(
            [old = std::exchange(state_, std::move(fresh))]() mutable {
              old.reset();
            });
        removal_ = RemovalProgress();
        std::move(init)(*state_, absl::Now());
        ScheduleRemoval();
        ScheduleSync();
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
        {{"pool", name_}, {"frontend_id", frontend_id}});
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
  AbandonQueued(absl::UnavailableError("server is shutting down"));
}

void JamPool::ScheduleSync() {
  if (state_->syncs.empty() || sync_posted_) return;
  sync_posted_ = true;
  const bool posted = strand_.Post([this] {
    sync_posted_ = false;
    SyncStep();
    ScheduleRemoval();
    ScheduleSync();
    ArmExpiryTimer();
  });
  if (!posted) AbandonQueued(absl::UnavailableError("server is shutting down"));
}

void JamPool::SyncStep() {
  if (state_->syncs.empty()) return;
  SyncTask& task = state_->syncs.front();
  const std::string& frontend_id = task.plan.frontend_id;
  const absl::Time now = absl::Now();
  if (auto removal = state_->FindRemoval(frontend_id);
      removal != state_->removals.end()) {
    if (task.started) {
      // The session this Sync began ended since (EndSession, or a lease
      // run out between steps): the later call wins, the removal goes on.
      task.Finish(absl::AbortedError(
          absl::StrCat("front end ", frontend_id,
                       "'s session ended while its Sync was being applied")));
      state_->syncs.pop_front();
      return;
    }
    // Its ended session's users go first, or later removal steps would
    // take the users this Sync places.
    const FrontEndRemoval step =
        state_->jams.RemoveFrontEnd(frontend_id, kRemovalStep, now);
    state_->CountRemoved(*removal, step);
    if (!step.done) return;
    removal->Finish(removal->members_removed);
    state_->removals.erase(removal);
    return;
  }
  task.started = true;
  const absl::Time expires =
      state_->sessions.Start(frontend_id, task.lease_ttl, now);
  if (!state_->jams.ReplaceStep(task.plan, kSyncStep, now)) return;
  SyncOutcome outcome;
  outcome.lease_expires = expires;
  outcome.counts = state_->jams.UsersOf(frontend_id);
  for (const auto& [jam_id, users] : task.plan.jams) {
    if (!users.empty()) ++outcome.counts.jam_count;
  }
  task.Finish(outcome);
  state_->syncs.pop_front();
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
      {{"pool", name_},
       {"frontend_id", task.frontend_id},
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
