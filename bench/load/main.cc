// jam-bench: a load generator for the jam balancer, or for anything serving
// the same service (bench/empty_server.cc, the limit), on the gRPC callback
// client API. tools/benchmark.sh runs it; so does bench/jam_bench_smoke.sh.
//
// It connects --channels channels to --target (bench/load/setup.h), fills
// the --prepopulate jams, then runs --workload (bench/load/workload.h: what
// each workload sends) from --concurrency slots in a closed loop, or in an
// open loop at --rate calls/s (bench/load/driver.h: the loops and the
// phases: --warmup, the measured window of --duration, the drain).
//
// Prints the result on stdout (--format=text or json, bench/load/report.h:
// calls, ops and arrivals counted in the window with their rates, latency
// percentiles in µs, `answered` = every call answered in any phase, errors
// by status code) and a progress line on stderr every second. arrivals_fe
// first opens the front ends' sessions and keeps them alive during the run
// (bench/load/sessions.h); sync is one run of concurrent Syncs, with a
// report of its own (bench/load/sync.h); expiry is arrivals_fe while one
// more front end's users expire (bench/load/expiry.h); soak is a long
// open-loop run with front ends coming and going, reported interval by
// interval and judged by its criteria (bench/load/soak.h). batch with
// --pools spreads its calls over the server's pools, slot by slot. Exit
// status: 0 if every call succeeded, 1 if any call failed or answered
// nonsense (the report lists the status codes), 2 on wrong usage.

#include <grpcpp/channel.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "bench/load/config.h"
#include "bench/load/driver.h"
#include "bench/load/expiry.h"
#include "bench/load/recorder.h"
#include "bench/load/report.h"
#include "bench/load/sessions.h"
#include "bench/load/setup.h"
#include "bench/load/soak.h"
#include "bench/load/sync.h"
#include "client/balancer_client.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051",
          "host:port of the server (or any gRPC target URI)");
ABSL_FLAG(std::string, workload, "current_jam",
          "current_jam, arrivals, refresh, has_capacity, batch, arrivals_fe "
          "(arrivals with front-end ids and keepalives), sync (front ends "
          "Sync at once; one run), expiry (arrivals_fe while another front "
          "end's users expire) or soak (a long open-loop run with front ends "
          "coming and going; needs --rate)");
ABSL_FLAG(int32_t, concurrency, 64,
          "calls in flight in total (closed loop); most calls in flight (open "
          "loop)");
ABSL_FLAG(int32_t, channels, 4, "separate channels (TCP connections)");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(2),
          "time under load before the measured window");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "the measured window");
ABSL_FLAG(double, rate, 0,
          "open loop: calls started per second on a fixed schedule; 0 = closed "
          "loop");
ABSL_FLAG(int32_t, batch_size, 16, "batch: operations per Batch call");
ABSL_FLAG(std::vector<std::string>, pools, {},
          "batch: pools to spread the Batch calls over, comma-separated (e.g. "
          "p1,p2; \"default\" names the default pool): slot i's calls go to "
          "pool i % (number of pools), and --prepopulate fills each; empty: "
          "no pool named (the default pool)");
ABSL_FLAG(int32_t, prepopulate, 0,
          "jams filled (by Batch of Refresh) before the warm-up: jam i gets "
          "1 + i % max_users members");
ABSL_FLAG(bool, prepopulate_only, false,
          "fill the --prepopulate jams, then exit without load");
ABSL_FLAG(int32_t, population, 1000,
          "arrivals, batch: users the workload keeps in jams, split over the "
          "slots; past that, every arrival comes with a departure");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(5),
          "deadline of each call (sync: of each front end's whole Sync)");
ABSL_FLAG(int32_t, frontends, 0,
          "arrivals_fe: front ends the channels are spread over (at most "
          "--channels; channel c belongs to front end c % frontends); sync: "
          "front ends that Sync at once, each on its own channel; 0 = 4 for "
          "arrivals_fe, 8 for sync");
ABSL_FLAG(int32_t, users_per_frontend, 0,
          "sync: users each front end Syncs, in jams of 7; expiry: users of "
          "the expiring front end; 0 = 125000 for sync, 100000 for expiry");
ABSL_FLAG(absl::Duration, lease, absl::Seconds(10),
          "arrivals_fe, sync: lease of the sessions; arrivals_fe sends "
          "KeepAlive every lease/3 (not counted as calls; a failed one is an "
          "error)");
ABSL_FLAG(absl::Duration, expiring_lease, absl::Seconds(1),
          "expiry: lease of the front end whose users expire (at least "
          "500ms)");
ABSL_FLAG(absl::Duration, probe_window, absl::Milliseconds(500),
          "expiry: length of the probe windows before the expiring front "
          "end's Sync and after its lease ran out");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(30),
          "soak: how often calls, errors, latency, the server's RSS and its "
          "counts are reported");
