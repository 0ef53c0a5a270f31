#include "server/metrics/pool_metrics.h"

#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::Pair;

constexpr double kInf = std::numeric_limits<double>::infinity();

// max_users 3: 1 jam with no members (only reservations), 2 with one
// member, 3 with two, 3 full and 1 overfilled with 5 members.
CollectionSnapshot Snapshot() {
  CollectionSnapshot s;
  s.max_users = 3;
  s.jam_count = 10;
  s.user_count = 0 * 1 + 1 * 2 + 2 * 3 + 3 * 3 + 5 * 1;  // 22
  s.full_jam_count = 4;
  s.reservation_count = 2;
  s.jams_created = 30;
  s.users_turned_away = 7;
  s.overfilled_refreshes = 6;
  s.reservations_made = 11;
  s.reservations_expired = 5;
  s.jams_by_members = {1, 2, 3, 3, 1};
  return s;
}

// Strand timings: wait buckets le=1ms, le=10ms; run le=1ms.
PoolReading Reading(std::vector<ClientMetric::Label> labels,
                    std::optional<CollectionSnapshot> collection) {
  PoolReading reading;
  reading.labels = std::move(labels);
  reading.collection = std::move(collection);
  reading.strand_queue_depth = 4;
  reading.strand_wait = {{0.001, 0.01}, {1, 3, 4}, 4, 0.5};
  reading.strand_run = {{0.001}, {6, 6}, 6, 0.003};
  reading.strand_longest_step = absl::Milliseconds(7);
  reading.limits = {{100, 200}, 5};
  return reading;
}

struct Expected {
  const char* name;
  MetricType type;
  double value;  // From Snapshot().
};

constexpr Expected kCollectionFamilies[] = {
    {"jam_balancer_jams", MetricType::Gauge, 10},
    {"jam_balancer_users", MetricType::Gauge, 22},
    {"jam_balancer_full_jams", MetricType::Gauge, 4},
    {"jam_balancer_overfilled_jams", MetricType::Gauge, 1},
    {"jam_balancer_reservations", MetricType::Gauge, 2},
    {"jam_balancer_max_users", MetricType::Gauge, 3},
    {"jam_balancer_jams_created_total", MetricType::Counter, 30},
    {"jam_balancer_users_turned_away_total", MetricType::Counter, 7},
    {"jam_balancer_overfilled_refreshes_total", MetricType::Counter, 6},
    {"jam_balancer_reservations_made_total", MetricType::Counter, 11},
    {"jam_balancer_reservations_expired_total", MetricType::Counter, 5},
};

const std::vector<std::string> kStrandFamilies = {
    "jam_balancer_strand_queue_depth", "jam_balancer_strand_wait_seconds",
    "jam_balancer_strand_run_seconds",
    "jam_balancer_strand_longest_step_seconds", "jam_balancer_limit"};

std::vector<std::string> Names(const std::vector<MetricFamily>& families) {
  std::vector<std::string> names;
  for (const MetricFamily& family : families) names.push_back(family.name);
  return names;
}

// The value a counter or gauge series holds.
double Value(MetricType type, const ClientMetric& metric) {
  return type == MetricType::Counter ? metric.counter.value
                                     : metric.gauge.value;
}

// A histogram's buckets as (upper bound, cumulative count).
using BucketList = std::vector<std::pair<double, uint64_t>>;
BucketList Buckets(const ClientMetric::Histogram& histogram) {
  BucketList buckets;
  for (const ClientMetric::Bucket& bucket : histogram.bucket) {
    buckets.emplace_back(bucket.upper_bound, bucket.cumulative_count);
  }
  return buckets;
}

TEST(PoolFamiliesTest, ListsEveryFamilyInOrderWithItsType) {
  const PoolReading pools[] = {Reading({}, Snapshot())};
  const std::vector<MetricFamily> families = PoolFamilies(pools);
  std::vector<std::string> expected;
  for (const Expected& e : kCollectionFamilies) expected.push_back(e.name);
  expected.push_back("jam_balancer_jam_members");
  expected.insert(expected.end(), kStrandFamilies.begin(),
                  kStrandFamilies.end());
  ASSERT_THAT(Names(families), ElementsAreArray(expected));
  for (size_t i = 0; i < std::size(kCollectionFamilies); ++i) {
    EXPECT_EQ(families[i].type, kCollectionFamilies[i].type) << expected[i];
    EXPECT_FALSE(families[i].help.empty()) << expected[i];
  }
  EXPECT_EQ(families[11].type, MetricType::Histogram);
  EXPECT_EQ(families[12].type, MetricType::Gauge);
  EXPECT_EQ(families[13].type, MetricType::Histogram);
  EXPECT_EQ(families[14].type, MetricType::Histogram);
  EXPECT_EQ(families[15].type, MetricType::Gauge);
  EXPECT_EQ(families[16].type, MetricType::Gauge);
}

