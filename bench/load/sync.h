#ifndef JAM_BALANCER_BENCH_LOAD_SYNC_H_
#define JAM_BALANCER_BENCH_LOAD_SYNC_H_

#include <grpcpp/channel.h>

#include <array>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "bench/load/config.h"
#include "bench/load/recorder.h"
#include "client/balancer_client.h"

namespace jambalancer {
namespace bench {

// The sync workload: what a balancer faces after a start, when every front
// end resupplies its truth. config.frontends front ends (FrontendId(f),
// each on channel f % channels) each Sync config.users_per_frontend users
// in jams of kSyncJamUsers ("sync-F-J", users "sync-F-J-U": unique per
// front end), with a lease of config.lease and a deadline of
// config.deadline for the whole stream, all at once. The truths are built
// before the clock starts. One run, not a rate loop.
inline constexpr int kSyncJamUsers = 7;

// A front end's truth of `users` users in jams of kSyncJamUsers: jams
// "PREFIX-J", users "PREFIX-J-U".
std::vector<BalancerClient::JamUsers> SyncTruth(absl::string_view prefix,
                                                int users);

struct SyncResult {
  double wall_seconds = 0;  // first Sync sent until the last answered
  std::vector<double> frontend_seconds;  // each front end's Sync, by f
  uint64_t jams = 0;                     // jams sent, all front ends
  uint64_t users = 0;                    // users sent, all front ends
  // Each front end's Sync that failed, by status code, and (BAD_RESPONSE)
  // that answered other jam or user counts than sent (the empty server
  // answers 0).
  ErrorsByCode errors{};
  uint64_t bad_responses = 0;
  std::string first_error;  // "CODE: message"; empty if none

  uint64_t ErrorCount() const;
};

// Runs the syncs over `channels` (at least one). Says on stderr how long
// building the truths took if config.progress.
SyncResult RunSync(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                   const Config& config);

// Writes `result` to `out`, as text or as one line of JSON (config.json):
//   {"workload":"sync","target","frontends","users_per_frontend",
//    "jam_users","lease_s","jams","users","wall_s" (first Sync sent until
//    the last answered),"users_per_s" (users / wall_s),"frontend_s" (each
//    front end's Sync time, by front end),"frontend_s_max","errors_total",
//    "errors" (by status code name, plus BAD_RESPONSE)}
void PrintSyncReport(const Config& config, const SyncResult& result,
                     std::ostream& out);

}  // namespace bench
}  // namespace jambalancer

#endif  // JAM_BALANCER_BENCH_LOAD_SYNC_H_
