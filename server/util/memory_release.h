#ifndef JAM_BALANCER_SERVER_UTIL_MEMORY_RELEASE_H_
#define JAM_BALANCER_SERVER_UTIL_MEMORY_RELEASE_H_

#include <cstddef>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace jambalancer {

// Gives the allocator's free memory back to the operating system. glibc
// keeps what a burst freed (parsed Syncs, unread answers, a flood of calls)
// in its arenas for reuse, so RSS would stay at the burst's peak. Returns
// whether anything was released. Any thread; takes the allocator's locks
// for a moment.
bool ReleaseFreeMemory();

// Calls ReleaseFreeMemory every `interval` on a thread of its own until
// destroyed.
class PeriodicMemoryRelease {
 public:
  // REQUIRES: interval > 0.
  explicit PeriodicMemoryRelease(absl::Duration interval);
  ~PeriodicMemoryRelease();

  PeriodicMemoryRelease(const PeriodicMemoryRelease&) = delete;
  PeriodicMemoryRelease& operator=(const PeriodicMemoryRelease&) = delete;

 private:
  const absl::Duration interval_;
  absl::Notification stop_;
  std::thread thread_;  // Last: starts after the members above exist.
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_UTIL_MEMORY_RELEASE_H_
