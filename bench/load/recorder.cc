#include "bench/load/recorder.h"

#include <algorithm>
#include <memory>
#include <mutex>

#include "bench/load/histogram.h"

namespace jambalancer {
namespace bench {

const char* StatusCodeName(int code) {
  static constexpr const char* kNames[kStatusCodes] = {"OK",
                                                       "CANCELLED",
                                                       "UNKNOWN",
                                                       "INVALID_ARGUMENT",
                                                       "DEADLINE_EXCEEDED",
                                                       "NOT_FOUND",
                                                       "ALREADY_EXISTS",
                                                       "PERMISSION_DENIED",
                                                       "RESOURCE_EXHAUSTED",
                                                       "FAILED_PRECONDITION",
                                                       "ABORTED",
                                                       "OUT_OF_RANGE",
                                                       "UNIMPLEMENTED",
                                                       "INTERNAL",
                                                       "UNAVAILABLE",
                                                       "DATA_LOSS",
                                                       "UNAUTHENTICATED"};
  return code >= 0 && code < kStatusCodes ? kNames[code] : "UNKNOWN";
}

NamedErrors NameErrors(const ErrorsByCode& errors, uint64_t bad_responses) {
  NamedErrors named;
  for (int code = 0; code < kStatusCodes; ++code) {
    if (errors[code] > 0)
      named.emplace_back(StatusCodeName(code), errors[code]);
  }
  if (bad_responses > 0) named.emplace_back("BAD_RESPONSE", bad_responses);
  return named;
}

uint64_t CountErrors(const ErrorsByCode& errors, uint64_t bad_responses) {
  uint64_t sum = bad_responses;
  for (uint64_t n : errors) sum += n;
  return sum;
}

uint64_t Totals::ErrorCount() const {
  return CountErrors(errors, bad_responses);
}

double Totals::PercentileMicros(double q) const {
  return Histogram::PercentileNanos(latency, calls, q, latency_max_ns) / 1e3;
}

double ProbeTotals::PercentileMicros(double q) const {
  return Histogram::PercentileNanos(latency, calls, q, max_ns) / 1e3;
}

double Totals::MeanMicros() const {
  return calls == 0 ? 0 : latency_sum_ns / 1e3 / calls;
}

Shard& Recorder::Local() {
  thread_local Shard* shard = nullptr;
  if (shard == nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    shards_.push_back(std::make_unique<Shard>());
    shard = shards_.back().get();
  }
  return *shard;
}

Totals Recorder::Collect() {
  Totals totals;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& shard : shards_) {
    for (int i = 0; i < Histogram::kBuckets; ++i) {
      totals.latency[i] += shard->latency[i].load(std::memory_order_relaxed);
    }
    totals.latency_sum_ns += shard->latency_sum_ns.load();
    totals.latency_max_ns =
        std::max(totals.latency_max_ns, shard->latency_max_ns.load());
    totals.calls += shard->calls.load();
    totals.ops += shard->ops.load();
    totals.arrivals += shard->arrivals.load();
    totals.redirects += shard->redirects.load();
    totals.answered += shard->answered.load();
    for (int i = 0; i < kStatusCodes; ++i) {
      totals.errors[i] += shard->errors[i].load();
    }
    totals.bad_responses += shard->bad_responses.load();
    for (int w = 0; w < kProbeWindows; ++w) {
      const ProbeCounts& from = shard->probes[w];
      ProbeTotals& to = totals.probes[w];
      for (int i = 0; i < Histogram::kBuckets; ++i) {
        to.latency[i] += from.latency[i].load(std::memory_order_relaxed);
      }
      to.calls += from.calls.load();
      to.max_ns = std::max(to.max_ns, from.max_ns.load());
    }
  }
  return totals;
}

}  // namespace bench
}  // namespace jambalancer
