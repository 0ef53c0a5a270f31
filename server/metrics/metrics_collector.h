#ifndef JAM_BALANCER_SERVER_METRICS_METRICS_COLLECTOR_H_
#define JAM_BALANCER_SERVER_METRICS_METRICS_COLLECTOR_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/metrics/leadership_metrics.h"
#include "server/metrics/pool_metrics.h"
#include "server/metrics/rpc_metrics.h"
#include "server/runtime/jam_pool.h"

namespace jambalancer {

// Versions shown by jam_balancer_build_info.
struct BuildInfo {
  std::string version;
  std::string grpc_version;
  std::string protobuf_version;
};

// Everything /metrics shows, gathered at scrape time: RPC metrics, each
// pool's collection (read by a small task on the pool's strand, so the
// collection stays strand-only) and strand, build info and process metrics.
// Nothing here is updated per call except through RpcMetrics' atomics.
//
// Thread-safe; Collect runs on the metrics HTTP server's threads.
class MetricsCollector final : public prometheus::Collectable {
 public:
  // What a replica shows of the election at scrape time; nullopt when the
  // server runs alone (then no leadership families are shown). Called on
  // the scraping thread.
  using LeadershipReader = std::function<std::optional<LeadershipReading>()>;

  // `pool` and `rpc_metrics` must outlive the collector's last Collect.
  MetricsCollector(JamPool* pool, const RpcMetrics* rpc_metrics,
                   BuildInfo build_info,
                   LeadershipReader read_leadership = nullptr);

  std::vector<prometheus::MetricFamily> Collect() const override;

  // What `pool` shows now; waits up to `timeout` for its strand.
  static PoolReading ReadPool(JamPool& pool, absl::Duration timeout);

 private:
  JamPool* const pool_;
  const RpcMetrics* const rpc_metrics_;
  const BuildInfo build_info_;
  const LeadershipReader read_leadership_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_METRICS_METRICS_COLLECTOR_H_
