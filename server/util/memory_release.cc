#include "server/util/memory_release.h"

#include <malloc.h>

namespace jambalancer {

bool ReleaseFreeMemory() {
#if defined(__GLIBC__)
  // Since glibc 2.8 this also returns whole free pages inside every arena,
  // not only the top of the main heap.
  return malloc_trim(0) != 0;
#else
  return false;
#endif
}

PeriodicMemoryRelease::PeriodicMemoryRelease(absl::Duration interval)
    : interval_(interval), thread_([this] {
        while (!stop_.WaitForNotificationWithTimeout(interval_)) {
          ReleaseFreeMemory();
        }
      }) {}

PeriodicMemoryRelease::~PeriodicMemoryRelease() {
  stop_.Notify();
  thread_.join();
}

}  // namespace jambalancer
