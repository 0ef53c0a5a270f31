#include "bench/load/report.h"

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "bench/load/config.h"
#include "bench/load/recorder.h"

namespace jambalancer {
namespace bench {

void PrintReport(const Config& config, const Totals& totals,
                 double window_seconds, uint64_t late_starts, std::ostream& out,
                 const ReportExtra& extra) {
  const double per_second = window_seconds > 0 ? 1 / window_seconds : 0;
  const NamedErrors errors = NameErrors(totals.errors, totals.bad_responses);
  const bool open_loop = config.rate > 0;
  if (config.json) {
    std::string json = absl::StrFormat(
        "{\"workload\":\"%s\",\"target\":\"%s\",\"loop\":\"%s\","
        "\"rate\":%.1f,\"concurrency\":%d,\"channels\":%d,"
        "\"batch_size\":%d,\"prepopulate\":%d,\"population\":%d,"
        "\"warmup_s\":%.3f,\"duration_s\":%.3f,"
        "\"calls\":%d,\"calls_per_s\":%.1f,\"ops\":%d,\"ops_per_s\":%.1f,"
        "\"arrivals\":%d,\"arrivals_per_s\":%.1f,\"redirects\":%d,"
        "\"late_starts\":%d,\"answered\":%d,"
        "\"latency_us\":{\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,"
        "\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},%s"
        "\"errors_total\":%d,\"errors\":{",
        config.workload_name, config.target, open_loop ? "open" : "closed",
        config.rate, config.concurrency, config.channels, config.batch_size,
        config.prepopulate, config.population,
        absl::ToDoubleSeconds(config.warmup), window_seconds, totals.calls,
        totals.calls * per_second, totals.ops, totals.ops * per_second,
        totals.arrivals, totals.arrivals * per_second, totals.redirects,
        late_starts, totals.answered, totals.MeanMicros(),
        totals.PercentileMicros(0.5), totals.PercentileMicros(0.9),
        totals.PercentileMicros(0.99), totals.PercentileMicros(0.999),
        totals.latency_max_ns / 1e3, extra.json_members, totals.ErrorCount());
    json += ErrorsJsonMembers(errors);
    json += "}}\n";
    out << json;
    return;
  }
  out << absl::StrFormat(
      "workload     %s on %s: %s loop%s, %d in flight at most, %d "
      "channels\n"
      "window       %.2f s after %s of warm-up\n"
      "calls        %d = %.0f calls/s\n",
      config.workload_name, config.target, open_loop ? "open" : "closed",
      open_loop ? absl::StrFormat(" at %.0f calls/s", config.rate) : "",
      config.concurrency, config.channels, window_seconds,
      absl::FormatDuration(config.warmup), totals.calls,
      totals.calls * per_second);
  if (config.workload == WorkloadKind::kBatch) {
    out << absl::StrFormat("operations   %d = %.0f ops/s (%d per call)\n",
                           totals.ops, totals.ops * per_second,
                           config.batch_size);
  }
  if (totals.arrivals > 0 || totals.redirects > 0) {
    out << absl::StrFormat(
        "arrivals     %d = %.0f users added/s; %d redirects\n", totals.arrivals,
        totals.arrivals * per_second, totals.redirects);
  }
  if (open_loop) {
    out << absl::StrFormat("late starts  %d (no free slot when due)\n",
                           late_starts);
  }
  out << absl::StrFormat(
      "latency µs   p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  "
      "mean %.1f\n",
      totals.PercentileMicros(0.5), totals.PercentileMicros(0.9),
      totals.PercentileMicros(0.99), totals.PercentileMicros(0.999),
      totals.latency_max_ns / 1e3, totals.MeanMicros());
  out << extra.text;
  PrintErrorsLine(errors, out);
}

std::string ErrorsJsonMembers(const NamedErrors& errors) {
  return absl::StrJoin(errors, ",", [](std::string* s, const auto& e) {
    absl::StrAppend(s, "\"", e.first, "\":", e.second);
  });
}

void PrintErrorsLine(const NamedErrors& errors, std::ostream& out) {
  out << "errors       "
      << (errors.empty()
              ? std::string("none")
              : absl::StrJoin(errors, ", ", absl::PairFormatter(": ")))
      << "\n";
}

}  // namespace bench
}  // namespace jambalancer
