#include "server/runtime/strand.h"

#include <algorithm>
#include <utility>

namespace jambalancer {

Strand::Strand(bool run_inline)
    : run_inline_(run_inline), thread_([this] { Run(); }) {}

Strand::~Strand() { Shutdown(); }

bool Strand::Post(Task task) {
  const Clock::time_point posted = Clock::now();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    if (!run_inline_ || running_ || !queue_.empty()) {
      queue_.push_back({std::move(task), posted});
      return true;
    }
    running_ = true;  // Idle: this thread takes the strand.
  }
  Queued queued{std::move(task), posted};
  RunTask(queued);
  // What was queued meanwhile, then the rest goes to the strand's thread:
  // under a steady load the queue never empties, and a gRPC thread that
  // kept draining it would not get back to gRPC's own work (calls stalled
  // for seconds on a saturated strand).
  DrainAndRelease(/*max_batches=*/1);
  return true;
}

void Strand::SetTimer(absl::Time when, Task task) {
  absl::MutexLock lock(&mu_);
  // Wake the thread only if it must wake earlier than planned: a later time
  // is read when it wakes at the earlier one. (Reservations are taken in
  // about the order they were made, so the earliest expiry mostly moves
  // later, and waking on each move cost a futex wake per call.)
  if (when < timer_at_) timer_changed_ = true;
  timer_at_ = when;
  timer_task_ = when == absl::InfiniteFuture() ? nullptr : std::move(task);
}

void Strand::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

size_t Strand::QueueDepth() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

absl::Duration Strand::Stalled() const {
  const Clock::time_point now = Clock::now();
  Clock::duration stalled{0};
  if (const int64_t started = task_started_ns_.load(std::memory_order_acquire);
      started != 0) {
    stalled = now - Clock::time_point(std::chrono::nanoseconds(started));
  }
  absl::MutexLock lock(&mu_);
  if (!queue_.empty()) stalled = std::max(stalled, now - queue_.front().posted);
  return absl::FromChrono(stalled);
}

void Strand::RunTask(Queued& queued) {
  const Clock::time_point start = Clock::now();
  task_started_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                             start.time_since_epoch())
                             .count(),
                         std::memory_order_release);
  std::move(queued.task)();
  const Clock::time_point end = Clock::now();
  task_started_ns_.store(0, std::memory_order_release);
  const auto ran = end - start;
  wait_time_.Observe(absl::FromChrono(start - queued.posted));
  run_time_.Observe(absl::FromChrono(ran));
  const int64_t ran_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(ran).count();
  if (ran_ns > longest_run_ns_.load(std::memory_order_relaxed)) {
    longest_run_ns_.store(ran_ns, std::memory_order_relaxed);
  }
}

void Strand::DrainAndRelease(int max_batches) {
  std::deque<Queued> batch;
  for (int batches = 0;; ++batches) {
    {
      absl::MutexLock lock(&mu_);
      // Letting go with work queued wakes the thread (ThreadShouldWake).
      if (queue_.empty() || batches == max_batches) {
        running_ = false;
        return;
      }
      batch.swap(queue_);
    }
    // Run the batch without the lock: producers are not held up.
    for (Queued& queued : batch) RunTask(queued);
    batch.clear();
  }
}

bool Strand::ThreadShouldWake() const {
  return stopping_ || timer_changed_ || (!running_ && !queue_.empty());
}

bool Strand::IdleOrChanged() const {
  return stopping_ || timer_changed_ || !running_;
}

void Strand::Run() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      // Sleep until there is work no one else is running, shutdown, or the
      // timer's time. SetTimer wakes us so that the deadline is read again.
      for (;;) {
        if (!running_ && !queue_.empty()) break;
        if (stopping_) {
          // Whoever holds the strand drains the queue before letting go.
          mu_.Await(absl::Condition(
              +[](bool* running) { return !*running; }, &running_));
          if (queue_.empty()) return;
          continue;
        }
        const bool timer_due = timer_at_ <= absl::Now();
        if (!running_ && timer_due) break;
        timer_changed_ = false;
        if (timer_due) {  // Due, but another thread holds the strand.
          mu_.Await(absl::Condition(this, &Strand::IdleOrChanged));
        } else {
          mu_.AwaitWithDeadline(
              absl::Condition(this, &Strand::ThreadShouldWake), timer_at_);
        }
      }
      if (queue_.empty()) {  // The timer is due.
        timer_at_ = absl::InfiniteFuture();
        queue_.push_back({std::move(timer_task_), Clock::now()});
        timer_task_ = nullptr;
      }
      running_ = true;
    }
    DrainAndRelease();
  }
}

}  // namespace jambalancer
