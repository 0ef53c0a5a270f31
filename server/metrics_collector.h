#ifndef JAM_BALANCER_SERVER_METRICS_COLLECTOR_H_
#define JAM_BALANCER_SERVER_METRICS_COLLECTOR_H_

#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/jam_balancer.h"
#include "server/jam_collection.h"
#include "server/rpc_metrics.h"

namespace jambalancer {

// Everything /metrics shows, gathered at scrape time: gRPC call metrics, the
// collection's gauges and counters (read by a small task on the strand, so
// the collection stays strand-only), the strand's queue and timings, process
// metrics and build info. Nothing here is updated per call except through
// RpcMetrics' atomics.
//
// Thread-safe; Collect runs on the metrics HTTP server's threads.
class MetricsCollector final : public prometheus::Collectable {
 public:
  // `balancer` and `rpc_metrics` must outlive the collector's last Collect.
  MetricsCollector(JamBalancer* balancer, const RpcMetrics* rpc_metrics);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  // The collection's counters, or nullopt if the strand did not answer in
  // time (or is shut down).
  std::optional<CollectionCounters> ReadCollection() const;

  JamBalancer* const balancer_;
  const RpcMetrics* const rpc_metrics_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_METRICS_COLLECTOR_H_
