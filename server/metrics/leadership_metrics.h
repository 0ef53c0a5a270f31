#ifndef JAM_BALANCER_SERVER_METRICS_LEADERSHIP_METRICS_H_
#define JAM_BALANCER_SERVER_METRICS_LEADERSHIP_METRICS_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"
#include "server/util/latency_histogram.h"

namespace jambalancer {

// What a replica shows of its part in the election (server/ha) at one
// moment. Only replicas (--etcd_endpoints) have one.
struct LeadershipReading {
  // Labels that tell this election's series from others' (a `pool` label:
  // each pool has its own election).
  std::vector<prometheus::ClientMetric::Label> labels;
  bool leading = false;  // Leads and may serve.
  int64_t epoch = 0;     // Of the leadership it knows; 0: none.
  uint64_t elections_won = 0;
  double seconds_leading = 0;  // In all, the current leadership included.
  // Lease keepalives: the round trip of each one etcd answered, and the
  // ones that failed or were not answered in time.
  LatencyHistogram::Snapshot keepalive_round_trip;
  uint64_t keepalive_failures = 0;
};

// The families of the readings, one series per reading:
//   jam_balancer_leader                          gauge, 1 while leading
//   jam_balancer_leader_epoch                    gauge
//   jam_balancer_elections_won_total             counter
//   jam_balancer_leader_seconds_total            counter
//   jam_balancer_etcd_keepalive_seconds          histogram
//   jam_balancer_etcd_keepalive_failures_total   counter
std::vector<prometheus::MetricFamily> LeadershipFamilies(
    absl::Span<const LeadershipReading> readings);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_METRICS_LEADERSHIP_METRICS_H_
