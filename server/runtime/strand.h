#ifndef JAM_BALANCER_SERVER_RUNTIME_STRAND_H_
#define JAM_BALANCER_SERVER_RUNTIME_STRAND_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/util/latency_histogram.h"

namespace jambalancer {

// A serial executor: posted tasks run one at a time, never overlapping, in
// the order they were posted. State touched only by its tasks needs no lock.
//
// Exclusive execution, not necessarily one thread: in inline mode a Post
// that finds the strand idle runs its task at once on the posting thread
// (saving the hand-off to another thread), then runs whatever was queued
// meanwhile, once, and leaves the rest to the dedicated thread (so a busy
// strand never keeps a poster's thread). The dedicated thread runs queued
// work the posters left, and the timer. Without inline mode only the dedicated
// thread runs tasks.
//
// Thread-safe: any thread may Post. Tasks must not block for long; they may
// Post more tasks (those run after the current one). Destruction shuts the
// strand down.
class Strand {
 public:
  using Task = absl::AnyInvocable<void() &&>;

  explicit Strand(bool run_inline);
  ~Strand();

  Strand(const Strand&) = delete;
  Strand& operator=(const Strand&) = delete;

  // Runs `task` on the strand: at once on this thread if inline mode is on
  // and the strand is idle, else queued. Returns false, dropping the task
  // unrun, once Shutdown has begun.
  bool Post(Task task);

  // Runs `task` on the strand once `when` has come, replacing the timer set
  // before (one timer at a time). InfiniteFuture clears it. A timer still
  // pending at Shutdown never runs.
  void SetTimer(absl::Time when, Task task);

  // Stops accepting tasks, runs every task already posted, and joins the
  // thread. Idempotent. REQUIRES: not called from a task.
  void Shutdown();

  // Tasks queued and not yet started.
  size_t QueueDepth() const;

  // How long tasks waited before starting, and how long they ran. Written
  // under the strand's exclusivity; readable from any thread.
  const LatencyHistogram& wait_time() const { return wait_time_; }
  const LatencyHistogram& run_time() const { return run_time_; }

  // The longest any task has run so far. Any thread.
  absl::Duration LongestRun() const {
    return absl::Nanoseconds(longest_run_ns_.load(std::memory_order_relaxed));
  }

  // How long the strand has gone without finishing a task while it had one
  // to run: the time since the running task started, or since the oldest
  // queued task was posted if it is longer; zero while the strand is idle.
  // A liveness probe's reading. Any thread.
  absl::Duration Stalled() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Queued {
    Task task;
    Clock::time_point posted;
  };

  // The dedicated thread's loop.
  void Run();
  // Runs queued tasks, a batch (all that is queued) at a time, until the
  // queue is empty or `max_batches` batches ran, then gives up the strand
  // (the dedicated thread takes what is left). REQUIRES: this thread holds
  // the strand (running_).
  void DrainAndRelease(int max_batches = -1);
  void RunTask(Queued& queued);
  // Wake-up conditions of the dedicated thread.
  bool ThreadShouldWake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IdleOrChanged() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const bool run_inline_;
  mutable absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  // Some thread is running tasks; only that thread may run more.
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time timer_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  bool timer_changed_ ABSL_GUARDED_BY(mu_) = false;
  Task timer_task_ ABSL_GUARDED_BY(mu_);
  LatencyHistogram wait_time_{LatencyHistogram::DefaultBounds()};
  LatencyHistogram run_time_{LatencyHistogram::DefaultBounds()};
  // When the running task started (steady clock, ns since its epoch); 0
  // while no task runs.
  std::atomic<int64_t> task_started_ns_{0};
  std::atomic<int64_t> longest_run_ns_{0};
  std::thread thread_;  // Last: starts after every member it uses.
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RUNTIME_STRAND_H_
