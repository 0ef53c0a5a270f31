#include "server/rpc/liveness_watchdog.h"

#include "absl/strings/str_cat.h"

namespace jambalancer {

LivenessWatchdog::LivenessWatchdog(std::vector<Check> checks,
                                   absl::Duration interval, OnChange on_change)
    : checks_(std::move(checks)),
      interval_(interval),
      on_change_(std::move(on_change)),
      thread_([this] { Run(); }) {}

LivenessWatchdog::~LivenessWatchdog() {
  stop_.Notify();
  thread_.join();
}

void LivenessWatchdog::Run() {
  bool alive = true;
  while (!stop_.WaitForNotificationWithTimeout(interval_)) {
    absl::Status liveness;
    for (const Check& check : checks_) {
      if (absl::Status status = check.run(); !status.ok()) {
        liveness = absl::Status(
            status.code(), absl::StrCat(check.name, ": ", status.message()));
        break;
      }
    }
    if (liveness.ok() != alive) {
      alive = liveness.ok();
      on_change_(liveness);
    }
  }
}

}  // namespace jambalancer
