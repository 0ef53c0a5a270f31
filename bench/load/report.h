#ifndef JAM_BALANCER_BENCH_LOAD_REPORT_H_
#define JAM_BALANCER_BENCH_LOAD_REPORT_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "bench/load/config.h"
#include "bench/load/recorder.h"

namespace jambalancer {
namespace bench {

// Writes the result of a run to `out`, as text or as one line of JSON
// (config.json): the settings; calls, ops and arrivals counted in the
// measured window of `window_seconds`, with their rates; redirects; (open
// loop) `late_starts`; latency percentiles in µs; `answered` = every call
// answered in any phase; errors by status code name, plus BAD_RESPONSE.
//
// Every report writes its errors the same way: these are the pieces.
// `errors` as the members of a JSON object: "NAME":N,...
std::string ErrorsJsonMembers(const NamedErrors& errors);
// `errors` as the text line "errors       NAME: N, ..." ("none" if empty).
void PrintErrorsLine(const NamedErrors& errors, std::ostream& out);

// tools/benchmark.sh, bench/benchmark_report.py and bench/jam_bench_smoke.sh
// parse this output: keep its keys, their order and the text's layout.
// A workload's own results: `json_members` ("key":value, pairs each ending
// in a comma) go before "errors_total"; `text` lines before the errors line.
struct ReportExtra {
  std::string json_members;
  std::string text;
};
void PrintReport(const Config& config, const Totals& totals,
                 double window_seconds, uint64_t late_starts, std::ostream& out,
                 const ReportExtra& extra = {});

}  // namespace bench
}  // namespace jambalancer

#endif  // JAM_BALANCER_BENCH_LOAD_REPORT_H_
