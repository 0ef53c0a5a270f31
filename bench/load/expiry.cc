#include "bench/load/expiry.h"

#include <grpcpp/channel.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/load/config.h"
#include "bench/load/driver.h"
#include "bench/load/recorder.h"
#include "bench/load/sync.h"
#include "client/balancer_client.h"

namespace jambalancer {
namespace bench {
namespace {

constexpr char kJamPrefix[] = "expiring";

std::string Describe(const absl::Status& status, absl::string_view call) {
  return absl::StrCat(StatusCodeName(static_cast<int>(status.code())), ": ",
                      call, " of ", kExpiringFrontendId, ": ",
                      status.message());
}

// One probe window's calls as JSON members "calls":N,"p50_us":...
std::string ProbeJson(const ProbeTotals& probe) {
  return absl::StrFormat(
      "{\"calls\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
      "\"max_us\":%.1f}",
      probe.calls, probe.PercentileMicros(0.5), probe.PercentileMicros(0.99),
      probe.PercentileMicros(0.999), probe.max_ns / 1e3);
}

std::string ProbeText(absl::string_view name, const ProbeTotals& probe) {
  return absl::StrFormat(
      "%-12s %d calls  p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f µs\n", name,
      probe.calls, probe.PercentileMicros(0.5), probe.PercentileMicros(0.99),
      probe.PercentileMicros(0.999), probe.max_ns / 1e3);
}

}  // namespace

ExpiringFrontEnd::ExpiringFrontEnd(std::shared_ptr<grpc::Channel> channel,
                                   const Config& config, Driver& driver)
    : channel_(std::move(channel)), config_(config), driver_(driver) {}

ExpiringFrontEnd::~ExpiringFrontEnd() {
  if (thread_.joinable()) thread_.join();
}

void ExpiringFrontEnd::Start(Clock::time_point sync_at) {
  thread_ = std::thread([this, sync_at] { Run(sync_at); });
}

void ExpiringFrontEnd::Run(Clock::time_point sync_at) {
  const std::vector<BalancerClient::JamUsers> truth =
      SyncTruth(kJamPrefix, config_.users_per_frontend);
  const auto window = absl::ToChronoNanoseconds(config_.probe_window);
  driver_.SetProbe(0, sync_at - window, sync_at);
  std::this_thread::sleep_until(sync_at);
  BalancerClient::Options options;
  options.deadline = config_.deadline;
  options.frontend_id = kExpiringFrontendId;
  BalancerClient client(channel_, options);
  const Clock::time_point sent = Clock::now();
  absl::StatusOr<v1::SyncResponse> synced =
      client.Sync(config_.expiring_lease, truth);
  const Clock::time_point answered = Clock::now();
  result_.sync_seconds = std::chrono::duration<double>(answered - sent).count();
  if (!synced.ok()) {
    result_.error = Describe(synced.status(), "Sync");
    return;
  }
  result_.users = synced->user_count();
  // The server's clock is this machine's: its expiry on the steady clock.
  const Clock::time_point expiry =
      answered +
      absl::ToChronoNanoseconds(
          absl::FromUnixMillis(synced->lease_expires_unix_ms()) - absl::Now());
  result_.expired_after_s =
      std::chrono::duration<double>(expiry - sent).count();
  driver_.SetProbe(1, expiry, expiry + window);
}

ExpiryResult ExpiringFrontEnd::Finish() {
  if (thread_.joinable()) thread_.join();
  if (!result_.error.empty()) return result_;
  BalancerClient client(channel_, BalancerClient::Options());
  absl::StatusOr<v1::ListSessionsResponse> sessions = client.ListSessions();
  if (!sessions.ok()) {
    result_.error = Describe(sessions.status(), "ListSessions");
    return result_;
  }
  bool session_gone = true;
  for (const v1::Session& session : sessions->sessions()) {
    if (session.frontend_id() == kExpiringFrontendId) session_gone = false;
  }
  const std::string first_jam = absl::StrCat(kJamPrefix, "-0");
  absl::StatusOr<v1::GetJamResponse> jam = client.GetJam(first_jam);
  if (!jam.ok()) {
    result_.error = Describe(jam.status(), "GetJam");
    return result_;
  }
  result_.removed = session_gone && jam->members().empty();
  if (!result_.removed) {
    result_.error = absl::StrFormat(
        "BAD_RESPONSE: after the run, %s still has %s and %s has %d members",
        kExpiringFrontendId, session_gone ? "no session" : "a session",
        first_jam, jam->members_size());
  }
  return result_;
}

std::string ExpiryJsonMembers(const ExpiryResult& result, const Totals& totals,
                              const Config& config) {
  return absl::StrFormat(
      "\"expiry\":{\"users\":%d,\"lease_s\":%.3f,\"sync_s\":%.4f,"
      "\"expired_after_s\":%.4f,\"removed\":%s,\"window_s\":%.3f,"
      "\"before\":%s,\"during\":%s},",
      result.users, absl::ToDoubleSeconds(config.expiring_lease),
      result.sync_seconds, result.expired_after_s,
      result.removed ? "true" : "false",
      absl::ToDoubleSeconds(config.probe_window), ProbeJson(totals.probes[0]),
      ProbeJson(totals.probes[1]));
}

std::string ExpiryTextLines(const ExpiryResult& result, const Totals& totals,
                            const Config& config) {
  return absl::StrFormat(
             "expiry       %s: %d users synced in %.3f s, lease %s ran out "
             "%.3f s after the Sync was sent; removed: %s\n",
             kExpiringFrontendId, result.users, result.sync_seconds,
             absl::FormatDuration(config.expiring_lease),
             result.expired_after_s, result.removed ? "yes" : "no") +
         ProbeText("before", totals.probes[0]) +
         ProbeText("during", totals.probes[1]);
}

}  // namespace bench
}  // namespace jambalancer
