#ifndef JAM_BALANCER_BENCH_LOAD_CONFIG_H_
#define JAM_BALANCER_BENCH_LOAD_CONFIG_H_

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace jambalancer {
namespace bench {

// The workloads of jam-bench; bench/load/workload.h says what each sends.
enum class WorkloadKind {
  kCurrentJam,
  kArrivals,
  kRefresh,
  kHasCapacity,
  kBatch,
  kArrivalsFe,
  kSync,
  kExpiry,
  kSoak
};

// Whether the workload's calls carry front-end ids (over config.frontends
// front ends with sessions and keepalives).
inline bool HasFrontEnds(WorkloadKind kind) {
  return kind == WorkloadKind::kArrivalsFe || kind == WorkloadKind::kExpiry;
}

// Sets `*kind` to the workload spelled `name` on the command line
// (current_jam, arrivals, refresh, has_capacity, batch, arrivals_fe, sync,
// expiry or soak). False, leaving
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
  // batch: the pools the Batch calls go to (BatchRequest.pool), slot i's to
  // pools[i % pools.size()]; the prepopulated jams are filled in each.
  // Empty: no pool named (the server's default pool).
  std::vector<std::string> pools;
  int prepopulate = 0;      // jams filled before the warm-up
  int population = 1000;    // users the arrivals and batch workloads keep
  absl::Duration deadline;  // of each call (sync: of each whole stream)
  // arrivals_fe: front ends the channels are spread over (at most
  // `channels`); sync: front ends that Sync at once.
  int frontends = 4;
  int users_per_frontend = 125000;  // sync; expiry: the expiring front end
  absl::Duration lease;             // arrivals_fe, sync: the sessions' lease
  // expiry (bench/load/expiry.h): the expiring front end's lease, and the
  // probe windows' length.
  absl::Duration expiring_lease;
  absl::Duration probe_window;
  // soak (bench/load/soak.h): the reporting interval, the time between
  // front ends leaving, the server's process id for its RSS (0: unknown),
  // and the criteria's limits (0: printed only).
  absl::Duration interval;
  absl::Duration churn_every;
  int server_pid = 0;
  double max_rss_spread = 0.05;
  double max_p99_drift = 2;
  bool json = false;     // report format: JSON, else text
  bool progress = true;  // progress lines on stderr
};

}  // namespace bench
}  // namespace jambalancer

#endif  // JAM_BALANCER_BENCH_LOAD_CONFIG_H_
