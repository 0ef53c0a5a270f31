#ifndef JAM_BALANCER_SERVER_RUNTIME_POOL_STATE_H_
#define JAM_BALANCER_SERVER_RUNTIME_POOL_STATE_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/jam_collection.h"
#include "server/core/session_table.h"

namespace jambalancer {

// A front end whose session is over (its lease ran out, or it ended it) and
// whose members and reservations are being removed, in steps.
struct FrontEndRemovalTask {
  // Called once all are gone with the members removed in all, or with an
  // error if the removal cannot finish (shutdown). On the strand.
  using Done = absl::AnyInvocable<void(absl::StatusOr<uint64_t>) &&>;

  FrontEndRemovalTask(std::string frontend_id, bool expired, Done done = {})
      : frontend_id(std::move(frontend_id)),
        expired(expired),
        done(std::move(done)) {}

  std::string frontend_id;
  bool expired = false;  // The lease ran out (else EndSession).
  uint64_t members_removed = 0;
  Done done;  // May be empty.

  // Calls `done`, if any, once.
  void Finish(absl::StatusOr<uint64_t> result) {
    if (done) std::exchange(done, nullptr)(std::move(result));
  }
};

// What a Sync ended with.
struct SyncOutcome {
  absl::Time lease_expires;
  FrontEndCounts counts;  // What the front end owns afterwards.
};

// A front end's Sync being applied in steps (JamCollection::ReplaceStep) by
// the pool, one Sync at a time, first queued first.
struct SyncTask {
  // Called once with the outcome, or an error if the Sync cannot finish
  // (shutdown, reset). On the strand.
  using Done = absl::AnyInvocable<void(absl::StatusOr<SyncOutcome>) &&>;

  SyncTask(JamCollection::Replacement plan, absl::Duration lease_ttl, Done done)
      : plan(std::move(plan)), lease_ttl(lease_ttl), done(std::move(done)) {}

  JamCollection::Replacement plan;
  absl::Duration lease_ttl;
  Done done;
  bool started = false;  // Its first step ran (its session is live).

  void Finish(absl::StatusOr<SyncOutcome> outcome) {
    if (done) std::exchange(done, nullptr)(std::move(outcome));
  }
};

// Bounds on a pool's state (the defaults bound nothing).
struct PoolLimits {
  CollectionLimits collection;
  uint64_t max_sessions = UINT64_MAX;
};

// What a pool's operations run against: the jams and the front ends'
// sessions. Touched only on the pool's strand.
struct PoolState {
  explicit PoolState(uint32_t max_users, const PoolLimits& limits = {})
      : jams(max_users, limits.collection), sessions(limits.max_sessions) {}

  JamCollection jams;
  SessionTable sessions;
  // The leadership epoch this state belongs to (etcd's revision of the
  // leader key; 0 when the server runs alone). A new leader starts with a
  // fresh state of its own epoch.
  int64_t epoch = 0;
  // Front ends whose session is over and that still own users, removed in
  // steps by the pool, first one first. A new session of such a front end
  // must wait until its removal is done, or the steps would remove its new
  // users (Sync finishes the removal first).
  std::deque<FrontEndRemovalTask> removals;
  auto FindRemoval(absl::string_view frontend_id) {
    return std::find_if(removals.begin(), removals.end(),
                        [frontend_id](const FrontEndRemovalTask& task) {
                          return task.frontend_id == frontend_id;
                        });
  }
  // Syncs admitted and being applied in steps, first one first.
  std::deque<SyncTask> syncs;
  // Counts what one step of `task` removed.
  void CountRemoved(FrontEndRemovalTask& task, const FrontEndRemoval& step) {
    task.members_removed += step.members_removed;
    if (!task.expired) return;
    members_removed_by_expiry += step.members_removed;
    reservations_removed_by_expiry += step.reservations_removed;
  }
  // Running totals of the front ends removed when their lease ran out.
  uint64_t sessions_expired = 0;
  uint64_t members_removed_by_expiry = 0;
  uint64_t reservations_removed_by_expiry = 0;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RUNTIME_POOL_STATE_H_
