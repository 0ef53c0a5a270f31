#include "bench/load/sync.h"

#include <grpcpp/channel.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "bench/load/config.h"
#include "bench/load/recorder.h"
#include "bench/load/report.h"
#include "bench/load/setup.h"
#include "client/balancer_client.h"

namespace jambalancer {
namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

std::vector<BalancerClient::JamUsers> SyncTruth(absl::string_view prefix,
                                                int users) {
  std::vector<BalancerClient::JamUsers> jams;
  jams.reserve((users + kSyncJamUsers - 1) / kSyncJamUsers);
  for (int u = 0; u < users; ++u) {
    if (u % kSyncJamUsers == 0) {
      jams.push_back({absl::StrCat(prefix, "-", u / kSyncJamUsers), {}});
      jams.back().user_ids.reserve(kSyncJamUsers);
    }
    jams.back().user_ids.push_back(
        absl::StrCat(jams.back().jam_id, "-", u % kSyncJamUsers));
  }
  return jams;
}

uint64_t SyncResult::ErrorCount() const {
  return CountErrors(errors, bad_responses);
}

SyncResult RunSync(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                   const Config& config) {
  const int frontends = config.frontends;
  const absl::Time built = absl::Now();
  std::vector<std::vector<BalancerClient::JamUsers>> truths(frontends);
  std::vector<std::unique_ptr<BalancerClient>> clients;
  SyncResult result;
  for (int f = 0; f < frontends; ++f) {
    truths[f] = SyncTruth(absl::StrCat("sync-", f), config.users_per_frontend);
    result.jams += truths[f].size();
    result.users += config.users_per_frontend;
    BalancerClient::Options options;
    options.deadline = config.deadline;
    options.frontend_id = FrontendId(f);
    clients.push_back(std::make_unique<BalancerClient>(
        channels[f % channels.size()], options));
  }
  if (config.progress) {
    std::cerr << absl::StrFormat(
        "jam-bench: built %d front ends' truths (%d users) in %s\n", frontends,
        result.users,
        absl::FormatDuration(
            absl::Trunc(absl::Now() - built, absl::Milliseconds(1))));
  }

  std::vector<Clock::time_point> begins(frontends), ends(frontends);
  std::vector<absl::StatusOr<v1::SyncResponse>> responses(
      frontends, absl::UnknownError("not run"));
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int f = 0; f < frontends; ++f) {
    threads.emplace_back([&, f] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      begins[f] = Clock::now();
      responses[f] = clients[f]->Sync(config.lease, truths[f]);
      ends[f] = Clock::now();
    });
  }
  go.store(true, std::memory_order_release);
  for (std::thread& thread : threads) thread.join();

  const Clock::time_point first =
      *std::min_element(begins.begin(), begins.end());
  const Clock::time_point last = *std::max_element(ends.begin(), ends.end());
  result.wall_seconds = std::chrono::duration<double>(last - first).count();
  for (int f = 0; f < frontends; ++f) {
    result.frontend_seconds.push_back(
        std::chrono::duration<double>(ends[f] - begins[f]).count());
    std::string error;
    if (!responses[f].ok()) {
      const int code = std::min(static_cast<int>(responses[f].status().code()),
                                kStatusCodes - 1);
      ++result.errors[code];
      error = absl::StrCat(StatusCodeName(code), ": Sync of ", FrontendId(f),
                           ": ", responses[f].status().message());
    } else if (responses[f]->jam_count() != truths[f].size() ||
               responses[f]->user_count() !=
                   static_cast<uint64_t>(config.users_per_frontend)) {
      ++result.bad_responses;
      error = absl::StrFormat(
          "BAD_RESPONSE: Sync of %s answered %d jams and %d users, not %d "
          "and %d",
          FrontendId(f), responses[f]->jam_count(), responses[f]->user_count(),
          truths[f].size(), config.users_per_frontend);
    }
    if (!error.empty() && result.first_error.empty()) {
      result.first_error = std::move(error);
    }
  }
  return result;
}

void PrintSyncReport(const Config& config, const SyncResult& result,
                     std::ostream& out) {
  const NamedErrors errors = NameErrors(result.errors, result.bad_responses);
  const double users_per_s =
      result.wall_seconds > 0 ? result.users / result.wall_seconds : 0;
  const double max_seconds =
      result.frontend_seconds.empty()
          ? 0
          : *std::max_element(result.frontend_seconds.begin(),
                              result.frontend_seconds.end());
  if (config.json) {
    std::string json = absl::StrFormat(
        "{\"workload\":\"%s\",\"target\":\"%s\",\"frontends\":%d,"
        "\"users_per_frontend\":%d,\"jam_users\":%d,\"lease_s\":%.3f,"
        "\"jams\":%d,\"users\":%d,\"wall_s\":%.4f,\"users_per_s\":%.1f,"
        "\"frontend_s\":[",
        config.workload_name, config.target, config.frontends,
        config.users_per_frontend, kSyncJamUsers,
        absl::ToDoubleSeconds(config.lease), result.jams, result.users,
        result.wall_seconds, users_per_s);
    json += absl::StrJoin(result.frontend_seconds, ",",
                          [](std::string* s, double seconds) {
                            absl::StrAppendFormat(s, "%.4f", seconds);
                          });
    absl::StrAppendFormat(&json,
                          "],\"frontend_s_max\":%.4f,\"errors_total\":%d,"
                          "\"errors\":{",
                          max_seconds, result.ErrorCount());
    json += ErrorsJsonMembers(errors);
    json += "}}\n";
    out << json;
    return;
  }
  out << absl::StrFormat(
      "workload     sync on %s: %d front ends x %d users (jams of %d) at "
      "once\n"
      "wall         %.3f s from the first Sync sent until the last answered "
      "= %.0f users/s\n"
      "front ends   %s s\n",
      config.target, config.frontends, config.users_per_frontend, kSyncJamUsers,
      result.wall_seconds, users_per_s,
      absl::StrJoin(result.frontend_seconds, " ",
                    [](std::string* s, double seconds) {
                      absl::StrAppendFormat(s, "%.3f", seconds);
                    }));
  PrintErrorsLine(errors, out);
}

}  // namespace bench
}  // namespace jambalancer
