#include "server/metrics/rpc_metrics.h"

#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using ::testing::DoubleEq;
using ::testing::ElementsAre;

constexpr char kService[] = "jambalancer.v1.JamBalancer";
enum Method : size_t { kCurrentJam, kRefresh, kAddUser };

RpcMetrics MakeMetrics() {
  return RpcMetrics(kService, {"CurrentJam", "Refresh", "AddUser"});
}

std::string LabelValue(const ClientMetric& metric, absl::string_view name) {
  for (const ClientMetric::Label& label : metric.label) {
    if (label.name == name) return label.value;
  }
  return "<none>";
}

// Each series of `family` as "method=value", or "method code=value" when it
// has a grpc_code label, in the order Collect lists them.
std::vector<std::string> Series(const MetricFamily& family) {
  std::vector<std::string> series;
  for (const ClientMetric& metric : family.metric) {
    std::string code = LabelValue(metric, "grpc_code");
    code = code == "<none>" ? "" : absl::StrCat(" ", code);
    series.push_back(absl::StrCat(LabelValue(metric, "grpc_method"), code, "=",
                                  metric.counter.value));
  }
  return series;
}

TEST(RpcMetricsTest, CollectGivesTheThreeMiddlewareFamilies) {
  const std::vector<MetricFamily> families = MakeMetrics().Collect();
  ASSERT_EQ(families.size(), 3u);
  EXPECT_EQ(families[0].name, "grpc_server_started_total");
  EXPECT_EQ(families[0].type, MetricType::Counter);
  EXPECT_EQ(families[1].name, "grpc_server_handled_total");
  EXPECT_EQ(families[1].type, MetricType::Counter);
  EXPECT_EQ(families[2].name, "grpc_server_handling_seconds");
  EXPECT_EQ(families[2].type, MetricType::Histogram);
}

TEST(RpcMetricsTest, FreshMetricsHaveZeroStartedAndOnlyOkHandled) {
  const std::vector<MetricFamily> families = MakeMetrics().Collect();
  EXPECT_THAT(Series(families[0]),
              ElementsAre("CurrentJam=0", "Refresh=0", "AddUser=0"));
  EXPECT_THAT(Series(families[1]),
              ElementsAre("CurrentJam OK=0", "Refresh OK=0", "AddUser OK=0"));
  ASSERT_EQ(families[2].metric.size(), 3u);
  for (const ClientMetric& metric : families[2].metric) {
    EXPECT_EQ(metric.histogram.sample_count, 0u);
  }
}

TEST(RpcMetricsTest, StartedCountsPerMethod) {
  RpcMetrics metrics = MakeMetrics();
  for (int i = 0; i < 3; ++i) metrics.Started(kCurrentJam);
  metrics.Started(kAddUser);
  EXPECT_THAT(Series(metrics.Collect()[0]),
              ElementsAre("CurrentJam=3", "Refresh=0", "AddUser=1"));
}

TEST(RpcMetricsTest, NonOkCodesAppearOnceSeenInCodeOrder) {
  RpcMetrics metrics = MakeMetrics();
  metrics.Handled(kRefresh, absl::StatusCode::kUnavailable,
                  absl::Milliseconds(1));
  metrics.Handled(kRefresh, absl::StatusCode::kNotFound, absl::Milliseconds(1));
  metrics.Handled(kRefresh, absl::StatusCode::kNotFound, absl::Milliseconds(1));
  metrics.Handled(kRefresh, absl::StatusCode::kOk, absl::Milliseconds(1));
  metrics.Handled(kCurrentJam, absl::StatusCode::kInvalidArgument,
                  absl::Milliseconds(1));
  EXPECT_THAT(Series(metrics.Collect()[1]),
              ElementsAre("CurrentJam OK=0", "CurrentJam InvalidArgument=1",
                          "Refresh OK=1", "Refresh NotFound=2",
                          "Refresh Unavailable=1", "AddUser OK=0"));
}

TEST(RpcMetricsTest, CodesOutsideGrpcsCountAsUnknown) {
  RpcMetrics metrics = MakeMetrics();
  metrics.Handled(kAddUser, static_cast<absl::StatusCode>(17),
                  absl::Milliseconds(1));
  metrics.Handled(kAddUser, static_cast<absl::StatusCode>(-1),
                  absl::Milliseconds(1));
  metrics.Handled(kAddUser, absl::StatusCode::kUnknown, absl::Milliseconds(1));
  EXPECT_THAT(Series(metrics.Collect()[1]),
              ElementsAre("CurrentJam OK=0", "Refresh OK=0", "AddUser OK=0",
                          "AddUser Unknown=3"));
}

