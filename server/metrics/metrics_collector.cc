#include "server/metrics/metrics_collector.h"

#include <memory>
#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/metrics/process_metrics.h"

namespace jambalancer {
namespace {

using prometheus::MetricFamily;

// How long a scrape waits for the strand before leaving the collection's
// metrics out.
constexpr absl::Duration kStrandReadTimeout = absl::Seconds(2);

MetricFamily BuildInfoFamily(const BuildInfo& build_info) {
  MetricFamily family{"jam_balancer_build_info",
                      "Versions of jam-balancer and its libraries; always 1.",
                      prometheus::MetricType::Gauge,
                      {}};
  prometheus::ClientMetric& info = family.metric.emplace_back();
  info.label = {{"grpc_version", build_info.grpc_version},
                {"protobuf_version", build_info.protobuf_version},
                {"version", build_info.version}};
  info.gauge.value = 1;
  return family;
}

}  // namespace

MetricsCollector::MetricsCollector(std::vector<NamedPool> pools,
                                   const RpcMetrics* rpc_metrics,
                                   BuildInfo build_info,
                                   LeadershipReader read_leadership)
    : pools_(std::move(pools)),
      rpc_metrics_(rpc_metrics),
      build_info_(std::move(build_info)),
      read_leadership_(std::move(read_leadership)) {}

std::vector<PoolReading> MetricsCollector::ReadPools(
    absl::Span<const NamedPool> pools, absl::Time deadline) {
  // Shared with the task: it may run after a timed-out scrape returned.
  struct Read {
    CollectionSnapshot snapshot;
    PoolReading::Sessions sessions;
    absl::Notification done;
  };
  std::vector<std::shared_ptr<Read>> reads;
  std::vector<bool> posted;
  for (const NamedPool& named : pools) {
    auto read = std::make_shared<Read>();
    posted.push_back(named.pool->Post([read](PoolState& state, absl::Time now) {
      read->snapshot = state.jams.Snapshot(now);
      read->sessions = {state.sessions.size(), state.sessions_expired,
                        state.members_removed_by_expiry,
                        state.reservations_removed_by_expiry};
      read->done.Notify();
    }));
    reads.push_back(std::move(read));
  }
  std::vector<PoolReading> readings;
  for (size_t i = 0; i < pools.size(); ++i) {
    JamPool& pool = *pools[i].pool;
    PoolReading& reading = readings.emplace_back();
    reading.labels = {{"pool", pools[i].name}};
    if (posted[i] && reads[i]->done.WaitForNotificationWithDeadline(deadline)) {
      reading.collection = reads[i]->snapshot;
      reading.sessions = reads[i]->sessions;
    }
    reading.limits = pool.limits();
    reading.strand_queue_depth = pool.QueueDepth();
    reading.strand_longest_step = pool.LongestStep();
    reading.strand_wait = pool.strand_wait_time().Read();
    reading.strand_run = pool.strand_run_time().Read();
  }
  return readings;
}

std::vector<MetricFamily> MetricsCollector::Collect() const {
  std::vector<MetricFamily> families = rpc_metrics_->Collect();
  const std::vector<PoolReading> pools =
      ReadPools(pools_, absl::Now() + kStrandReadTimeout);
  for (MetricFamily& family : PoolFamilies(pools)) {
    families.push_back(std::move(family));
  }
  if (read_leadership_ != nullptr) {
    const std::vector<LeadershipReading> elections = read_leadership_();
    if (!elections.empty()) {
      for (MetricFamily& family : LeadershipFamilies(elections)) {
        families.push_back(std::move(family));
      }
    }
  }
  families.push_back(BuildInfoFamily(build_info_));
  for (MetricFamily& family : CollectProcessMetrics()) {
    families.push_back(std::move(family));
  }
  return families;
}

}  // namespace jambalancer
