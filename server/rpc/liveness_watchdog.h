#ifndef JAM_BALANCER_SERVER_RPC_LIVENESS_WATCHDOG_H_
#define JAM_BALANCER_SERVER_RPC_LIVENESS_WATCHDOG_H_

#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace jambalancer {

// Decides whether the process is alive, for the health service: every
// `interval` it runs each named check on a thread of its own; the process
// is alive while every check returns OK. `on_change` hears each change
// (OK, or the first failing check's error prefixed with its name), on the
// watchdog's thread; the process starts alive.
//
// Checks run on the watchdog's thread and must return quickly. Destruction
// stops the thread.
class LivenessWatchdog {
 public:
  struct Check {
    std::string name;
    std::function<absl::Status()> run;
  };
  using OnChange = std::function<void(const absl::Status& liveness)>;

  LivenessWatchdog(std::vector<Check> checks, absl::Duration interval,
                   OnChange on_change);
  ~LivenessWatchdog();

  LivenessWatchdog(const LivenessWatchdog&) = delete;
  LivenessWatchdog& operator=(const LivenessWatchdog&) = delete;

 private:
  void Run();

  const std::vector<Check> checks_;
  const absl::Duration interval_;
  const OnChange on_change_;
  absl::Notification stop_;
  std::thread thread_;  // Last: starts after the members above exist.
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_LIVENESS_WATCHDOG_H_
