#include "bench/load/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace jambalancer {
namespace bench {

double Histogram::PercentileNanos(const std::vector<uint64_t>& buckets,
                                  uint64_t count, double q,
                                  uint64_t max_nanos) {
  if (count == 0) return 0;
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * count)));
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets[i];
    if (seen >= rank) {
      return std::min(Middle(i), static_cast<double>(max_nanos));
    }
  }
  return static_cast<double>(max_nanos);
}

}  // namespace bench
}  // namespace jambalancer
