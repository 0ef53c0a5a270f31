#ifndef JAM_BALANCER_TESTS_TESTING_POOL_READER_H_
#define JAM_BALANCER_TESTS_TESTING_POOL_READER_H_

#include <functional>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/core/jam_collection.h"
#include "server/runtime/jam_pool.h"

namespace jambalancer::test {

// Runs `read` on the pool's strand and waits for it (at most 10 s).
template <typename T>
T ReadOnStrand(JamPool& pool, std::function<T(PoolState&, absl::Time)> read) {
  T value{};
  absl::Notification done;
  EXPECT_TRUE(pool.Post([&](PoolState& state, absl::Time now) {
    value = read(state, now);
    done.Notify();
  }));
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  return value;
}

// Polls `done` on the strand every 10 ms until it holds (at most 10 s).
inline bool EventuallyOnStrand(
    JamPool& pool, std::function<bool(PoolState&, absl::Time)> done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::Now() < give_up) {
    if (ReadOnStrand<bool>(pool, done)) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

}  // namespace jambalancer::test

#endif  // JAM_BALANCER_TESTS_TESTING_POOL_READER_H_
