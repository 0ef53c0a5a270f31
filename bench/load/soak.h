#ifndef JAM_BALANCER_BENCH_LOAD_SOAK_H_
#define JAM_BALANCER_BENCH_LOAD_SOAK_H_

#include <grpcpp/channel.h>

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "bench/load/config.h"
#include "bench/load/recorder.h"

namespace jambalancer {
namespace bench {

// The soak workload: a long run at a fixed rate with the churn of a real
// deployment, watched interval by interval for leaks and drift
// (tools/soak.sh runs it at half of the peak).
//
// config.frontends front ends ("soak-fe-N", front end N on channel
// N % channels) each open a session with an empty Sync (lease
// config.lease) and keep it alive at a third of the lease. Calls start on a
// fixed schedule, config.rate per second (open loop, at most
// config.concurrency in flight; latency counts from the scheduled time),
// each for a front end picked at random among those that may call, which
// takes the next step of its own users' life cycle:
//   arrival    CurrentJam with a new user id (reserves a seat); now and then
//              the user of a held seat comes back (a page reload) instead,
//              and must be answered the held jam;
//   join       AddUser of an arrival to the jam it was answered (with a live
//              reservation it must be added);
//   departure  once the front end holds its share of config.population,
//              RemoveUser of its oldest member (must be removed); one in
//              kSoakHoldSeatOneIn with hold_seat (kSoakHoldSeat);
//   presence   one call in kSoakRefreshOneIn: Refresh of one of its jams
//              with its members there (never while a join or departure of
//              that jam is in flight, so the answer can be checked).
// Every config.churn_every one front end, the oldest, leaves, in turn:
//   expire     a new front end starts, the old one goes silent (no calls,
//              no keepalives): its lease runs out and the balancer removes
//              its users; checked later (its session gone, none of its users
//              left in one of its jams);
//   pause      it goes silent past its lease, then comes back: its first
//              call fails FAILED_PRECONDITION (expected, not an error), it
//              Syncs its truth (the answer must count its users) and goes
//              on;
//   end        a new front end starts, the old one ends with EndSession
//              (the answer must count exactly its members).
// Any other failed call, and any answer that does not fit, is an error.
//
// Every config.interval: calls, late starts, errors, expected failures,
// p50/p99/max latency, the server's RSS, open descriptors and CPU (from
// /proc/config.server_pid, when given) and its GetStats counts. After
// config.warmup + config.duration the load stops, every front end that is
// left ends its session and the balancer must hold nothing any more (no
// jams, users, reservations or sessions; unless it was prepopulated).
inline constexpr char kSoakFrontendPrefix[] = "soak-fe-";
inline constexpr int kSoakRefreshOneIn = 10;
inline constexpr int kSoakHoldSeatOneIn = 10;
inline constexpr int kSoakHoldSeatMs = 2000;
inline constexpr double kSoakStartLagLimitUs = 100000;

// One interval of the soak, measured at its end.
struct SoakInterval {
  double end_s = 0;     // since the load started
  double length_s = 0;  // the interval's own length
  bool warmup = false;  // ended inside the warm-up
  uint64_t calls = 0;   // answered OK in the interval
  uint64_t late_starts = 0;
  // The longest a call started after it was due (the scheduler found no
  // free slot, or got no CPU), in µs.
  double start_lag_max_us = 0;
  uint64_t errors = 0;    // failed or answered nonsense, unexpectedly
  uint64_t expected = 0;  // FAILED_PRECONDITION of a paused front end
  double p50_us = 0;
  double p99_us = 0;
  double max_us = 0;
  // The server process (config.server_pid); -1: unknown.
  int64_t rss_bytes = -1;
  int fds = -1;
  double cpu_fraction = -1;  // CPU seconds per second in the interval
  // The machine's 1-minute load average at the end (/proc/loadavg); -1:
  // unknown. With the server's CPU it tells a busy machine from a server
  // that slows down.
  double load1 = -1;
  // The server's GetStats at the end; -1 if it failed.
  int64_t jams = -1;
  int64_t users = -1;
  int64_t reservations = -1;
  int64_t sessions = -1;
  // Front ends that left in the interval.
  int expired = 0;
  int paused = 0;
  int ended = 0;
};

struct SoakResult {
  std::vector<SoakInterval> intervals;
  uint64_t calls = 0;
  uint64_t late_starts = 0;
  uint64_t expected = 0;
  uint64_t keepalives = 0;
  ErrorsByCode errors{};
  uint64_t bad_responses = 0;  // answered, but not what must be answered
  std::vector<std::string> first_errors;  // "CODE: what", the first few
  int frontends_started = 0;
  int expired = 0;
  int paused = 0;
  int resynced = 0;
  int ended = 0;
  // After the load, once every session is gone: the server's GetStats (-1
  // if it failed) and RSS.
  int64_t final_jams = -1;
  int64_t final_users = -1;
  int64_t final_reservations = -1;
  int64_t final_sessions = -1;
  int64_t final_rss_bytes = -1;
  // Whether the calls still in flight at the end answered in time (if not,
  // the process must end without tearing the soak down).
  bool drained = true;

