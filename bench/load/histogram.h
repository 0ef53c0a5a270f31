#ifndef JAM_BALANCER_BENCH_LOAD_HISTOGRAM_H_
#define JAM_BALANCER_BENCH_LOAD_HISTOGRAM_H_

#include <algorithm>
#include <cstdint>
#include <vector>

namespace jambalancer {
namespace bench {

// The buckets of a log-linear histogram of latencies in nanoseconds, in the
// manner of HdrHistogram: exact below 256 ns, then 128 buckets per power of
// two, so a bucket is at most 1/128 (0.8%) as wide as its values, and a
// percentile (reported as its bucket's middle) is within 0.4%. Values of
// 2^41 ns (37 minutes) and more land in the last bucket.
//
// Only the arithmetic of the buckets: whoever counts keeps kBuckets counters
// of its own (bench/load/recorder.h keeps one array a thread), adds one at
// Index(latency), and reads percentiles from their sums.
class Histogram {
 public:
  static constexpr int kHalf = 128;
  static constexpr int kMaxShift = 33;
  static constexpr int kBuckets = (kMaxShift + 2) * kHalf;

  Histogram() = delete;

  // The bucket of a latency of `nanos`: 0 to kBuckets - 1.
  static int Index(uint64_t nanos) {
    nanos = std::min<uint64_t>(nanos, (uint64_t{1} << 41) - 1);
    if (nanos < 2 * kHalf) return static_cast<int>(nanos);
    const int msb = 63 - __builtin_clzll(nanos);
    const int shift = msb - 7;
    return shift * kHalf + static_cast<int>(nanos >> shift);
  }

  // The middle of bucket `index` (0 to kBuckets - 1), in nanoseconds.
  static double Middle(int index) {
    if (index < 2 * kHalf) return index;
    const int shift = index / kHalf - 1;
    const uint64_t low = static_cast<uint64_t>(index - shift * kHalf) << shift;
    return static_cast<double>(low) + (uint64_t{1} << shift) / 2.0;
  }

  // The latency (ns) below which a fraction `q` (0 to 1) of `count` values
  // lie: the middle of the bucket that holds the value of rank
  // ceil(q * count) (at least 1), but no more than `max_nanos`, the largest
  // value. `buckets` holds kBuckets counts; if they add up to less than that
  // rank (read while still counting), `max_nanos`. 0 if `count` is 0.
  static double PercentileNanos(const std::vector<uint64_t>& buckets,
                                uint64_t count, double q, uint64_t max_nanos);
};

}  // namespace bench
}  // namespace jambalancer

#endif  // JAM_BALANCER_BENCH_LOAD_HISTOGRAM_H_
