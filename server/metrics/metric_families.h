#ifndef JAM_BALANCER_SERVER_METRICS_METRIC_FAMILIES_H_
#define JAM_BALANCER_SERVER_METRICS_METRIC_FAMILIES_H_

#include <string>

#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"
#include "server/util/latency_histogram.h"

namespace jambalancer {

// Builders for the prometheus-cpp families that the collectors return.

// A family with one unlabelled counter or gauge.
prometheus::MetricFamily SingleValueFamily(std::string name, std::string help,
                                           prometheus::MetricType type,
                                           double value);

// Copies `snapshot` into `metric`'s histogram, adding the +Inf bucket.
void FillHistogram(const LatencyHistogram::Snapshot& snapshot,
                   prometheus::ClientMetric* metric);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_METRICS_METRIC_FAMILIES_H_
