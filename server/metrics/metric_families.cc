#include "server/metrics/metric_families.h"

#include <limits>
#include <utility>

namespace jambalancer {

prometheus::MetricFamily SingleValueFamily(std::string name, std::string help,
                                           prometheus::MetricType type,
                                           double value) {
  prometheus::MetricFamily family{std::move(name), std::move(help), type, {}};
  prometheus::ClientMetric& metric = family.metric.emplace_back();
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return family;
}

void FillHistogram(const LatencyHistogram::Snapshot& snapshot,
                   prometheus::ClientMetric* metric) {
  metric->histogram.sample_count = snapshot.count;
  metric->histogram.sample_sum = snapshot.sum_seconds;
  metric->histogram.bucket.clear();
  for (size_t i = 0; i < snapshot.upper_bounds_seconds.size(); ++i) {
    metric->histogram.bucket.push_back(
        {snapshot.cumulative_counts[i], snapshot.upper_bounds_seconds[i]});
  }
  metric->histogram.bucket.push_back(
      {snapshot.count, std::numeric_limits<double>::infinity()});
}

}  // namespace jambalancer
