#include "server/core/expiry_queue.h"

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <utility>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

absl::Time At(int seconds) { return kStart + absl::Seconds(seconds); }

TEST(ExpiryQueueTest, EmptyQueueHasNothingDue) {
  ExpiryQueue<uint32_t> queue;
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.Next(), absl::InfiniteFuture());
  EXPECT_EQ(queue.FirstDue(absl::InfiniteFuture()), std::nullopt);
  EXPECT_FALSE(queue.Cancel(1));
  EXPECT_EQ(queue.DeadlineOf(1), std::nullopt);
}

TEST(ExpiryQueueTest, DueInDeadlineOrderAtOrAfterTheDeadline) {
  ExpiryQueue<uint32_t> queue;
  queue.Schedule(7, At(30));
  queue.Schedule(8, At(10));
  queue.Schedule(9, At(20));
  EXPECT_EQ(queue.size(), 3u);
  EXPECT_EQ(queue.Next(), At(10));
  EXPECT_EQ(queue.FirstDue(At(10) - absl::Nanoseconds(1)), std::nullopt);
  EXPECT_EQ(queue.FirstDue(At(10)), 8u);  // Due exactly at the deadline.
  // FirstDue does not remove: the caller cancels.
  EXPECT_EQ(queue.FirstDue(At(25)), 8u);
  EXPECT_TRUE(queue.Cancel(8));
  EXPECT_EQ(queue.FirstDue(At(25)), 9u);
  EXPECT_TRUE(queue.Cancel(9));
  EXPECT_EQ(queue.FirstDue(At(25)), std::nullopt);
  EXPECT_EQ(queue.Next(), At(30));
}

TEST(ExpiryQueueTest, ScheduleAgainMovesTheDeadline) {
  ExpiryQueue<uint32_t> queue;
  queue.Schedule(1, At(10));
  queue.Schedule(2, At(20));
  queue.Schedule(1, At(30));  // Renewed.
  EXPECT_EQ(queue.size(), 2u);
  EXPECT_EQ(queue.DeadlineOf(1), At(30));
  EXPECT_EQ(queue.FirstDue(At(25)), 2u);
  queue.Schedule(2, At(5));  // Brought forward.
  EXPECT_EQ(queue.Next(), At(5));
  EXPECT_TRUE(queue.Cancel(2));
  EXPECT_EQ(queue.FirstDue(At(25)), std::nullopt);
}

TEST(ExpiryQueueTest, EqualDeadlinesAreOrderedByKey) {
  ExpiryQueue<uint32_t> queue;
  queue.Schedule(5, At(10));
  queue.Schedule(3, At(10));
  queue.Schedule(4, At(10));
  for (uint32_t expected : {3u, 4u, 5u}) {
    EXPECT_EQ(queue.FirstDue(At(10)), expected);
    queue.Cancel(expected);
  }
  EXPECT_TRUE(queue.empty());
}

// Random schedules, renewals and cancellations against a plain map.
TEST(ExpiryQueueTest, MatchesAMapUnderRandomOperations) {
  ExpiryQueue<uint32_t> queue;
  std::map<uint32_t, absl::Time> model;
  std::mt19937 random(12345);
  absl::Time now = kStart;
  for (int step = 0; step < 20000; ++step) {
    const uint32_t key = random() % 200;
    switch (random() % 3) {
      case 0:
      case 1: {
        const absl::Time when = now + absl::Milliseconds(random() % 5000);
        queue.Schedule(key, when);
        model[key] = when;
        break;
      }
      case 2:
        ASSERT_EQ(queue.Cancel(key), model.erase(key) == 1);
        break;
    }
    now += absl::Milliseconds(random() % 100);
    // Drain what is due, as an owner would.
    while (std::optional<uint32_t> due = queue.FirstDue(now)) {
      ASSERT_TRUE(model.count(*due));
      ASSERT_LE(model[*due], now);
      for (const auto& [other, when] : model) {
        // Nothing else is earlier (ties go to the smaller key).
        ASSERT_TRUE(when > model[*due] ||
                    (when == model[*due] && other >= *due));
      }
      queue.Cancel(*due);
      model.erase(*due);
    }
    ASSERT_EQ(queue.size(), model.size());
    for (const auto& [key_left, when] : model) {
      ASSERT_GT(when, now);
      ASSERT_EQ(queue.DeadlineOf(key_left), when);
    }
  }
}

}  // namespace
}  // namespace jambalancer
