#ifndef JAM_BALANCER_BENCH_LOAD_SESSIONS_H_
#define JAM_BALANCER_BENCH_LOAD_SESSIONS_H_

#include <grpcpp/channel.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "bench/load/config.h"
#include "bench/load/recorder.h"
#include "client/balancer_client.h"

namespace jambalancer {
namespace bench {

// The front-end sessions of the arrivals_fe workload: front end f
// (FrontendId(f), 0 to config.frontends - 1) talks over channel f, and its
// slots' calls over every channel c with c % frontends == f.

// Opens every front end's session: a Sync with an empty truth and a lease
// of config.lease. An error naming the front end and the status if one
// fails.
absl::Status StartSessions(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    const Config& config);

// Sends KeepAlive for every front end every config.lease / 3, on a thread of
// its own, from Start until Stop. Keepalives are not calls of the workload:
// they are counted here, apart from the driver's calls, and a failed one
// adds to Totals' errors (AddErrors).
class KeepAlives {
 public:
  KeepAlives(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
             const Config& config);
  KeepAlives(const KeepAlives&) = delete;
  KeepAlives& operator=(const KeepAlives&) = delete;
  ~KeepAlives() { Stop(); }

  void Start();
  // Waits for a round of keepalives in progress. Idempotent.
  void Stop();

  // After Stop: adds the failed keepalives to `totals->errors`.
  void AddErrors(Totals* totals) const;
  uint64_t sent() const { return sent_; }
  uint64_t failed() const { return failed_; }
  // The first failure as "CODE: message"; empty if none.
  const std::string& first_error() const { return first_error_; }

 private:
  void Loop();

  const absl::Duration interval_;
  std::vector<std::unique_ptr<BalancerClient>> clients_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  // Written by the thread; read after Stop.
  uint64_t sent_ = 0;
  uint64_t failed_ = 0;
  std::array<uint64_t, kStatusCodes> errors_{};
  std::string first_error_;
};

}  // namespace bench
}  // namespace jambalancer

#endif  // JAM_BALANCER_BENCH_LOAD_SESSIONS_H_
