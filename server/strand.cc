#include "server/strand.h"

#include <utility>

namespace jambalancer {

Strand::Strand() : thread_([this] { Run(); }) {}

Strand::~Strand() { Shutdown(); }

bool Strand::Post(Task task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  queue_.push_back(std::move(task));
  return true;
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

void Strand::Run() {
  std::deque<Task> batch;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Strand::HasWorkOrStopping));
      // Queue empty here means stopping_ with nothing left to run.
      if (queue_.empty()) return;
      batch.swap(queue_);
    }
    // Drain the whole batch without touching the lock: producers are not
    // held up while tasks run.
    for (Task& task : batch) std::move(task)();
    batch.clear();
  }
}

}  // namespace jambalancer
