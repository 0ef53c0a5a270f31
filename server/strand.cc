#include "server/strand.h"

#include <utility>

namespace jambalancer {

Strand::Strand() : thread_([this] { Run(); }) {}

Strand::~Strand() { Shutdown(); }

bool Strand::Post(Task task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  queue_.push_back({std::move(task), Clock::now()});
  return true;
}

void Strand::SetTimer(absl::Time when, Task task) {
  absl::MutexLock lock(&mu_);
  timer_at_ = when;
  timer_changed_ = true;
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

bool Strand::HasWorkOrStopping() const { return !queue_.empty() || stopping_; }

bool Strand::ShouldWake() const {
  return HasWorkOrStopping() || timer_changed_;
}

void Strand::Run() {
  std::deque<Queued> batch;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      // Sleep until work, shutdown, or the timer's time. SetTimer wakes us
      // so that the deadline is read again.
      while (!HasWorkOrStopping() && absl::Now() < timer_at_) {
        timer_changed_ = false;
        mu_.AwaitWithDeadline(absl::Condition(this, &Strand::ShouldWake),
                              timer_at_);
      }
      if (!stopping_ && timer_at_ <= absl::Now()) {
        timer_at_ = absl::InfiniteFuture();
        queue_.push_back({std::move(timer_task_), Clock::now()});
        timer_task_ = nullptr;
      }
      // Queue empty here means stopping_ with nothing left to run.
      if (queue_.empty()) return;
      batch.swap(queue_);
    }
    // Drain the whole batch without touching the lock: producers are not
    // held up while tasks run.
    for (Queued& queued : batch) {
      const Clock::time_point start = Clock::now();
      std::move(queued.task)();
      const Clock::time_point end = Clock::now();
      wait_time_.Observe(absl::FromChrono(start - queued.posted));
      run_time_.Observe(absl::FromChrono(end - start));
    }
    batch.clear();
  }
}

}  // namespace jambalancer