TEST(PoolFamiliesTest, CollectionValuesComeFromTheSnapshot) {
  const PoolReading pools[] = {Reading({}, Snapshot())};
  const std::vector<MetricFamily> families = PoolFamilies(pools);
  for (size_t i = 0; i < std::size(kCollectionFamilies); ++i) {
    const Expected& e = kCollectionFamilies[i];
    ASSERT_EQ(families[i].metric.size(), 1u) << e.name;
    EXPECT_TRUE(families[i].metric[0].label.empty()) << e.name;
    EXPECT_EQ(Value(e.type, families[i].metric[0]), e.value) << e.name;
  }
}

TEST(PoolFamiliesTest, JamMembersBucketsAreCumulativeUpToMaxUsers) {
  const PoolReading pools[] = {Reading({}, Snapshot())};
  const std::vector<MetricFamily> families = PoolFamilies(pools);
  ASSERT_EQ(families[11].metric.size(), 1u);
  const ClientMetric::Histogram& sizes = families[11].metric[0].histogram;
  // The overfilled jam is counted only by +Inf (= jam_count).
  EXPECT_EQ(Buckets(sizes),
            (BucketList{{0, 1}, {1, 3}, {2, 6}, {3, 9}, {kInf, 10}}));
  EXPECT_EQ(sizes.sample_count, 10u);
  EXPECT_EQ(sizes.sample_sum, 22.0);
}

TEST(PoolFamiliesTest, StrandFamiliesComeFromTheReading) {
  const PoolReading pools[] = {Reading({}, Snapshot())};
  const std::vector<MetricFamily> families = PoolFamilies(pools);
  ASSERT_EQ(families.size(), 17u);
  ASSERT_EQ(families[12].metric.size(), 1u);
  EXPECT_EQ(families[12].metric[0].gauge.value, 4.0);
  ASSERT_EQ(families[13].metric.size(), 1u);
  const ClientMetric::Histogram& wait = families[13].metric[0].histogram;
  EXPECT_EQ(Buckets(wait), (BucketList{{0.001, 1}, {0.01, 3}, {kInf, 4}}));
  EXPECT_EQ(wait.sample_count, 4u);
  EXPECT_EQ(wait.sample_sum, 0.5);
  ASSERT_EQ(families[14].metric.size(), 1u);
  const ClientMetric::Histogram& run = families[14].metric[0].histogram;
  EXPECT_EQ(Buckets(run), (BucketList{{0.001, 6}, {kInf, 6}}));
  EXPECT_EQ(run.sample_count, 6u);
  EXPECT_EQ(run.sample_sum, 0.003);
  ASSERT_EQ(families[15].metric.size(), 1u);
  EXPECT_DOUBLE_EQ(families[15].metric[0].gauge.value, 0.007);
  // One series per limit, labelled with its name.
  ASSERT_EQ(families[16].metric.size(), 3u);
  std::vector<std::pair<std::string, double>> limits;
  for (const ClientMetric& metric : families[16].metric) {
    ASSERT_EQ(metric.label.size(), 1u);
    EXPECT_EQ(metric.label[0].name, "limit");
    limits.emplace_back(metric.label[0].value, metric.gauge.value);
  }
  EXPECT_THAT(limits, ElementsAre(Pair("max_jams", 100.0),
                                  Pair("max_total_users", 200.0),
                                  Pair("max_sessions", 5.0)));
}

TEST(PoolFamiliesTest, UnreadCollectionLeavesOnlyTheStrandFamilies) {
  const PoolReading pools[] = {Reading({}, std::nullopt)};
  const std::vector<MetricFamily> families = PoolFamilies(pools);
  ASSERT_THAT(Names(families), ElementsAreArray(kStrandFamilies));
  EXPECT_EQ(families[0].metric[0].gauge.value, 4.0);
  EXPECT_EQ(families[1].metric[0].histogram.sample_count, 4u);
  EXPECT_EQ(families[2].metric[0].histogram.sample_count, 6u);
}

