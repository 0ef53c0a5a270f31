#ifndef JAM_BALANCER_SERVER_METRICS_POOL_METRICS_H_
#define JAM_BALANCER_SERVER_METRICS_POOL_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"
#include "server/core/jam_collection.h"
#include "server/runtime/pool_state.h"
#include "server/util/latency_histogram.h"

namespace jambalancer {

// What one pool shows on /metrics, read at scrape time.
struct PoolReading {
  // Labels that tell this pool's series from other pools' (pool="<name>").
  std::vector<prometheus::ClientMetric::Label> labels;
  // The collection, read on the pool's strand; nullopt if the strand did
  // not answer in time (its families are then left out for this pool).
  std::optional<CollectionSnapshot> collection;
  // The front ends' sessions, read with the collection.
  struct Sessions {
    uint64_t live = 0;  // Sessions held (a lapsed one until it is expired).
    uint64_t expired = 0;
    uint64_t members_removed_by_expiry = 0;
    uint64_t reservations_removed_by_expiry = 0;
  };
  std::optional<Sessions> sessions;
  // The pool's limits (--max_jams, --max_total_users, --max_sessions).
  PoolLimits limits;
  size_t strand_queue_depth = 0;
  absl::Duration strand_longest_step;
  LatencyHistogram::Snapshot strand_wait;
  LatencyHistogram::Snapshot strand_run;
};

// The jam_balancer_* families of the pools: the collection's gauges,
// counters and jam-size histogram (max_users taken from each snapshot), the
// sessions, the limits, and the strand's queue depth and timings. One series
// per pool in each family. Pure: builds families from the readings.
std::vector<prometheus::MetricFamily> PoolFamilies(
    absl::Span<const PoolReading> pools);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_METRICS_POOL_METRICS_H_
