#include "server/metrics/leadership_metrics.h"

#include <vector>

#include "prometheus/metric_type.h"
#include "server/metrics/metric_families.h"

namespace jambalancer {

std::vector<prometheus::MetricFamily> LeadershipFamilies(
    const LeadershipReading& reading) {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  families.push_back(SingleValueFamily(
      "jam_balancer_leader",
      "1 while this replica leads the election and may serve, else 0.",
      MetricType::Gauge, reading.leading ? 1 : 0));
  families.push_back(SingleValueFamily(
      "jam_balancer_leader_epoch",
      "Epoch of the leadership this replica knows (etcd's revision of the "
      "leader key); 0 if none.",
      MetricType::Gauge, static_cast<double>(reading.epoch)));
  families.push_back(SingleValueFamily(
      "jam_balancer_elections_won_total",
      "Elections this replica won (leaderships begun).", MetricType::Counter,
      static_cast<double>(reading.elections_won)));
  families.push_back(SingleValueFamily("jam_balancer_leader_seconds_total",
                                       "Time this replica has led, in seconds.",
                                       MetricType::Counter,
                                       reading.seconds_leading));
  prometheus::MetricFamily round_trip{
      "jam_balancer_etcd_keepalive_seconds",
      "Round trip of the lease keepalives etcd answered.",
      MetricType::Histogram,
      {}};
  FillHistogram(reading.keepalive_round_trip,
                &round_trip.metric.emplace_back());
  families.push_back(std::move(round_trip));
  families.push_back(SingleValueFamily(
      "jam_balancer_etcd_keepalive_failures_total",
      "Lease keepalives that failed or went unanswered in time.",
      MetricType::Counter, static_cast<double>(reading.keepalive_failures)));
  return families;
}

}  // namespace jambalancer