TEST(PoolFamiliesTest, TwoPoolsGiveOneLabelledSeriesEachPerFamily) {
  CollectionSnapshot b = Snapshot();
  b.max_users = 1;
  b.jam_count = 3;
  b.user_count = 4;
  b.full_jam_count = 2;
  b.jams_by_members = {1, 1, 1};  // One empty, one full, one with 3 members.
  PoolReading pool_b = Reading({{"pool", "b"}}, b);
  pool_b.strand_queue_depth = 9;
  const PoolReading pools[] = {Reading({{"pool", "a"}}, Snapshot()), pool_b};
  const std::vector<MetricFamily> families = PoolFamilies(pools);
  ASSERT_EQ(families.size(), 17u);
  for (const MetricFamily& family : families) {
    // The limits have three series a pool (below).
    if (family.name == "jam_balancer_limit") continue;
    ASSERT_EQ(family.metric.size(), 2u) << family.name;
    EXPECT_EQ(family.metric[0].label,
              (std::vector<ClientMetric::Label>{{"pool", "a"}}))
        << family.name;
    EXPECT_EQ(family.metric[1].label,
              (std::vector<ClientMetric::Label>{{"pool", "b"}}))
        << family.name;
  }
  EXPECT_EQ(families[0].metric[0].gauge.value, 10.0);  // jams
  EXPECT_EQ(families[0].metric[1].gauge.value, 3.0);
  EXPECT_EQ(families[3].metric[0].gauge.value, 1.0);  // overfilled
  EXPECT_EQ(families[3].metric[1].gauge.value, 1.0);
  EXPECT_EQ(families[5].metric[0].gauge.value, 3.0);  // max_users
  EXPECT_EQ(families[5].metric[1].gauge.value, 1.0);
  // Each pool's jam sizes go up to its own max_users.
  EXPECT_EQ(families[11].metric[0].histogram.bucket.size(), 5u);
  EXPECT_EQ(Buckets(families[11].metric[1].histogram),
            (BucketList{{0, 1}, {1, 2}, {kInf, 3}}));
  EXPECT_EQ(families[11].metric[1].histogram.sample_sum, 4.0);
  ASSERT_EQ(families[16].metric.size(), 6u);
  EXPECT_EQ(
      families[16].metric[3].label,
      (std::vector<ClientMetric::Label>{{"pool", "b"}, {"limit", "max_jams"}}));
  EXPECT_EQ(families[12].metric[0].gauge.value, 4.0);  // queue depth
  EXPECT_EQ(families[12].metric[1].gauge.value, 9.0);
}

TEST(PoolFamiliesTest, PoolWithoutCollectionIsLeftOutOfCollectionFamilies) {
  const PoolReading pools[] = {Reading({{"pool", "a"}}, std::nullopt),
                               Reading({{"pool", "b"}}, Snapshot())};
  const std::vector<MetricFamily> families = PoolFamilies(pools);
  ASSERT_EQ(families.size(), 17u);
  for (size_t i = 0; i < families.size(); ++i) {
    const std::vector<ClientMetric>& series = families[i].metric;
    if (i < 12) {
      ASSERT_EQ(series.size(), 1u) << families[i].name;
      EXPECT_EQ(series[0].label[0].value, "b") << families[i].name;
    } else {
      // The limits have three series a pool.
      ASSERT_EQ(series.size(), i == 16 ? 6u : 2u) << families[i].name;
      EXPECT_EQ(series[0].label[0].value, "a") << families[i].name;
    }
  }
}

TEST(PoolFamiliesTest, SessionFamiliesComeFromTheReading) {
  PoolReading pool = Reading({}, Snapshot());
  pool.sessions = PoolReading::Sessions{3, 5, 70, 2};
  const PoolReading pools[] = {pool};
  const std::vector<MetricFamily> families = PoolFamilies(pools);
  const auto value = [&](const std::string& name) {
    for (const MetricFamily& family : families) {
      if (family.name == name) {
        EXPECT_EQ(family.metric.size(), 1u) << name;
        return family.type == MetricType::Counter
                   ? family.metric[0].counter.value
                   : family.metric[0].gauge.value;
      }
    }
    ADD_FAILURE() << "no family " << name;
    return -1.0;
  };
  EXPECT_EQ(value("jam_balancer_sessions"), 3);
  EXPECT_EQ(value("jam_balancer_sessions_expired_total"), 5);
  EXPECT_EQ(value("jam_balancer_users_removed_by_expiry_total"), 70);
  EXPECT_EQ(value("jam_balancer_reservations_removed_by_expiry_total"), 2);
}

}  // namespace
}  // namespace jambalancer
