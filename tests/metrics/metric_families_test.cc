#include "server/metrics/metric_families.h"

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using ::testing::AllOf;
using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;

constexpr double kInf = std::numeric_limits<double>::infinity();

// A histogram bucket: at most `count` samples were <= `upper_bound`.
::testing::Matcher<ClientMetric::Bucket> Bucket(double upper_bound,
                                                uint64_t count) {
  return AllOf(Field("upper_bound", &ClientMetric::Bucket::upper_bound,
                     DoubleEq(upper_bound)),
               Field("cumulative_count",
                     &ClientMetric::Bucket::cumulative_count, count));
}

TEST(SingleValueFamilyTest, CounterHoldsTheValueInItsCounter) {
  const MetricFamily family = SingleValueFamily(
      "things_total", "Things counted.", MetricType::Counter, 42.5);
  EXPECT_EQ(family.name, "things_total");
  EXPECT_EQ(family.help, "Things counted.");
  EXPECT_EQ(family.type, MetricType::Counter);
  ASSERT_EQ(family.metric.size(), 1u);
  EXPECT_THAT(family.metric[0].label, IsEmpty());
  EXPECT_EQ(family.metric[0].counter.value, 42.5);
  EXPECT_EQ(family.metric[0].gauge.value, 0.0);
}

TEST(SingleValueFamilyTest, GaugeHoldsTheValueInItsGauge) {
  const MetricFamily family =
      SingleValueFamily("level", "A level.", MetricType::Gauge, -3.25);
  EXPECT_EQ(family.name, "level");
  EXPECT_EQ(family.help, "A level.");
  EXPECT_EQ(family.type, MetricType::Gauge);
  ASSERT_EQ(family.metric.size(), 1u);
  EXPECT_THAT(family.metric[0].label, IsEmpty());
  EXPECT_EQ(family.metric[0].gauge.value, -3.25);
  EXPECT_EQ(family.metric[0].counter.value, 0.0);
}

TEST(FillHistogramTest, CopiesBucketsCountAndSumAndAddsInf) {
  LatencyHistogram::Snapshot snapshot;
  snapshot.upper_bounds_seconds = {0.1, 1.0};
  snapshot.cumulative_counts = {2, 5, 7};
  snapshot.count = 7;
  snapshot.sum_seconds = 3.25;
  ClientMetric metric;
  metric.label = {{"pool", "a"}};
  FillHistogram(snapshot, &metric);
  EXPECT_THAT(metric.histogram.bucket,
              ElementsAre(Bucket(0.1, 2), Bucket(1.0, 5), Bucket(kInf, 7)));
  EXPECT_EQ(metric.histogram.sample_count, 7u);
  EXPECT_EQ(metric.histogram.sample_sum, 3.25);
  EXPECT_EQ(metric.label, (std::vector<ClientMetric::Label>{{"pool", "a"}}));
}

TEST(FillHistogramTest, ReplacesBucketsAlreadyThere) {
  ClientMetric metric;
  metric.histogram.bucket = {{9, 0.5}, {9, kInf}};
  LatencyHistogram::Snapshot snapshot;
  snapshot.upper_bounds_seconds = {0.25};
  snapshot.cumulative_counts = {1, 1};
  snapshot.count = 1;
  snapshot.sum_seconds = 0.125;
  FillHistogram(snapshot, &metric);
  EXPECT_THAT(metric.histogram.bucket,
              ElementsAre(Bucket(0.25, 1), Bucket(kInf, 1)));
  EXPECT_EQ(metric.histogram.sample_count, 1u);
  EXPECT_EQ(metric.histogram.sample_sum, 0.125);
}

TEST(FillHistogramTest, EmptyHistogramHasOnlyAZeroInfBucket) {
  ClientMetric metric;
  FillHistogram(LatencyHistogram({}).Read(), &metric);
  EXPECT_THAT(metric.histogram.bucket, ElementsAre(Bucket(kInf, 0)));
  EXPECT_EQ(metric.histogram.sample_count, 0u);
  EXPECT_EQ(metric.histogram.sample_sum, 0.0);
}

TEST(FillHistogramTest, CopiesALatencyHistogramsReading) {
  LatencyHistogram histogram({absl::Milliseconds(1), absl::Milliseconds(10)});
  histogram.Observe(absl::Microseconds(200));
  histogram.Observe(absl::Milliseconds(4));
  histogram.Observe(absl::Milliseconds(20));
  ClientMetric metric;
  FillHistogram(histogram.Read(), &metric);
  EXPECT_THAT(metric.histogram.bucket,
              ElementsAre(Bucket(0.001, 1), Bucket(0.01, 2), Bucket(kInf, 3)));
  EXPECT_EQ(metric.histogram.sample_count, 3u);
  EXPECT_THAT(metric.histogram.sample_sum, DoubleEq(0.0242));
}

}  // namespace
}  // namespace jambalancer
