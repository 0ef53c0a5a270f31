#include "server/metrics/leadership_metrics.h"

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

std::map<std::string, const MetricFamily*> ByName(
    const std::vector<MetricFamily>& families) {
  std::map<std::string, const MetricFamily*> by_name;
  for (const MetricFamily& family : families) by_name[family.name] = &family;
  return by_name;
}

TEST(LeadershipMetricsTest, ShowsTheReadingAsGaugesCountersAndAHistogram) {
  LatencyHistogram round_trip(LatencyHistogram::DefaultBounds());
  round_trip.Observe(absl::Milliseconds(3));
  round_trip.Observe(absl::Milliseconds(40));
  LeadershipReading reading;
  reading.leading = true;
  reading.epoch = 42;
  reading.elections_won = 3;
  reading.seconds_leading = 12.5;
  reading.keepalive_round_trip = round_trip.Read();
  reading.keepalive_failures = 2;
  reading.labels = {{"pool", "rock"}};

  const std::vector<MetricFamily> families = LeadershipFamilies({reading});
  const auto by_name = ByName(families);
  ASSERT_EQ(by_name.size(), 6u);
  auto value = [&](const std::string& name) {
    const MetricFamily& family = *by_name.at(name);
    EXPECT_EQ(family.metric.size(), 1u) << name;
    return family.type == MetricType::Counter ? family.metric[0].counter.value
                                              : family.metric[0].gauge.value;
  };
  EXPECT_EQ(by_name.at("jam_balancer_leader")->type, MetricType::Gauge);
  EXPECT_EQ(value("jam_balancer_leader"), 1);
  EXPECT_EQ(value("jam_balancer_leader_epoch"), 42);
  EXPECT_EQ(by_name.at("jam_balancer_elections_won_total")->type,
            MetricType::Counter);
  EXPECT_EQ(value("jam_balancer_elections_won_total"), 3);
  EXPECT_EQ(value("jam_balancer_leader_seconds_total"), 12.5);
  EXPECT_EQ(value("jam_balancer_etcd_keepalive_failures_total"), 2);

  const MetricFamily& histogram =
      *by_name.at("jam_balancer_etcd_keepalive_seconds");
  ASSERT_EQ(histogram.type, MetricType::Histogram);
  ASSERT_EQ(histogram.metric.size(), 1u);
  EXPECT_EQ(histogram.metric[0].histogram.sample_count, 2u);
  EXPECT_NEAR(histogram.metric[0].histogram.sample_sum, 0.043, 1e-9);
  for (const MetricFamily& family : families) {
    ASSERT_EQ(family.metric[0].label.size(), 1u) << family.name;
    EXPECT_EQ(family.metric[0].label[0].value, "rock") << family.name;
  }

  // One series per pool's election.
  LeadershipReading standby = reading;
  standby.leading = false;
  standby.labels = {{"pool", "duo"}};
  const std::vector<MetricFamily> both = LeadershipFamilies({reading, standby});
  const MetricFamily& leader = *ByName(both).at("jam_balancer_leader");
  ASSERT_EQ(leader.metric.size(), 2u);
  EXPECT_EQ(leader.metric[0].gauge.value, 1);
  EXPECT_EQ(leader.metric[1].gauge.value, 0);
}

}  // namespace
}  // namespace jambalancer
