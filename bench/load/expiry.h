#ifndef JAM_BALANCER_BENCH_LOAD_EXPIRY_H_
#define JAM_BALANCER_BENCH_LOAD_EXPIRY_H_

#include <grpcpp/channel.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "bench/load/config.h"
#include "bench/load/driver.h"
#include "bench/load/recorder.h"

namespace jambalancer {
namespace bench {

// The expiry workload: arrivals_fe, and meanwhile one more front end
// (kExpiringFrontendId) that Syncs config.users_per_frontend users in jams
// of kSyncJamUsers with a lease of config.expiring_lease, then goes silent:
// its lease runs out inside the measured window and the server removes its
// users while the other front ends' calls go on. Two probe windows of the
// driver compare those calls: window 0 is the config.probe_window before the
// Sync (the load as it was), window 1 the config.probe_window from the
// moment the lease ran out (the removal).
inline constexpr char kExpiringFrontendId[] = "bench-fe-expiring";

struct ExpiryResult {
  uint64_t users = 0;       // synced
  double sync_seconds = 0;  // the Sync's own time
  // When the lease ran out, in seconds after the Sync was sent.
  double expired_after_s = 0;
  // After the run: its session was gone and its users were removed.
  bool removed = false;
  // The Sync or the check failed, or the check found the users still
  // there: "CODE: message"; empty if all went well.
  std::string error;
};

// The expiring front end. Start, then Finish once the driver has run.
class ExpiringFrontEnd {
 public:
  using Clock = std::chrono::steady_clock;

  // `channel` is its own (not one of the load's); `driver` outlives it.
  ExpiringFrontEnd(std::shared_ptr<grpc::Channel> channel, const Config& config,
                   Driver& driver);
  ExpiringFrontEnd(const ExpiringFrontEnd&) = delete;
  ExpiringFrontEnd& operator=(const ExpiringFrontEnd&) = delete;
  ~ExpiringFrontEnd();

  // Builds its truth now, then on a thread of its own sets probe window 0,
  // Syncs at `sync_at`, and sets probe window 1 at the lease's expiry.
  void Start(Clock::time_point sync_at);
  // Waits for the thread, then asks the server whether the front end's
  // session and users are gone.
  ExpiryResult Finish();

 private:
  void Run(Clock::time_point sync_at);

  std::shared_ptr<grpc::Channel> channel_;
  const Config& config_;
  Driver& driver_;
  std::thread thread_;
  ExpiryResult result_;  // Written by thread_ until it is joined.
};

// The result as the members of a JSON object ("expiry":{...},"probes":[...])
// and as text lines, for PrintReport.
std::string ExpiryJsonMembers(const ExpiryResult& result, const Totals& totals,
                              const Config& config);
std::string ExpiryTextLines(const ExpiryResult& result, const Totals& totals,
                            const Config& config);

}  // namespace bench
}  // namespace jambalancer

#endif  // JAM_BALANCER_BENCH_LOAD_EXPIRY_H_
