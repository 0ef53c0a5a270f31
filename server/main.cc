// jam-balancer: serves the jam balancer API over gRPC until SIGTERM or SIGINT.

#include <signal.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/rpc/balancer_server.h"
#include "server/rpc/server_options.h"
#include "server/util/log.h"
#include "server/util/version.h"

namespace {
// The defaults of every flag below: the server's own (server_options.h).
const jambalancer::ServerOptions kDefaults;
}  // namespace

ABSL_FLAG(std::string, listen, kDefaults.listen,
          "host:port for gRPC; port 0 picks a free port (logged at start)");
ABSL_FLAG(uint32_t, max_users, kDefaults.max_users,
          "capacity of every jam: users a jam may hold (at least 1)");
ABSL_FLAG(absl::Duration, reservation_ttl, kDefaults.reservation_ttl,
          "how long a seat reserved by CurrentJam with a user id is held when "
          "the request asks for 0 ms");
ABSL_FLAG(absl::Duration, max_reservation_ttl, kDefaults.max_reservation_ttl,
          "longest reservation a request may ask for; longer ones are capped "
          "(at most 24h)");
ABSL_FLAG(std::string, metrics_listen, kDefaults.metrics_listen,
          "host:port serving Prometheus metrics at /metrics; empty turns "
          "metrics off; port 0 picks a free port (logged at start)");
ABSL_FLAG(absl::Duration, lease_ttl, kDefaults.lease_ttl,
          "a front end's lease when its Sync asks for 0 ms (at least 500ms)");
ABSL_FLAG(absl::Duration, max_lease_ttl, kDefaults.max_lease_ttl,
          "longest lease a Sync may ask for; longer ones are capped (at most "
          "1h)");
ABSL_FLAG(absl::Duration, resync_grace, kDefaults.resync_grace,
          "after start, how long jams that front ends resupply stay closed to "
          "new users (0: not at all)");
ABSL_FLAG(bool, strand_inline, kDefaults.strand_inline,
          "run an operation on the gRPC thread that received it when the "
          "strand is idle (false: always hand it to the strand's thread)");
ABSL_FLAG(std::string, log_format, "text",
          "log line format on stderr: text or json");
ABSL_FLAG(absl::Duration, shutdown_grace, kDefaults.shutdown_grace,
          "on SIGTERM/SIGINT, how long calls in flight may take to finish "
          "before they are cancelled");

int main(int argc, char** argv) {
  // --help lists the flags of files named after the program by default; ours
  // live in main.cc.
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view path) {
    return absl::EndsWith(path, "server/main.cc");
  };
  absl::SetFlagsUsageConfig(usage_config);
  absl::SetProgramUsageMessage(
      "Places users into jams (small rooms) for front-end servers.\n"
      "Usage: jam-balancer [--listen=HOST:PORT] [--max_users=N] "
      "[--reservation_ttl=DURATION] [--max_reservation_ttl=DURATION] "
      "[--lease_ttl=DURATION] [--max_lease_ttl=DURATION] "
      "[--resync_grace=DURATION] "
      "[--metrics_listen=HOST:PORT] [--log_format=text|json] "
      "[--strand_inline=BOOL] "
      "[--shutdown_grace=DURATION]");
  absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil with mutex deadlock detection on, which costs every
  // lock a graph update; the server's lock order is fixed and small.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using jambalancer::Log;
  using jambalancer::LogLevel;

  const std::string log_format = absl::GetFlag(FLAGS_log_format);
  if (log_format == "json") {
    jambalancer::SetLogFormat(jambalancer::LogFormat::kJson);
  } else if (log_format != "text") {
    Log(LogLevel::kError, "not started: log_format must be text or json",
        {{"log_format", log_format}});
    return EXIT_FAILURE;
  }

  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  jambalancer::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.max_users = absl::GetFlag(FLAGS_max_users);
  options.reservation_ttl = absl::GetFlag(FLAGS_reservation_ttl);
  options.max_reservation_ttl = absl::GetFlag(FLAGS_max_reservation_ttl);
  options.lease_ttl = absl::GetFlag(FLAGS_lease_ttl);
  options.max_lease_ttl = absl::GetFlag(FLAGS_max_lease_ttl);
  options.resync_grace = absl::GetFlag(FLAGS_resync_grace);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.strand_inline = absl::GetFlag(FLAGS_strand_inline);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);

  auto server = jambalancer::BalancerServer::Start(options);
  if (!server.ok()) {
    Log(LogLevel::kError, "not started",
        {{"error", std::string(server.status().message())}});
    return EXIT_FAILURE;
  }
  const int metrics_port = (*server)->metrics_port();
  Log(LogLevel::kInfo, "jam-balancer started",
      {{"version", jambalancer::kVersion},
       {"listen", options.listen},
       {"port", absl::StrCat((*server)->port())},
       {"metrics_listen",
        options.metrics_listen.empty() ? "off" : options.metrics_listen},
       {"metrics_port", absl::StrCat(metrics_port)},
       {"max_users", absl::StrCat(options.max_users)},
       {"reservation_ttl", absl::FormatDuration(options.reservation_ttl)},
       {"max_reservation_ttl",
        absl::FormatDuration(options.max_reservation_ttl)},
       {"lease_ttl", absl::FormatDuration(options.lease_ttl)},
       {"max_lease_ttl", absl::FormatDuration(options.max_lease_ttl)},
       {"resync_grace", absl::FormatDuration(options.resync_grace)},
       {"strand_inline", options.strand_inline ? "true" : "false"},
       {"shutdown_grace", absl::FormatDuration(options.shutdown_grace)}});

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  Log(LogLevel::kInfo,
      absl::StrCat("received ", strsignal(signal_number),
                   ", shutting down: health NOT_SERVING, draining calls"));
  (*server)->Shutdown(options.shutdown_grace);
  Log(LogLevel::kInfo, "jam-balancer stopped");
  return EXIT_SUCCESS;
}
