#include "server/runtime/jam_pool.h"

#include <atomic>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/testing/pool_reader.h"

namespace jambalancer {
namespace {

using test::EventuallyOnStrand;
using test::ReadOnStrand;

// Every test runs with the strand in both modes (see Strand).
class JamPoolTest : public ::testing::TestWithParam<bool> {};

TEST_P(JamPoolTest, OperationsRunInOrderWithTheCurrentTime) {
  JamPool pool(7, /*run_inline=*/GetParam());
  const absl::Time before = absl::Now();
  for (int i = 0; i < 20; ++i) {
    pool.Post([i](JamCollection& collection, absl::Time now) {
      collection.AddUser("j", std::to_string(i), now);
    });
  }
  const uint64_t users = ReadOnStrand<uint64_t>(
      pool, [&](JamCollection& collection, absl::Time now) {
        EXPECT_GE(now, before);
        return collection.Snapshot(now).user_count;
      });
  // 7 joined, 13 were turned away, in post order: users 0..6.
  EXPECT_EQ(users, 7u);
  const bool first_seven =
      ReadOnStrand<bool>(pool, [](JamCollection& collection, absl::Time now) {
        return collection.HasCapacity("j", "6", now).has_capacity &&
               !collection.HasCapacity("j", "7", now).has_capacity;
      });
  EXPECT_TRUE(first_seven);
}

// The strand's timer expires reservations with no call arriving: NextExpiry
// does not expire anything itself, so it only changes if the timer ran.
TEST_P(JamPoolTest, TimerExpiresReservationsWithoutCalls) {
  JamPool pool(7, /*run_inline=*/GetParam());
  const absl::Time reserved_at = ReadOnStrand<absl::Time>(
      pool, [](JamCollection& collection, absl::Time now) {
        collection.ReserveSeat("ann", absl::Milliseconds(100), now);
        return now;
      });
  EXPECT_TRUE(
      EventuallyOnStrand(pool, [](JamCollection& collection, absl::Time) {
        return collection.NextExpiry() == absl::InfiniteFuture();
      }));
  EXPECT_GE(absl::Now(), reserved_at + absl::Milliseconds(100));
}

TEST_P(JamPoolTest, EarlierReservationRearmsTheTimer) {
  JamPool pool(7, /*run_inline=*/GetParam());
  ReadOnStrand<bool>(pool, [](JamCollection& collection, absl::Time now) {
    collection.ReserveSeat("late", absl::Hours(1), now);
    collection.ReserveSeat("soon", absl::Milliseconds(50), now);
    return true;
  });
  EXPECT_TRUE(
      EventuallyOnStrand(pool, [](JamCollection& collection, absl::Time now) {
        // Only the hour-long reservation may be left: its expiry is next.
        return collection.NextExpiry() > now + absl::Minutes(30);
      }));
}

TEST_P(JamPoolTest, PostAfterShutdownIsRefused) {
  JamPool pool(7, /*run_inline=*/GetParam());
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(pool.Post([&](JamCollection&, absl::Time) { ++ran; }));
  }
  pool.Shutdown();
  EXPECT_EQ(ran.load(), 100);
  EXPECT_FALSE(pool.Post([&](JamCollection&, absl::Time) { ++ran; }));
}

INSTANTIATE_TEST_SUITE_P(Modes, JamPoolTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Inline" : "DedicatedThread";
                         });

}  // namespace
}  // namespace jambalancer
