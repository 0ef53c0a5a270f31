#include "server/metrics_collector.h"

#include <google/protobuf/stubs/common.h>
#include <grpcpp/grpcpp.h>

#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "server/metric_families.h"
#include "server/process_metrics.h"

#ifndef JAM_BALANCER_VERSION
#define JAM_BALANCER_VERSION "unknown"
#endif

namespace jambalancer {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// How long a scrape waits for the strand before leaving the collection's
// metrics out.
constexpr absl::Duration kStrandReadTimeout = absl::Seconds(2);

MetricFamily Histogram(std::string name, std::string help,
                       const LatencyHistogram::Snapshot& snapshot) {
  MetricFamily family{
      std::move(name), std::move(help), MetricType::Histogram, {}};
  FillHistogram(snapshot, &family.metric.emplace_back());
  return family;
}

std::string ProtobufVersion() {
  const int v = GOOGLE_PROTOBUF_VERSION;  // e.g. 3021012
  return absl::StrCat(v / 1000000, ".", v / 1000 % 1000, ".", v % 1000);
}

void AppendCollectionMetrics(const CollectionCounters& counters,
                             uint32_t max_users,
                             std::vector<MetricFamily>& families) {
  const CollectionStats& stats = counters.stats;
  families.push_back(SingleValueFamily(
      "jam_balancer_jams", "Jams with at least one member or reserved seat.",
      MetricType::Gauge, stats.jam_count));
  families.push_back(SingleValueFamily("jam_balancer_users",
                                       "Members of all jams.",
                                       MetricType::Gauge, stats.user_count));
  families.push_back(SingleValueFamily(
      "jam_balancer_full_jams", "Jams with max_users members or more.",
      MetricType::Gauge, stats.full_jam_count));
  families.push_back(SingleValueFamily(
      "jam_balancer_overfilled_jams",
      "Jams with more than max_users members (stored "
      "by Refresh, which is presence truth).",
      MetricType::Gauge, counters.jams_by_members[max_users + 1]));
  families.push_back(
      SingleValueFamily("jam_balancer_reservations", "Live seat reservations.",
                        MetricType::Gauge, stats.reservation_count));
  families.push_back(SingleValueFamily("jam_balancer_max_users",
                                       "Capacity of every jam (--max_users).",
                                       MetricType::Gauge, max_users));
  families.push_back(
      SingleValueFamily("jam_balancer_jams_created_total",
                        "Jams created by AddUser, Refresh or a recorded "
                        "fresh jam.",
                        MetricType::Counter, counters.jams_created));
  families.push_back(
      SingleValueFamily("jam_balancer_users_turned_away_total",
                        "AddUser calls answered added=false because the "
                        "jam was full.",
                        MetricType::Counter, counters.users_turned_away));
  families.push_back(
      SingleValueFamily("jam_balancer_overfilled_refreshes_total",
                        "Refresh calls that stored more than max_users "
                        "members.",
                        MetricType::Counter, counters.overfilled_refreshes));
  families.push_back(
      SingleValueFamily("jam_balancer_reservations_made_total",
                        "Seats reserved by CurrentJam with a user id.",
                        MetricType::Counter, counters.reservations_made));
  families.push_back(
      SingleValueFamily("jam_balancer_reservations_expired_total",
                        "Reservations that lapsed without the user "
                        "joining.",
                        MetricType::Counter, counters.reservations_expired));

  // Jam sizes: buckets le=0..max_users; overfilled jams only in +Inf.
  MetricFamily sizes{"jam_balancer_jam_members",
                     "Distribution of jams by number of members.",
                     MetricType::Histogram,
                     {}};
  ClientMetric& histogram = sizes.metric.emplace_back();
  uint64_t cumulative = 0;
  for (uint32_t n = 0; n <= max_users; ++n) {
    cumulative += counters.jams_by_members[n];
    histogram.histogram.bucket.push_back({cumulative, static_cast<double>(n)});
  }
  histogram.histogram.bucket.push_back(
      {stats.jam_count, std::numeric_limits<double>::infinity()});
  histogram.histogram.sample_count = stats.jam_count;
  histogram.histogram.sample_sum = static_cast<double>(stats.user_count);
  families.push_back(std::move(sizes));
}

}  // namespace

MetricsCollector::MetricsCollector(JamBalancer* balancer,
                                   const RpcMetrics* rpc_metrics)
    : balancer_(balancer), rpc_metrics_(rpc_metrics) {}

std::optional<CollectionCounters> MetricsCollector::ReadCollection() const {
  // Shared with the task: it may run after a timed-out scrape returned.
  struct Read {
    CollectionCounters counters;
    absl::Notification done;
  };
  auto read = std::make_shared<Read>();
  const bool posted =
      balancer_->Post([read](JamCollection& collection, absl::Time) {
        read->counters = collection.Counters();
        read->done.Notify();
      });
  if (!posted ||
      !read->done.WaitForNotificationWithTimeout(kStrandReadTimeout)) {
    return std::nullopt;
  }
  return read->counters;
}

std::vector<MetricFamily> MetricsCollector::Collect() const {
  std::vector<MetricFamily> families = rpc_metrics_->Collect();
  if (std::optional<CollectionCounters> counters = ReadCollection()) {
    // jams_by_members spans 0..max_users, then the overfilled.
    const auto max_users =
        static_cast<uint32_t>(counters->jams_by_members.size() - 2);
    AppendCollectionMetrics(*counters, max_users, families);
  }
  families.push_back(SingleValueFamily(
      "jam_balancer_strand_queue_depth", "Operations waiting for the strand.",
      MetricType::Gauge, static_cast<double>(balancer_->QueueDepth())));
  families.push_back(
      Histogram("jam_balancer_strand_wait_seconds",
                "Time operations waited in the strand's queue before running.",
                balancer_->strand_wait_time().Read()));
  families.push_back(Histogram("jam_balancer_strand_run_seconds",
                               "Time operations ran on the strand.",
                               balancer_->strand_run_time().Read()));

  MetricFamily build{"jam_balancer_build_info",
                     "Versions of jam-balancer and its libraries; always 1.",
                     MetricType::Gauge,
                     {}};
  ClientMetric& info = build.metric.emplace_back();
  info.label = {{"grpc_version", grpc::Version()},
                {"protobuf_version", ProtobufVersion()},
                {"version", JAM_BALANCER_VERSION}};
  info.gauge.value = 1;
  families.push_back(std::move(build));

  for (MetricFamily& family : CollectProcessMetrics()) {
    families.push_back(std::move(family));
  }
  return families;
}

}  // namespace jambalancer
