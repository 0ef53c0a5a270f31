#include "server/util/latency_histogram.h"

#include <algorithm>

namespace jambalancer {
namespace {

std::vector<int64_t> ToNanoseconds(const std::vector<absl::Duration>& bounds) {
  std::vector<int64_t> ns;
  ns.reserve(bounds.size());
  for (absl::Duration bound : bounds) {
    ns.push_back(absl::ToInt64Nanoseconds(bound));
  }
  return ns;
}

}  // namespace

LatencyHistogram::LatencyHistogram(std::vector<absl::Duration> bounds)
    : bounds_ns_(ToNanoseconds(bounds)),
      counts_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  for (size_t i = 0; i <= bounds_ns_.size(); ++i) counts_[i] = 0;
}

std::vector<absl::Duration> LatencyHistogram::DefaultBounds() {
  return {
      absl::Microseconds(10),  absl::Microseconds(25),  absl::Microseconds(50),
      absl::Microseconds(100), absl::Microseconds(250), absl::Microseconds(500),
      absl::Milliseconds(1),   absl::Milliseconds(2.5), absl::Milliseconds(5),
      absl::Milliseconds(10),  absl::Milliseconds(25),  absl::Milliseconds(50),
      absl::Milliseconds(100), absl::Milliseconds(250), absl::Milliseconds(500),
      absl::Seconds(1)};
}

void LatencyHistogram::Observe(absl::Duration duration) {
  const int64_t ns = absl::ToInt64Nanoseconds(duration);
  const size_t bucket =
      std::lower_bound(bounds_ns_.begin(), bounds_ns_.end(), ns) -
      bounds_ns_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(ns, std::memory_order_relaxed);
}

LatencyHistogram::Snapshot LatencyHistogram::Read() const {
  Snapshot snapshot;
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_ns_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative_counts.push_back(cumulative);
    if (i < bounds_ns_.size()) {
      snapshot.upper_bounds_seconds.push_back(bounds_ns_[i] * 1e-9);
    }
  }
  snapshot.count = cumulative;
  snapshot.sum_seconds = sum_ns_.load(std::memory_order_relaxed) * 1e-9;
  return snapshot;
}

}  // namespace jambalancer
