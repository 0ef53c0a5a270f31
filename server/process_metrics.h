#ifndef JAM_BALANCER_SERVER_PROCESS_METRICS_H_
#define JAM_BALANCER_SERVER_PROCESS_METRICS_H_

#include <vector>

#include "prometheus/metric_family.h"

namespace jambalancer {

// The standard process_* metrics (CPU time, resident and virtual memory,
// open file descriptors, start time), read from /proc/self when collected.
// Families whose source cannot be read are left out.
std::vector<prometheus::MetricFamily> CollectProcessMetrics();

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_PROCESS_METRICS_H_
