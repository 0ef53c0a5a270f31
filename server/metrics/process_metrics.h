#ifndef JAM_BALANCER_SERVER_METRICS_PROCESS_METRICS_H_
#define JAM_BALANCER_SERVER_METRICS_PROCESS_METRICS_H_

#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "prometheus/metric_family.h"

namespace jambalancer {

// The standard process_* metrics (CPU time, resident and virtual memory,
// open file descriptors, start time), read from /proc/self when collected.
// Families whose source cannot be read or parsed are left out; nothing here
// throws.
std::vector<prometheus::MetricFamily> CollectProcessMetrics();

// The fields of /proc/<pid>/stat that the metrics use (proc(5)), in the
// units the file has.
struct ProcStat {
  double user_ticks = 0;      // Field 14, utime.
  double system_ticks = 0;    // Field 15, stime.
  double start_ticks = 0;     // Field 22, starttime (after boot).
  double virtual_bytes = 0;   // Field 23, vsize.
  double resident_pages = 0;  // Field 24, rss.
};

// Parses the text of /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses; the fields after its last ')' are read. nullopt if
// a field is missing or not a decimal integer.
std::optional<ProcStat> ParseProcStat(absl::string_view text);

// The boot time (seconds since the epoch) from the text of /proc/stat's
// `btime` line; nullopt if there is none or it is not a positive integer.
std::optional<double> ParseBootTime(absl::string_view text);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_METRICS_PROCESS_METRICS_H_
