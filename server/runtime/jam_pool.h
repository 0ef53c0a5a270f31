#ifndef JAM_BALANCER_SERVER_RUNTIME_JAM_POOL_H_
#define JAM_BALANCER_SERVER_RUNTIME_JAM_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "server/runtime/pool_state.h"
#include "server/runtime/strand.h"

namespace jambalancer {

// A pool of jams: one PoolState and the strand that owns it. Every
// operation on the state runs on the strand, in the order posted, and gets
// the current time from the strand; nothing else can reach the state, so it
// needs no lock. A strand timer expires reservations and leases on time
// even when no call arrives. A front end whose session is over (its lease
// ran out, or an operation queued it in PoolState::removals, as EndSession
// does) is removed in steps of at most kRemovalStep users, each a strand
// task of its own, so other calls run in between however large it is; a
// Sync queued in PoolState::syncs is applied likewise in steps of
// kSyncStep. The
// server's pools are several JamPools, each on its own strand.
//
// Thread-safe.
class JamPool {
 public:
  // Runs on the strand with exclusive access to the state; `now` is the
  // time the operation starts.
  using Operation = absl::AnyInvocable<void(PoolState&, absl::Time now) &&>;

  // Users removed in one strand step: a few milliseconds at most.
  static constexpr size_t kRemovalStep = 2048;
  // Users a Sync places (or checks for removal) in one strand step: a few
  // milliseconds at most.
  static constexpr size_t kSyncStep = 2048;

  // REQUIRES: max_users >= 1. `run_inline`: see Strand. The state's tables
  // are sized for `limits` (see PoolLimits). `name` names the pool in log
  // lines.
  JamPool(uint32_t max_users, bool run_inline, const PoolLimits& limits = {},
          std::string name = "default");
  ~JamPool();

  JamPool(const JamPool&) = delete;
  JamPool& operator=(const JamPool&) = delete;

  // Queues `operation`. Returns false, dropping it unrun, after Shutdown.
  bool Post(Operation operation);

  // Queues the replacement of the whole state by a fresh, empty one (as a
  // new leader starts empty), then runs `init` on it. Removals in progress
  // are dropped; whoever waits on one is told UNAVAILABLE. Returns false
  // after Shutdown.
  bool Reset(Operation init);

  // Runs what is queued, then refuses further operations. Idempotent.
  void Shutdown() { strand_.Shutdown(); }

  size_t QueueDepth() const { return strand_.QueueDepth(); }
  const PoolLimits& limits() const { return limits_; }
  // See Strand::Stalled and Strand::LongestRun: the longest strand step.
  absl::Duration Stalled() const { return strand_.Stalled(); }
  absl::Duration LongestStep() const { return strand_.LongestRun(); }
  const LatencyHistogram& strand_wait_time() const {
    return strand_.wait_time();
  }
  const LatencyHistogram& strand_run_time() const { return strand_.run_time(); }

 private:
  // Points the strand's timer at the state's next expiry. Strand only.
  void ArmExpiryTimer();
  // Expires what is due: reservations, and leases (queueing their front
  // ends for removal). Strand only.
  void Expire(absl::Time now);
  // Posts the next removal step if a removal is queued (an expiry or an
  // EndSession) and no step is posted yet. Strand only.
  void ScheduleRemoval();
  // Removes one step of the first queued front end; when it is done, says
  // so (log line, its task's `done`). Strand only.
  void RemoveStep();

  // Posts the next Sync step if a Sync is queued and no step is posted
  // yet. Strand only.
  void ScheduleSync();
  // Runs one step of the first queued Sync: the rest of its front end's
  // earlier removal first, then its replacement, renewing its lease each
  // step (a lease may be shorter than a large Sync); answers it when it is
  // done, or ABORTED if the session it began ended meanwhile (EndSession).
  // Strand only.
  void SyncStep();
  // Tells every queued removal and Sync it cannot finish. Strand only.
  void AbandonQueued(const absl::Status& why);

  // The removal of the first queued front end, for its closing log line.
  // Strand only. A Sync may take a front end out of the queue mid-removal
  // (it removes the rest at once), so progress names whose it is.
  struct RemovalProgress {
    std::string frontend_id;
    absl::Time started;
    uint64_t reservations = 0;
    int steps = 0;
    absl::Duration longest_step;
  };

  const std::string name_;
  const uint32_t max_users_;
  const PoolLimits limits_;
  // Touched only by tasks on strand_; replaced by Reset.
  std::unique_ptr<PoolState> state_;
  RemovalProgress removal_;
  bool removal_posted_ = false;  // A RemoveStep task is queued. Strand only.
  bool sync_posted_ = false;     // A SyncStep task is queued. Strand only.
  // The time the strand's timer is set for. Strand only.
  absl::Time timer_at_ = absl::InfiniteFuture();
  // Threads freeing the states that Reset replaced; joined at destruction.
  // Strand only until then.
  std::vector<std::thread> retired_states_;
  Strand strand_;  // Last member: its thread stops first.
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RUNTIME_JAM_POOL_H_
