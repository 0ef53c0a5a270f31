#include "server/metrics/leadership_metrics.h"

#include <functional>
#include <vector>

#include "prometheus/metric_type.h"
#include "server/metrics/metric_families.h"

namespace jambalancer {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

// A family with one series per reading, of value `value(reading)`.
MetricFamily PerReading(
    const char* name, const char* help, MetricType type,
    absl::Span<const LeadershipReading> readings,
    const std::function<double(const LeadershipReading&)>& value) {
  MetricFamily family{name, help, type, {}};
  for (const LeadershipReading& reading : readings) {
    prometheus::ClientMetric& metric = family.metric.emplace_back();
    metric.label = reading.labels;
    if (type == MetricType::Counter) {
      metric.counter.value = value(reading);
    } else {
      metric.gauge.value = value(reading);
    }
  }
  return family;
}

}  // namespace

std::vector<MetricFamily> LeadershipFamilies(
    absl::Span<const LeadershipReading> readings) {
  std::vector<MetricFamily> families;
  families.push_back(PerReading(
      "jam_balancer_leader",
      "1 while this replica leads the pool's election and may serve it, "
      "else 0.",
      MetricType::Gauge, readings,
      [](const LeadershipReading& r) { return r.leading ? 1.0 : 0.0; }));
  families.push_back(PerReading(
      "jam_balancer_leader_epoch",
      "Epoch of the pool's leadership this replica knows (etcd's revision "
      "of the leader key); 0 if none.",
      MetricType::Gauge, readings,
      [](const LeadershipReading& r) { return double(r.epoch); }));
  families.push_back(PerReading(
      "jam_balancer_elections_won_total",
      "Elections of the pool this replica won (leaderships begun).",
      MetricType::Counter, readings,
      [](const LeadershipReading& r) { return double(r.elections_won); }));
  families.push_back(PerReading(
      "jam_balancer_leader_seconds_total",
      "Time this replica has led the pool, in seconds.", MetricType::Counter,
      readings, [](const LeadershipReading& r) { return r.seconds_leading; }));
  MetricFamily round_trip{"jam_balancer_etcd_keepalive_seconds",
                          "Round trip of the lease keepalives etcd answered.",
                          MetricType::Histogram,
                          {}};
  for (const LeadershipReading& reading : readings) {
    prometheus::ClientMetric& metric = round_trip.metric.emplace_back();
    FillHistogram(reading.keepalive_round_trip, &metric);
    metric.label = reading.labels;
  }
  families.push_back(std::move(round_trip));
  families.push_back(PerReading(
      "jam_balancer_etcd_keepalive_failures_total",
      "Lease keepalives that failed or went unanswered in time.",
      MetricType::Counter, readings,
      [](const LeadershipReading& r) { return double(r.keepalive_failures); }));
  return families;
}

}  // namespace jambalancer