ABSL_FLAG(absl::Duration, churn_every, absl::Seconds(20),
          "soak: how often a front end leaves (in turn: its lease runs out, "
          "it pauses past its lease and resyncs, it ends its session)");
ABSL_FLAG(int32_t, server_pid, 0,
          "soak: the server's process id, for its RSS, descriptors and CPU "
          "from /proc (0: not measured)");
ABSL_FLAG(double, max_rss_spread, 0.05,
          "soak: fail if the server's RSS after the warm-up spreads more "
          "than this fraction of its minimum (0: print only)");
ABSL_FLAG(double, max_p99_drift, 2,
          "soak: fail if the median p99 of the last third of the intervals "
          "after the warm-up exceeds the first third's by this factor (0: "
          "print only)");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA of the server's certificate: talk TLS (as jamctl's)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate for a server with --tls_client_ca; needs "
          "--tls_key; implies TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, format, "text", "report format: text or json");
ABSL_FLAG(bool, progress, true, "a progress line on stderr every second");

namespace jambalancer {
namespace bench {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Checks the flags into a Config. False (with a message) if one is out of
// range.
// The channels' credentials from --tls_ca, --tls_cert and --tls_key:
// plaintext when none is given. INVALID_ARGUMENT naming a bad file.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsCredentials() {
  const std::string ca = absl::GetFlag(FLAGS_tls_ca);
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  if (ca.empty() && cert.empty() && key.empty()) {
    return BalancerClient::Credentials(std::nullopt);
  }
  absl::StatusOr<BalancerClient::Tls> tls =
      BalancerClient::Tls::FromFiles(ca, cert, key);
  if (!tls.ok()) return tls.status();
  return BalancerClient::Credentials(*std::move(tls));
}

bool ReadFlags(Config* config) {
  config->target = absl::GetFlag(FLAGS_target);
  config->workload_name = absl::GetFlag(FLAGS_workload);
  config->concurrency = absl::GetFlag(FLAGS_concurrency);
  config->channels = absl::GetFlag(FLAGS_channels);
  config->warmup = absl::GetFlag(FLAGS_warmup);
  config->duration = absl::GetFlag(FLAGS_duration);
  config->rate = absl::GetFlag(FLAGS_rate);
  config->batch_size = absl::GetFlag(FLAGS_batch_size);
  config->pools = absl::GetFlag(FLAGS_pools);
  config->prepopulate = absl::GetFlag(FLAGS_prepopulate);
  config->population = absl::GetFlag(FLAGS_population);
  config->deadline = absl::GetFlag(FLAGS_deadline);
  config->frontends = absl::GetFlag(FLAGS_frontends);
  if (config->frontends == 0) {
    config->frontends = config->workload_name == "sync" ? 8 : 4;
  }
  config->users_per_frontend = absl::GetFlag(FLAGS_users_per_frontend);
  if (config->users_per_frontend == 0) {
    config->users_per_frontend =
        config->workload_name == "expiry" ? 100000 : 125000;
  }
  config->lease = absl::GetFlag(FLAGS_lease);
  config->expiring_lease = absl::GetFlag(FLAGS_expiring_lease);
  config->probe_window = absl::GetFlag(FLAGS_probe_window);
  config->interval = absl::GetFlag(FLAGS_interval);
  config->churn_every = absl::GetFlag(FLAGS_churn_every);
  config->server_pid = absl::GetFlag(FLAGS_server_pid);
  config->max_rss_spread = absl::GetFlag(FLAGS_max_rss_spread);
  config->max_p99_drift = absl::GetFlag(FLAGS_max_p99_drift);
  config->progress = absl::GetFlag(FLAGS_progress);
  const std::string format = absl::GetFlag(FLAGS_format);
  std::string error;
  if (!ParseWorkload(config->workload_name, &config->workload)) {
    error =
        "--workload must be current_jam, arrivals, refresh, has_capacity, "
        "batch, arrivals_fe, sync, expiry or soak";
  } else if (config->concurrency < 1 || config->concurrency > 100000) {
    error = "--concurrency must be 1 to 100000";
  } else if (config->channels < 1 || config->channels > 1000) {
    error = "--channels must be 1 to 1000";
  } else if (config->warmup < absl::ZeroDuration() ||
             config->warmup > absl::Hours(1)) {
    error = "--warmup must be 0 to 1h";
  } else if (config->duration < absl::ZeroDuration() ||
             config->duration > absl::Hours(24)) {
    error = "--duration must be 0 to 24h";
  } else if (!(config->rate >= 0 && config->rate <= 1e7)) {
    error = "--rate must be 0 (closed loop) to 1e7 calls/s";
  } else if (config->batch_size < 1 || config->batch_size > 1000) {
    error = "--batch_size must be 1 to 1000";
  } else if (!config->pools.empty() &&
             (config->workload != WorkloadKind::kBatch ||
              static_cast<int>(config->pools.size()) > config->concurrency ||
              std::find(config->pools.begin(), config->pools.end(), "") !=
                  config->pools.end())) {
    error =
        "--pools: only with --workload=batch, at most --concurrency names, "
        "none empty";
  } else if (config->prepopulate < 0 || config->prepopulate > 10000000) {
    error = "--prepopulate must be 0 to 1e7";
  } else if (config->population < 0 || config->population > 100000000) {
    error = "--population must be 0 to 1e8";
  } else if (config->deadline <= absl::ZeroDuration() ||
             config->deadline > absl::Hours(1)) {
    error = "--deadline must be more than 0 and at most 1h";
  } else if (config->frontends < 1 || config->frontends > 1000) {
    error = "--frontends must be 1 to 1000";
  } else if (HasFrontEnds(config->workload) &&
             config->frontends >
                 std::min(config->channels, config->concurrency)) {
    error =
        "arrivals_fe, expiry: --frontends must be at most --channels (and "
        "--concurrency)";
  } else if (config->users_per_frontend < 0 ||
             config->users_per_frontend > 10000000) {
    error = "--users_per_frontend must be 0 to 1e7";
  } else if (config->lease < absl::Milliseconds(500) ||
             config->lease > absl::Hours(1)) {
    error = "--lease must be 500ms to 1h";
  } else if (config->expiring_lease < absl::Milliseconds(500) ||
             config->expiring_lease > absl::Minutes(5)) {
    error = "--expiring_lease must be 500ms to 5m";
  } else if (config->probe_window <= absl::ZeroDuration()) {
    error = "--probe_window must be more than 0";
  } else if (config->workload == WorkloadKind::kExpiry &&
             config->duration * 2 / 3 < config->expiring_lease +
                                            config->probe_window +
                                            absl::Seconds(1)) {
    // The Sync goes out a third into the window; the removal must be
    // measured inside it, with a second for the Sync itself.
    error =
        "expiry: --duration must be at least 1.5 x (--expiring_lease + "
        "--probe_window + 1s)";
  } else if (config->workload == WorkloadKind::kSoak && config->rate <= 0) {
    error = "soak: --rate must be more than 0 (it runs in an open loop)";
  } else if (config->interval < absl::Seconds(1) ||
             config->churn_every < absl::Seconds(1)) {
    error = "--interval and --churn_every must be at least 1s";
  } else if (config->server_pid < 0 || !(config->max_rss_spread >= 0) ||
             !(config->max_p99_drift >= 0)) {
    error = "--server_pid, --max_rss_spread and --max_p99_drift must be >= 0";
  } else if (format != "text" && format != "json") {
    error = "--format must be text or json";
  }
  if (!error.empty()) {
    std::cerr << "jam-bench: " << error << "\n";
    return false;
  }
  config->json = format == "json";
  config->channels = std::min(config->channels, config->concurrency);
  return true;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Load generator for the jam balancer (gRPC callback API).\n"
      "Usage: jam-bench [--target=HOST:PORT] "
      "[--tls_ca=PEM [--tls_cert=PEM --tls_key=PEM]] "
      "[--workload=current_jam|arrivals|refresh|has_capacity|batch|"
      "arrivals_fe|sync|expiry|soak] "
      "[--concurrency=N] [--channels=N] [--warmup=2s] [--duration=10s] "
      "[--rate=CALLS_PER_S] [--batch_size=N] [--pools=NAME,...] "
      "[--prepopulate=JAMS] "
      "[--frontends=N] [--users_per_frontend=N] [--lease=10s] "
      "[--expiring_lease=1s] [--probe_window=500ms] [--format=text|json]\n"
      "expiry adds to the report \"expiry\":{users, lease_s, sync_s, "
      "expired_after_s, removed, window_s, before and during: {calls, "
      "p50_us, p99_us, p999_us, max_us}} (the other front ends' calls "
      "started in the window before the Sync and in the one after the "
      "lease ran out).\n"
      "sync reports, as JSON: workload, target, frontends, "
      "users_per_frontend, jam_users, lease_s, jams, users, wall_s (first "
      "Sync sent until the last answered), users_per_s, frontend_s (each "
      "front end's Sync time, by front end), frontend_s_max, errors_total, "
      "errors (BAD_RESPONSE: a Sync answered other counts than sent).\n"
      "soak reports the intervals, the churn, the summary and its criteria "
      "(bench/load/soak.h), and exits 1 unless every criterion is met.\n"
      "Exit status: 0 all calls succeeded, 1 a call failed, 2 wrong usage.");
  const std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::cerr << "jam-bench: unexpected argument " << rest[1] << "\n";
    return kExitUsage;
  }
  Config config;
  if (!ReadFlags(&config)) return kExitUsage;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      TlsCredentials();
  if (!credentials.ok()) {
    std::cerr << "jam-bench: " << credentials.status().message() << "\n";
    return kExitUsage;
  }
  const bool sync = config.workload == WorkloadKind::kSync;
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> channels =
      ConnectChannels(config.target, sync ? config.frontends : config.channels,
                      *credentials);
  if (!channels.ok()) {
    std::cerr << "jam-bench: " << channels.status().message() << "\n";
    return kExitFailed;
  }
  absl::StatusOr<uint32_t> max_users = SetUpServer(channels->front(), config);
  if (!max_users.ok()) {
    std::cerr << "jam-bench: " << max_users.status().message() << "\n";
    return kExitFailed;
  }
  if (absl::GetFlag(FLAGS_prepopulate_only)) return kExitOk;
  if (sync) {
    const SyncResult result = RunSync(*channels, config);
    PrintSyncReport(config, result, std::cout);
    std::cout.flush();
    if (!result.first_error.empty()) {
      std::cerr << "jam-bench: first error: " << result.first_error << "\n";
    }
    return result.ErrorCount() == 0 ? kExitOk : kExitFailed;
  }
  if (config.workload == WorkloadKind::kSoak) {
    const SoakResult result = RunSoak(*channels, config);
    const SoakSummary summary = SummarizeSoak(result, config);
    PrintSoakReport(config, result, summary, std::cout);
    std::cout.flush();
    if (!result.drained) {
      std::cerr << "jam-bench: calls still in flight well past their "
                   "deadline\n";
      std::cerr.flush();
      std::_Exit(kExitFailed);
    }
    return summary.passed ? kExitOk : kExitFailed;
  }
  std::unique_ptr<KeepAlives> keepalives;
  if (HasFrontEnds(config.workload)) {
    const absl::Status started = StartSessions(*channels, config);
    if (!started.ok()) {
      std::cerr << "jam-bench: " << started.message() << "\n";
      return kExitFailed;
    }
    keepalives = std::make_unique<KeepAlives>(*channels, config);
    keepalives->Start();
  }
  Driver driver(config, *channels, *max_users);
  std::unique_ptr<ExpiringFrontEnd> expiring;
  if (config.workload == WorkloadKind::kExpiry) {
    absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> own =
        ConnectChannels(config.target, 1, *credentials);
    if (!own.ok()) {
      std::cerr << "jam-bench: " << own.status().message() << "\n";
      return kExitFailed;
    }
    expiring = std::make_unique<ExpiringFrontEnd>(own->front(), config, driver);
    // A third into the measured window (the driver starts right after).
    expiring->Start(
        std::chrono::steady_clock::now() +
        absl::ToChronoNanoseconds(config.warmup + config.duration / 3));
  }
  const bool drained = driver.Run();
  Totals totals = driver.Collect();
  ReportExtra extra;
  if (!config.pools.empty()) {
    // Pool names are plain ids (the server refuses others), safe in JSON.
    extra.json_members = absl::StrCat(
        "\"pools\":[\"", absl::StrJoin(config.pools, "\",\""), "\"],");
    extra.text =
        absl::StrCat("pools        ", absl::StrJoin(config.pools, ", "),
                     " (slot i: pool i % ", config.pools.size(), ")\n");
  }
  std::string expiry_error;
  if (expiring != nullptr) {
    const ExpiryResult result = expiring->Finish();
    extra.json_members += ExpiryJsonMembers(result, totals, config);
    extra.text += ExpiryTextLines(result, totals, config);
    if (!result.error.empty()) {
      expiry_error = result.error;
      ++totals.bad_responses;  // Counted with the run's errors.
    }
  }
  if (keepalives != nullptr) {
    keepalives->Stop();
    keepalives->AddErrors(&totals);
    if (config.progress) {
      std::cerr << "jam-bench: " << keepalives->sent() << " keepalives, "
                << keepalives->failed() << " failed\n";
    }
  }
  PrintReport(config, totals, driver.WindowSeconds(), driver.late_starts(),
              std::cout, extra);
  std::cout.flush();
  std::string first_error = driver.FirstError();
  if (first_error.empty() && keepalives != nullptr) {
    first_error = keepalives->first_error();
  }
  if (first_error.empty()) first_error = expiry_error;
  if (!first_error.empty()) {
    std::cerr << "jam-bench: first error: " << first_error << "\n";
  }
  if (!drained) {
    // Calls in flight still point into the driver: do not tear it down.
    std::cerr.flush();
    std::_Exit(kExitFailed);
  }
  return totals.ErrorCount() == 0 ? kExitOk : kExitFailed;
}

}  // namespace
}  // namespace bench
}  // namespace jambalancer

int main(int argc, char** argv) { return jambalancer::bench::Main(argc, argv); }
