#ifndef JAM_BALANCER_BENCH_LOAD_RECORDER_H_
#define JAM_BALANCER_BENCH_LOAD_RECORDER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "bench/load/histogram.h"

namespace jambalancer {
namespace bench {

// The gRPC status codes, OK (0) to UNAUTHENTICATED (16).
inline constexpr int kStatusCodes = 17;

// The name of gRPC status code `code` ("UNAVAILABLE"); "UNKNOWN" for a
// number that is not one.
const char* StatusCodeName(int code);

// Failures by status code; kStatusCodes entries (OK never counts).
using ErrorsByCode = std::array<uint64_t, kStatusCodes>;
// The failures a report lists: each status code that occurred, by name, then
// BAD_RESPONSE (calls that answered nonsense), in that order.
using NamedErrors = std::vector<std::pair<std::string, uint64_t>>;
NamedErrors NameErrors(const ErrorsByCode& errors, uint64_t bad_responses);
// Every failure of both kinds.
uint64_t CountErrors(const ErrorsByCode& errors, uint64_t bad_responses);

// Adds `n` to a counter that only one thread writes (no locked instruction);
// other threads may read it at any time.
inline void Bump(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n,
                std::memory_order_relaxed);
}

// Probe windows: spans of time set while a run goes on (Driver::SetProbe),
// whose calls' latencies are also counted apart, by the time each call
// started, e.g. just before and just after an event on the server.
inline constexpr int kProbeWindows = 2;

// Calls answered OK that started inside one probe window, by latency.
struct ProbeCounts {
  std::array<std::atomic<uint64_t>, Histogram::kBuckets> latency{};
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> max_ns{0};
};

// What one thread recorded. Written only by its thread (with Bump); read by
// any.
struct Shard {
  // Counts a call answered OK inside the measured window after `nanos`,
  // with the operations, arrivals and redirects it made.
  void RecordCall(uint64_t nanos, uint64_t call_ops, uint64_t call_arrivals,
                  uint64_t call_redirects) {
    Bump(latency[Histogram::Index(nanos)]);
    Bump(latency_sum_ns, nanos);
    if (nanos > latency_max_ns.load(std::memory_order_relaxed)) {
      latency_max_ns.store(nanos, std::memory_order_relaxed);
    }
    Bump(calls);
    Bump(ops, call_ops);
    Bump(arrivals, call_arrivals);
    Bump(redirects, call_redirects);
  }

  // Counts a call answered OK after `nanos` that started in probe window
  // `window`.
  void RecordProbe(int window, uint64_t nanos) {
    ProbeCounts& probe = probes[window];
    Bump(probe.latency[Histogram::Index(nanos)]);
    Bump(probe.calls);
    if (nanos > probe.max_ns.load(std::memory_order_relaxed)) {
      probe.max_ns.store(nanos, std::memory_order_relaxed);
    }
  }

  // Calls answered OK inside the measured window, by latency.
  std::array<std::atomic<uint64_t>, Histogram::kBuckets> latency{};
  std::atomic<uint64_t> latency_sum_ns{0};
  std::atomic<uint64_t> latency_max_ns{0};
  std::atomic<uint64_t> calls{0};      // OK, inside the window
  std::atomic<uint64_t> ops{0};        // operations of those calls
  std::atomic<uint64_t> arrivals{0};   // users added by those calls
  std::atomic<uint64_t> redirects{0};  // AddUser answered added: false
  // Every phase:
  std::atomic<uint64_t> answered{0};  // calls answered, any status
  std::array<std::atomic<uint64_t>, kStatusCodes> errors{};
  std::atomic<uint64_t> bad_responses{0};  // OK but not what was asked
  std::array<ProbeCounts, kProbeWindows> probes;
};

// Sums of one probe window's counts.
struct ProbeTotals {
  std::vector<uint64_t> latency = std::vector<uint64_t>(Histogram::kBuckets);
  uint64_t calls = 0;
  uint64_t max_ns = 0;

  // As Totals::PercentileMicros.
  double PercentileMicros(double q) const;
};

// Sums of all shards at one moment.
struct Totals {
  std::vector<uint64_t> latency = std::vector<uint64_t>(Histogram::kBuckets);
  uint64_t latency_sum_ns = 0;
  uint64_t latency_max_ns = 0;
  uint64_t calls = 0;
  uint64_t ops = 0;
  uint64_t arrivals = 0;
  uint64_t redirects = 0;
  uint64_t answered = 0;
  ErrorsByCode errors{};
  uint64_t bad_responses = 0;
  std::array<ProbeTotals, kProbeWindows> probes;

  // Failed calls and calls that answered nonsense.
  uint64_t ErrorCount() const;
  // The latency (µs) below which a fraction `q` of the calls answered; 0
  // with no calls.
  double PercentileMicros(double q) const;
  // The mean latency (µs) of the calls; 0 with none.
  double MeanMicros() const;
};

// Hands each thread its own shard, so recording takes no lock. Thread-safe.
// There must be at most one Recorder in the process: a thread's shard is
// remembered in a thread_local.
class Recorder {
 public:
  Recorder() = default;
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // The calling thread's shard, made on its first call. It lives as long as
  // the Recorder.
  Shard& Local();

  // Sums every shard as it is now.
  Totals Collect();

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Shard>> shards_;  // guarded by mu_
};

}  // namespace bench
}  // namespace jambalancer

#endif  // JAM_BALANCER_BENCH_LOAD_RECORDER_H_