TEST(RpcMetricsTest, LabelsAreMethodServiceAndUnaryType) {
  RpcMetrics metrics = MakeMetrics();
  metrics.Handled(kRefresh, absl::StatusCode::kAborted, absl::Seconds(1));
  const std::vector<MetricFamily> families = metrics.Collect();
  const std::vector<ClientMetric::Label> refresh = {{"grpc_method", "Refresh"},
                                                    {"grpc_service", kService},
                                                    {"grpc_type", "unary"}};
  EXPECT_EQ(families[0].metric[kRefresh].label, refresh);
  EXPECT_EQ(families[2].metric[kRefresh].label, refresh);
  // Handled: CurrentJam OK, Refresh OK, Refresh Aborted, AddUser OK.
  ASSERT_EQ(families[1].metric.size(), 4u);
  EXPECT_EQ(families[1].metric[2].label,
            (std::vector<ClientMetric::Label>{{"grpc_code", "Aborted"},
                                              {"grpc_method", "Refresh"},
                                              {"grpc_service", kService},
                                              {"grpc_type", "unary"}}));
}

TEST(RpcMetricsTest, LatencyHistogramCountsHandledCalls) {
  RpcMetrics metrics = MakeMetrics();
  metrics.Started(kAddUser);
  metrics.Handled(kAddUser, absl::StatusCode::kOk, absl::Milliseconds(3));
  metrics.Handled(kAddUser, absl::StatusCode::kInternal, absl::Seconds(2));
  const std::vector<MetricFamily> families = metrics.Collect();
  const ClientMetric::Histogram& add_user =
      families[2].metric[kAddUser].histogram;
  EXPECT_EQ(add_user.sample_count, 2u);
  EXPECT_THAT(add_user.sample_sum, DoubleEq(2.003));
  // The default bounds and +Inf; 3 ms falls in le=0.005, 2 s only in +Inf.
  ASSERT_EQ(add_user.bucket.size(),
            LatencyHistogram::DefaultBounds().size() + 1);
  EXPECT_EQ(add_user.bucket[7].cumulative_count, 0u);  // le=0.0025
  EXPECT_THAT(add_user.bucket[8].upper_bound, DoubleEq(0.005));
  EXPECT_EQ(add_user.bucket[8].cumulative_count, 1u);
  EXPECT_EQ(add_user.bucket[15].cumulative_count, 1u);  // le=1
  EXPECT_EQ(add_user.bucket[16].upper_bound,
            std::numeric_limits<double>::infinity());
  EXPECT_EQ(add_user.bucket[16].cumulative_count, 2u);
  EXPECT_EQ(families[2].metric[kCurrentJam].histogram.sample_count, 0u);
  EXPECT_EQ(families[2].metric[kRefresh].histogram.sample_count, 0u);
}

TEST(RpcMetricsTest, ConcurrentUpdatesLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kCalls = 5000;
  RpcMetrics metrics = MakeMetrics();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics] {
      for (int i = 0; i < kCalls; ++i) {
        metrics.Started(kCurrentJam);
        metrics.Handled(kCurrentJam, absl::StatusCode::kOk,
                        absl::Microseconds(1));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const std::vector<MetricFamily> families = metrics.Collect();
  EXPECT_THAT(Series(families[0]),
              ElementsAre("CurrentJam=20000", "Refresh=0", "AddUser=0"));
  EXPECT_THAT(Series(families[1]), ElementsAre("CurrentJam OK=20000",
                                               "Refresh OK=0", "AddUser OK=0"));
  EXPECT_EQ(families[2].metric[kCurrentJam].histogram.sample_count, 20000u);
}

TEST(RpcMetricsCodeNameTest, NamesEveryCodeAsGoDoes) {
  using Code = absl::StatusCode;
  const std::pair<Code, absl::string_view> kNames[] = {
      {Code::kOk, "OK"},
      {Code::kCancelled, "Canceled"},
      {Code::kUnknown, "Unknown"},
      {Code::kInvalidArgument, "InvalidArgument"},
      {Code::kDeadlineExceeded, "DeadlineExceeded"},
      {Code::kNotFound, "NotFound"},
      {Code::kAlreadyExists, "AlreadyExists"},
      {Code::kPermissionDenied, "PermissionDenied"},
      {Code::kResourceExhausted, "ResourceExhausted"},
      {Code::kFailedPrecondition, "FailedPrecondition"},
      {Code::kAborted, "Aborted"},
      {Code::kOutOfRange, "OutOfRange"},
      {Code::kUnimplemented, "Unimplemented"},
      {Code::kInternal, "Internal"},
      {Code::kUnavailable, "Unavailable"},
      {Code::kDataLoss, "DataLoss"},
      {Code::kUnauthenticated, "Unauthenticated"}};
  for (const auto& [code, name] : kNames) {
    EXPECT_EQ(RpcMetrics::CodeName(code), name) << static_cast<int>(code);
  }
}

TEST(RpcMetricsCodeNameTest, NumbersOutsideGrpcsCodesAreUnknown) {
  for (int code : {17, 20, 1000, -1, std::numeric_limits<int>::min(),
                   std::numeric_limits<int>::max()}) {
    EXPECT_EQ(RpcMetrics::CodeName(static_cast<absl::StatusCode>(code)),
              "Unknown")
        << "code " << code;
  }
}

}  // namespace
}  // namespace jambalancer
