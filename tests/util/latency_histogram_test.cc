#include "server/util/latency_histogram.h"

#include <algorithm>
#include <functional>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

// Buckets (0, 1ms], (1ms, 10ms], (10ms, 100ms] and (100ms, +Inf).
LatencyHistogram::Snapshot ReadAfter(std::vector<absl::Duration> observed) {
  LatencyHistogram histogram(
      {absl::Milliseconds(1), absl::Milliseconds(10), absl::Milliseconds(100)});
  for (absl::Duration duration : observed) histogram.Observe(duration);
  return histogram.Read();
}

TEST(LatencyHistogramTest, EmptyHistogramListsBoundsInSecondsAndZeroCounts) {
  const LatencyHistogram::Snapshot snapshot = ReadAfter({});
  EXPECT_THAT(snapshot.upper_bounds_seconds,
              ElementsAre(DoubleEq(0.001), DoubleEq(0.01), DoubleEq(0.1)));
  EXPECT_THAT(snapshot.cumulative_counts, ElementsAre(0u, 0u, 0u, 0u));
  EXPECT_EQ(snapshot.count, 0u);
  EXPECT_EQ(snapshot.sum_seconds, 0.0);
}

TEST(LatencyHistogramTest, ValueEqualToABoundGoesIntoThatBucket) {
  EXPECT_THAT(ReadAfter({absl::Milliseconds(1)}).cumulative_counts,
              ElementsAre(1u, 1u, 1u, 1u));
  EXPECT_THAT(ReadAfter({absl::Milliseconds(10)}).cumulative_counts,
              ElementsAre(0u, 1u, 1u, 1u));
  EXPECT_THAT(ReadAfter({absl::Milliseconds(100)}).cumulative_counts,
              ElementsAre(0u, 0u, 1u, 1u));
}

TEST(LatencyHistogramTest, ValueJustAboveABoundGoesIntoTheNextBucket) {
  const absl::Duration just_above =
      absl::Milliseconds(1) + absl::Nanoseconds(1);
  EXPECT_THAT(ReadAfter({just_above}).cumulative_counts,
              ElementsAre(0u, 1u, 1u, 1u));
}

TEST(LatencyHistogramTest, ZeroGoesIntoTheFirstBucket) {
  EXPECT_THAT(ReadAfter({absl::ZeroDuration()}).cumulative_counts,
              ElementsAre(1u, 1u, 1u, 1u));
}

TEST(LatencyHistogramTest, ValueAboveEveryBoundGoesIntoInf) {
  const LatencyHistogram::Snapshot snapshot = ReadAfter(
      {absl::Milliseconds(100) + absl::Nanoseconds(1), absl::Seconds(5)});
  EXPECT_THAT(snapshot.cumulative_counts, ElementsAre(0u, 0u, 0u, 2u));
  EXPECT_EQ(snapshot.count, 2u);
}

TEST(LatencyHistogramTest, CountsAreCumulativeWithCountAndSum) {
  const LatencyHistogram::Snapshot snapshot = ReadAfter(
      {absl::Microseconds(500), absl::Milliseconds(1), absl::Milliseconds(3),
       absl::Milliseconds(10), absl::Milliseconds(50), absl::Seconds(2)});
  // Per bucket 2, 2, 1 and 1 (+Inf).
  EXPECT_THAT(snapshot.cumulative_counts, ElementsAre(2u, 4u, 5u, 6u));
  EXPECT_EQ(snapshot.count, 6u);
  EXPECT_THAT(snapshot.sum_seconds, DoubleEq(2.0645));
}

TEST(LatencyHistogramTest, NoBoundsCountsEverythingInInf) {
  LatencyHistogram histogram({});
  histogram.Observe(absl::Microseconds(3));
  histogram.Observe(absl::Seconds(3));
  const LatencyHistogram::Snapshot snapshot = histogram.Read();
  EXPECT_THAT(snapshot.upper_bounds_seconds, IsEmpty());
  EXPECT_THAT(snapshot.cumulative_counts, ElementsAre(2u));
  EXPECT_EQ(snapshot.count, 2u);
  EXPECT_THAT(snapshot.sum_seconds, DoubleEq(3.000003));
}

TEST(LatencyHistogramTest, DefaultBoundsAscendFromTenMicrosecondsToOneSecond) {
  const std::vector<absl::Duration> bounds = LatencyHistogram::DefaultBounds();
  EXPECT_THAT(bounds, ElementsAreArray<absl::Duration>(
                          {absl::Microseconds(10), absl::Microseconds(25),
                           absl::Microseconds(50), absl::Microseconds(100),
                           absl::Microseconds(250), absl::Microseconds(500),
                           absl::Milliseconds(1), absl::Microseconds(2500),
                           absl::Milliseconds(5), absl::Milliseconds(10),
                           absl::Milliseconds(25), absl::Milliseconds(50),
                           absl::Milliseconds(100), absl::Milliseconds(250),
                           absl::Milliseconds(500), absl::Seconds(1)}));
  // Strictly ascending: no two neighbours out of order or equal.
  EXPECT_EQ(std::adjacent_find(bounds.begin(), bounds.end(),
                               std::greater_equal<absl::Duration>()),
            bounds.end());

  const LatencyHistogram::Snapshot snapshot = LatencyHistogram(bounds).Read();
  ASSERT_EQ(snapshot.upper_bounds_seconds.size(), 16u);
  EXPECT_THAT(snapshot.upper_bounds_seconds.front(), DoubleEq(1e-5));
  EXPECT_THAT(snapshot.upper_bounds_seconds.back(), DoubleEq(1.0));
  EXPECT_EQ(snapshot.cumulative_counts.size(), 17u);
}

TEST(LatencyHistogramTest, ConcurrentObservesLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  LatencyHistogram histogram(
      {absl::Milliseconds(1), absl::Milliseconds(2), absl::Milliseconds(3)});
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    // Thread t observes (t + 1) ms: one bucket per thread, +Inf for the last.
    threads.emplace_back([&histogram, t] {
      for (int i = 0; i < kPerThread; ++i) {
        histogram.Observe(absl::Milliseconds(t + 1));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const LatencyHistogram::Snapshot snapshot = histogram.Read();
  EXPECT_THAT(snapshot.cumulative_counts,
              ElementsAre(20000u, 40000u, 60000u, 80000u));
  EXPECT_EQ(snapshot.count, 80000u);
  // 20000 * (1 + 2 + 3 + 4) ms.
  EXPECT_THAT(snapshot.sum_seconds, DoubleEq(200.0));
}

}  // namespace
}  // namespace jambalancer
