#ifndef JAM_BALANCER_BENCH_LOAD_CONFIG_H_
#define JAM_BALANCER_BENCH_LOAD_CONFIG_H_

#include <string>

#include "absl/time/time.h"

namespace jambalancer {
namespace bench {

// The workloads of jam-bench; bench/load/workload.h says what each sends.
enum class WorkloadKind {
  kCurrentJam,
  kArrivals,
  kRefresh,
  kHasCapacity,
  kBatch
};

// Sets `*kind` to the workload spelled `name` on the command line
// (current_jam, arrivals, refresh, has_capacity or batch). False, leaving
// `*kind` alone, if no workload has that name.
bool ParseWorkload(const std::string& name, WorkloadKind* kind);

// What one run of jam-bench is asked to do: its flags, once
// bench/load/main.cc has checked their ranges. A plain value; the parts of
// the load generator each keep their own copy or a reference that outlives
// them.
struct Config {
  std::string target;  // host:port or any gRPC target URI
  WorkloadKind workload = WorkloadKind::kCurrentJam;
  std::string workload_name;  // as spelled in --workload
  int concurrency = 64;       // slots: calls in flight at most
  int channels = 4;           // at most `concurrency`
  absl::Duration warmup;
  absl::Duration duration;  // the measured window
  double rate = 0;          // open loop: calls started per second; 0: closed
  int batch_size = 16;
  int prepopulate = 0;      // jams filled before the warm-up
  int population = 1000;    // users the arrivals and batch workloads keep
  absl::Duration deadline;  // of each call
  bool json = false;        // report format: JSON, else text
  bool progress = true;     // progress lines on stderr
};

}  // namespace bench
}  // namespace jambalancer

#endif  // JAM_BALANCER_BENCH_LOAD_CONFIG_H_
