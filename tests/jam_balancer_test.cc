#include "server/jam_balancer.h"

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

// Runs `read` on the strand and waits for it (bounded).
template <typename T>
T ReadOnStrand(JamBalancer& balancer,
               std::function<T(JamCollection&, absl::Time)> read) {
  T value{};
  absl::Notification done;
  EXPECT_TRUE(balancer.Post([&](JamCollection& collection, absl::Time now) {
    value = read(collection, now);
    done.Notify();
  }));
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  return value;
}

// Polls `done` on the strand every 10 ms until it holds (at most 10 s).
bool EventuallyOnStrand(JamBalancer& balancer,
                        std::function<bool(JamCollection&, absl::Time)> done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::Now() < give_up) {
    if (ReadOnStrand<bool>(balancer, done)) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

TEST(JamBalancerTest, OperationsRunInOrderWithTheCurrentTime) {
  JamBalancer balancer(7);
  const absl::Time before = absl::Now();
  for (int i = 0; i < 20; ++i) {
    balancer.Post([i](JamCollection& collection, absl::Time now) {
      collection.AddUser("j", std::to_string(i), now);
    });
  }
  const uint64_t users = ReadOnStrand<uint64_t>(
      balancer, [&](JamCollection& collection, absl::Time now) {
        EXPECT_GE(now, before);
        return collection.Stats(now).user_count;
      });
  // 7 joined, 13 were turned away, in post order: users 0..6.
  EXPECT_EQ(users, 7u);
  const bool first_seven = ReadOnStrand<bool>(
      balancer, [](JamCollection& collection, absl::Time now) {
        return collection.HasCapacity("j", "6", now).has_capacity &&
               !collection.HasCapacity("j", "7", now).has_capacity;
      });
  EXPECT_TRUE(first_seven);
}

// The strand's timer expires reservations with no call arriving: NextExpiry
// does not expire anything itself, so it only changes if the timer ran.
TEST(JamBalancerTest, TimerExpiresReservationsWithoutCalls) {
  JamBalancer balancer(7);
  const absl::Time reserved_at = ReadOnStrand<absl::Time>(
      balancer, [](JamCollection& collection, absl::Time now) {
        collection.ReserveSeat("ann", absl::Milliseconds(100), now);
        return now;
      });
  EXPECT_TRUE(
      EventuallyOnStrand(balancer, [](JamCollection& collection, absl::Time) {
        return collection.NextExpiry() == absl::InfiniteFuture();
      }));
  EXPECT_GE(absl::Now(), reserved_at + absl::Milliseconds(100));
}

TEST(JamBalancerTest, EarlierReservationRearmsTheTimer) {
  JamBalancer balancer(7);
  ReadOnStrand<bool>(balancer, [](JamCollection& collection, absl::Time now) {
    collection.ReserveSeat("late", absl::Hours(1), now);
    collection.ReserveSeat("soon", absl::Milliseconds(50), now);
    return true;
  });
  EXPECT_TRUE(EventuallyOnStrand(
      balancer, [](JamCollection& collection, absl::Time now) {
        // Only the hour-long reservation may be left: its expiry is next.
        return collection.NextExpiry() > now + absl::Minutes(30);
      }));
}

TEST(JamBalancerTest, PostAfterShutdownIsRefused) {
  JamBalancer balancer(7);
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(balancer.Post([&](JamCollection&, absl::Time) { ++ran; }));
  }
  balancer.Shutdown();
  EXPECT_EQ(ran.load(), 100);
  EXPECT_FALSE(balancer.Post([&](JamCollection&, absl::Time) { ++ran; }));
}

}  // namespace
}  // namespace jambalancer