  uint64_t ErrorCount() const { return CountErrors(errors, bad_responses); }
};

// One pass/fail criterion of the summary; `checked` false: printed only.
struct SoakCriterion {
  std::string name;  // errors, rss_spread, p99_drift
  std::string text;  // what it asks, e.g. "RSS spread after warm-up <= 5%"
  double value = 0;
  double limit = 0;
  bool known = true;  // false: no value (no RSS samples)
  bool checked = true;
  bool met = true;
};

// What the intervals after the warm-up say.
struct SoakSummary {
  int measured_intervals = 0;  // after the warm-up
  // Of those, the ones where the machine (client, server and whatever else
  // runs there) did not keep up: late starts above 1% of the calls, a call
  // started more than kSoakStartLagLimitUs after it was due, or calls
  // answered below 98% of the rate.
  int overloaded_intervals = 0;
  double load1_max = -1;   // highest 1-minute load average at their ends
  double calls_per_s = 0;  // answered OK, after the warm-up
  int64_t rss_min_bytes = -1;
  int64_t rss_max_bytes = -1;
  int64_t rss_first_bytes = -1;
  int64_t rss_last_bytes = -1;
  double rss_spread = 0;           // (max - min) / min
  double rss_slope_mib_per_h = 0;  // least squares over the intervals
  double p99_min_us = 0;
  double p99_max_us = 0;
  double p99_first_third_us = 0;  // median of the first third's p99s
  double p99_last_third_us = 0;   // median of the last third's
  double p99_drift = 0;           // last / first
  std::vector<SoakCriterion> criteria;
  bool passed = false;
};

// The summary of `result` under config.max_rss_spread and
// config.max_p99_drift (0: printed only). Errors are always checked.
SoakSummary SummarizeSoak(const SoakResult& result, const Config& config);

// Runs the soak over `channels` (at least one). Prints each interval on stderr
// (and the churn as it happens) if config.progress.
SoakResult RunSoak(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                   const Config& config);

// Writes `result` and `summary` to `out`: text (a table of the intervals,
// the churn, the state after the run, the summary, the criteria and the
// errors), or one line of JSON (config.json):
//   {"workload":"soak","target","rate","concurrency","channels","frontends",
//    "population","lease_s","churn_every_s","interval_s","warmup_s",
//    "duration_s","server_pid","intervals":[{"end_s","length_s","warmup",
//    "calls","calls_per_s","late_starts","start_lag_max_us","errors","expected","p50_us",
//    "p99_us","max_us","rss_bytes","fds","cpu","load1","jams","users",
//    "reservations","sessions","expired","paused","ended"}...],
//    "calls","late_starts","expected_failures","keepalives","churn":{
//    "started","expired","paused","resynced","ended"},"final":{"jams",
//    "users","reservations","sessions","rss_bytes"},"summary":{
//    "measured_intervals","overloaded_intervals","load1_max","calls_per_s",
//    "rss_min_bytes","rss_max_bytes",
//    "rss_first_bytes","rss_last_bytes","rss_spread","rss_slope_mib_per_h",
//    "p99_min_us","p99_max_us","p99_first_third_us","p99_last_third_us",
//    "p99_drift"},"criteria":[{"name","text","value","limit","known",
//    "checked","met"}...],"passed","errors_total","errors":{NAME: N},
//    "first_errors":[...]}
// (-1 stands for unknown.)
void PrintSoakReport(const Config& config, const SoakResult& result,
                     const SoakSummary& summary, std::ostream& out);

}  // namespace bench
}  // namespace jambalancer

#endif  // JAM_BALANCER_BENCH_LOAD_SOAK_H_
