#include "server/metrics/metrics_collector.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/pool_reader.h"

namespace jambalancer {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using test::ReadOnStrand;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Ge;
using ::testing::IsSupersetOf;
using ::testing::Le;
using ::testing::Not;

const BuildInfo kBuildInfo{"1.4.2", "1.62.1", "25.3.0"};

// Refreshes `jam_id` with members "<jam_id>0" .. "<jam_id><count - 1>" on
// the pool's strand; returns the member count.
uint32_t Fill(JamPool& pool, const std::string& jam_id, int count) {
  return ReadOnStrand<uint32_t>(
      pool, [jam_id, count](PoolState& state, absl::Time now) {
        std::vector<std::string> names;
        for (int i = 0; i < count; ++i)
          names.push_back(absl::StrCat(jam_id, i));
        std::vector<absl::string_view> views(names.begin(), names.end());
        return state.jams.Refresh(jam_id, views, now);
      });
}

std::vector<std::string> Names(const std::vector<MetricFamily>& families) {
  std::vector<std::string> names;
  for (const MetricFamily& family : families) names.push_back(family.name);
  return names;
}

// The only series of family `name`; fails the test if there is not exactly
// one such family with one series.
ClientMetric OnlySeries(const std::vector<MetricFamily>& families,
                        absl::string_view name) {
  for (const MetricFamily& family : families) {
    if (family.name != name) continue;
    EXPECT_EQ(family.metric.size(), 1u) << name;
    if (!family.metric.empty()) return family.metric[0];
  }
  ADD_FAILURE() << "no series of " << name;
  return {};
}

class MetricsCollectorTest : public ::testing::Test {
 protected:
  JamPool pool_{7, /*run_inline=*/false};
  RpcMetrics rpc_metrics_{"jambalancer.v1.JamBalancer",
                          {"CurrentJam", "Refresh"}};
  MetricsCollector collector_{{{"default", &pool_}}, &rpc_metrics_, kBuildInfo};
};

TEST_F(MetricsCollectorTest, CollectsEveryPartOfMetrics) {
  const std::vector<std::string> names = Names(collector_.Collect());
  EXPECT_THAT(names,
              IsSupersetOf(
                  {"grpc_server_started_total", "grpc_server_handled_total",
                   "grpc_server_handling_seconds", "jam_balancer_jams",
                   "jam_balancer_users", "jam_balancer_max_users",
                   "jam_balancer_jam_members", "jam_balancer_sessions",
                   "jam_balancer_sessions_expired_total",
                   "jam_balancer_strand_queue_depth",
                   "jam_balancer_strand_wait_seconds",
                   "jam_balancer_strand_run_seconds", "jam_balancer_build_info",
                   "process_cpu_seconds_total", "process_resident_memory_bytes",
                   "process_open_fds", "process_start_time_seconds"}));
  // 3 RPC, 12 collection, 4 session, 4 strand, the limits, build info and 6
  // process families.
  EXPECT_EQ(names.size(), 31u);
}

TEST_F(MetricsCollectorTest, SessionFamiliesShowThePoolsSessions) {
  ReadOnStrand<bool>(pool_, [](PoolState& state, absl::Time now) {
    state.sessions.Start("fe-1", absl::Seconds(10), now);
    state.sessions.Start("fe-2", absl::Seconds(10), now);
    state.sessions_expired = 3;
    state.members_removed_by_expiry = 40;
    state.reservations_removed_by_expiry = 2;
    return true;
  });
  const std::vector<MetricFamily> families = collector_.Collect();
  EXPECT_EQ(OnlySeries(families, "jam_balancer_sessions").gauge.value, 2.0);
  EXPECT_EQ(
      OnlySeries(families, "jam_balancer_sessions_expired_total").counter.value,
      3.0);
  EXPECT_EQ(OnlySeries(families, "jam_balancer_users_removed_by_expiry_total")
                .counter.value,
            40.0);
  EXPECT_EQ(
      OnlySeries(families, "jam_balancer_reservations_removed_by_expiry_total")
          .counter.value,
      2.0);
}

TEST_F(MetricsCollectorTest, CollectionFamiliesShowThePoolNow) {
  EXPECT_EQ(Fill(pool_, "a", 3), 3u);
  EXPECT_EQ(Fill(pool_, "b", 7), 7u);
  std::vector<MetricFamily> families = collector_.Collect();
  EXPECT_EQ(OnlySeries(families, "jam_balancer_jams").gauge.value, 2.0);
  EXPECT_EQ(OnlySeries(families, "jam_balancer_users").gauge.value, 10.0);
  EXPECT_EQ(OnlySeries(families, "jam_balancer_full_jams").gauge.value, 1.0);
  EXPECT_EQ(OnlySeries(families, "jam_balancer_max_users").gauge.value, 7.0);
  EXPECT_EQ(
      OnlySeries(families, "jam_balancer_jams_created_total").counter.value,
      2.0);
  const ClientMetric::Histogram sizes =
      OnlySeries(families, "jam_balancer_jam_members").histogram;
  ASSERT_EQ(sizes.bucket.size(), 9u);  // le=0..7 and +Inf.
  EXPECT_EQ(sizes.bucket[2].cumulative_count, 0u);
  EXPECT_EQ(sizes.bucket[3].cumulative_count, 1u);
  EXPECT_EQ(sizes.bucket[7].cumulative_count, 2u);
  EXPECT_EQ(sizes.sample_sum, 10.0);

  // A second scrape reads the pool again.
  EXPECT_EQ(Fill(pool_, "b", 0), 0u);
  families = collector_.Collect();
  EXPECT_EQ(OnlySeries(families, "jam_balancer_jams").gauge.value, 1.0);
  EXPECT_EQ(OnlySeries(families, "jam_balancer_users").gauge.value, 3.0);
  EXPECT_EQ(OnlySeries(families, "jam_balancer_full_jams").gauge.value, 0.0);
}

TEST_F(MetricsCollectorTest, StrandFamiliesCountTheOperationsRun) {
  Fill(pool_, "a", 1);
  Fill(pool_, "b", 1);
  const std::vector<MetricFamily> families = collector_.Collect();
  EXPECT_EQ(OnlySeries(families, "jam_balancer_strand_queue_depth").gauge.value,
            0.0);
  // The two fills; the scrape's own read may or may not be counted yet.
  for (absl::string_view name : {"jam_balancer_strand_wait_seconds",
                                 "jam_balancer_strand_run_seconds"}) {
    EXPECT_THAT(OnlySeries(families, name).histogram.sample_count,
                AllOf(Ge(2u), Le(3u)))
        << name;
  }
}

TEST_F(MetricsCollectorTest, RpcFamiliesComeFromRpcMetrics) {
  rpc_metrics_.Started(1);
  rpc_metrics_.Handled(1, absl::StatusCode::kNotFound, absl::Milliseconds(2));
  const std::vector<MetricFamily> families = collector_.Collect();
  ASSERT_GE(families.size(), 3u);
  EXPECT_EQ(families[0].name, "grpc_server_started_total");
  ASSERT_EQ(families[0].metric.size(), 2u);
  EXPECT_EQ(families[0].metric[0].counter.value, 0.0);
  EXPECT_EQ(families[0].metric[1].counter.value, 1.0);
  EXPECT_EQ(families[1].name, "grpc_server_handled_total");
  // CurrentJam OK, Refresh OK, Refresh NotFound.
  ASSERT_EQ(families[1].metric.size(), 3u);
  EXPECT_EQ(families[1].metric[2].label[0].value, "NotFound");
  EXPECT_EQ(families[1].metric[2].counter.value, 1.0);
}

TEST_F(MetricsCollectorTest, BuildInfoHasTheThreeVersions) {
  const ClientMetric info =
      OnlySeries(collector_.Collect(), "jam_balancer_build_info");
  EXPECT_EQ(info.label,
            (std::vector<ClientMetric::Label>{{"grpc_version", "1.62.1"},
                                              {"protobuf_version", "25.3.0"},
                                              {"version", "1.4.2"}}));
  EXPECT_EQ(info.gauge.value, 1.0);
}

TEST_F(MetricsCollectorTest, ShutDownPoolLeavesOutOnlyTheCollection) {
  Fill(pool_, "a", 2);
  pool_.Shutdown();
  const std::vector<std::string> names = Names(collector_.Collect());
  EXPECT_THAT(names, Not(Contains("jam_balancer_jams")));
  EXPECT_THAT(names, Not(Contains("jam_balancer_jam_members")));
  EXPECT_THAT(names,
              IsSupersetOf({"grpc_server_started_total",
                            "jam_balancer_strand_run_seconds",
                            "jam_balancer_build_info", "process_open_fds"}));
}

TEST(MetricsCollectorReadPoolTest, ReadsTheCollectionAndTheStrand) {
  JamPool pool(7, /*run_inline=*/false);
  Fill(pool, "a", 4);
  const std::vector<PoolReading> readings =
      MetricsCollector::ReadPools({{"rock", &pool}}, absl::InfiniteFuture());
  ASSERT_EQ(readings.size(), 1u);
  const PoolReading& reading = readings[0];
  ASSERT_EQ(reading.labels.size(), 1u);
  EXPECT_EQ(reading.labels[0].name, "pool");
  EXPECT_EQ(reading.labels[0].value, "rock");
  ASSERT_TRUE(reading.collection.has_value());
  EXPECT_EQ(reading.collection->max_users, 7u);
  EXPECT_EQ(reading.collection->jam_count, 1u);
  EXPECT_EQ(reading.collection->user_count, 4u);
  EXPECT_THAT(reading.collection->jams_by_members,
              ElementsAre(0u, 0u, 0u, 0u, 1u, 0u, 0u, 0u, 0u));
  EXPECT_EQ(reading.strand_queue_depth, 0u);
  EXPECT_THAT(reading.strand_run.count, AllOf(Ge(1u), Le(2u)));
}

TEST(MetricsCollectorReadPoolTest, EachPoolIsReadOnItsOwnStrand) {
  JamPool small(2, /*run_inline=*/false);
  JamPool large(9, /*run_inline=*/false);
  Fill(small, "a", 2);
  Fill(large, "b", 5);
  const std::vector<PoolReading> readings = MetricsCollector::ReadPools(
      {{"duo", &small}, {"big", &large}}, absl::InfiniteFuture());
  ASSERT_EQ(readings.size(), 2u);
  EXPECT_EQ(readings[0].labels[0].value, "duo");
  EXPECT_EQ(readings[0].collection->max_users, 2u);
  EXPECT_EQ(readings[0].collection->user_count, 2u);
  EXPECT_EQ(readings[1].labels[0].value, "big");
  EXPECT_EQ(readings[1].collection->max_users, 9u);
  EXPECT_EQ(readings[1].collection->user_count, 5u);
}

TEST(MetricsCollectorReadPoolTest, ShutDownPoolGivesNoCollectionAtOnce) {
  JamPool pool(7, /*run_inline=*/false);
  Fill(pool, "a", 4);
  Fill(pool, "b", 5);
  pool.Shutdown();  // Joins the strand: its timings are final.
  // No timeout: only a refused post lets ReadPool return (a hang fails the
  // test by the ctest timeout).
  const PoolReading reading = MetricsCollector::ReadPools(
      {{"default", &pool}}, absl::InfiniteFuture())[0];
  EXPECT_EQ(reading.collection, std::nullopt);
  EXPECT_EQ(reading.strand_queue_depth, 0u);
  EXPECT_EQ(reading.strand_wait.count, 2u);
  EXPECT_EQ(reading.strand_run.count, 2u);
  EXPECT_EQ(reading.strand_run.cumulative_counts.size(),
            LatencyHistogram::DefaultBounds().size() + 1);
}

}  // namespace
}  // namespace jambalancer
