#ifndef JAM_BALANCER_SERVER_METRICS_METRICS_COLLECTOR_H_
#define JAM_BALANCER_SERVER_METRICS_METRICS_COLLECTOR_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
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
  // What a replica shows of the pools' elections at scrape time (labelled
  // with their pools); empty when the server runs alone (then no
  // leadership families are shown). Called on the scraping thread.
  using LeadershipReader = std::function<std::vector<LeadershipReading>()>;

  // A pool and its name, shown as the label pool="<name>".
  struct NamedPool {
    std::string name;
    JamPool* pool;
  };

  // The pools and `rpc_metrics` must outlive the collector's last Collect.
  MetricsCollector(std::vector<NamedPool> pools, const RpcMetrics* rpc_metrics,
                   BuildInfo build_info,
                   LeadershipReader read_leadership = nullptr);

  std::vector<prometheus::MetricFamily> Collect() const override;

  // What each pool shows now, labelled with its name; waits until
  // `deadline` for their strands (all read at once).
  static std::vector<PoolReading> ReadPools(absl::Span<const NamedPool> pools,
                                            absl::Time deadline);

 private:
  const std::vector<NamedPool> pools_;
  const RpcMetrics* const rpc_metrics_;
  const BuildInfo build_info_;
  const LeadershipReader read_leadership_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_METRICS_METRICS_COLLECTOR_H_
