#ifndef JAM_BALANCER_SERVER_UTIL_LATENCY_HISTOGRAM_H_
#define JAM_BALANCER_SERVER_UTIL_LATENCY_HISTOGRAM_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/time.h"

namespace jambalancer {

// Durations counted into fixed buckets, for Prometheus histograms. Observe is
// lock-free (relaxed atomic adds) and may be called from any thread; Read
// may run concurrently and sees each bucket at some recent value.
class LatencyHistogram {
 public:
  // Upper bounds of the buckets, ascending; an implicit +Inf bucket follows.
  explicit LatencyHistogram(std::vector<absl::Duration> bounds);

  // Bounds for server-side latencies, from 10us to 1s.
  static std::vector<absl::Duration> DefaultBounds();

  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  void Observe(absl::Duration duration);

  struct Snapshot {
    std::vector<double> upper_bounds_seconds;  // Without +Inf.
    std::vector<uint64_t> cumulative_counts;   // One more: the +Inf bucket.
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<int64_t> bounds_ns_;
  // counts_[i] counts durations in (bounds_ns_[i-1], bounds_ns_[i]]; the
  // last one those above every bound.
  const std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<int64_t> sum_ns_{0};
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_UTIL_LATENCY_HISTOGRAM_H_
