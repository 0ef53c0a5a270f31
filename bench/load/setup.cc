#include "bench/load/setup.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/load/config.h"
#include "client/balancer_client.h"
#include "jambalancer/v1/jam_balancer.pb.h"

namespace jambalancer {
namespace bench {
namespace {

// Jams filled by one Batch call.
constexpr int kPrepopulateBatch = 500;

}  // namespace

std::string PrepopulatedJamId(int i) { return absl::StrFormat("pre-%07d", i); }

std::string FrontendId(int f) { return absl::StrCat("bench-fe-", f); }

absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> ConnectChannels(
    const std::string& target, int channels,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();
  std::vector<std::shared_ptr<grpc::Channel>> connected;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    // Each channel its own subchannel, hence its own TCP connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("jam_bench.channel", i);
    auto channel = grpc::CreateCustomChannel(target, credentials, args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::seconds(5))) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to ", target, " within 5s"));
    }
    connected.push_back(std::move(channel));
  }
  return connected;
}

absl::StatusOr<uint32_t> SetUpServer(
    const std::shared_ptr<grpc::Channel>& channel, const Config& config) {
  BalancerClient::Options options;
  options.deadline = absl::Seconds(30);
  BalancerClient client(channel, options);
  uint32_t max_users = 0;
  if (config.pools.empty()) {
    auto stats = client.GetStats();
    if (!stats.ok()) {
      return absl::Status(
          stats.status().code(),
          absl::StrCat("GetStats failed: ", stats.status().ToString()));
    }
    max_users = stats->max_users();
  } else {
    // Each named pool must exist; the first one's max_users is the run's.
    for (const std::string& pool : config.pools) {
      v1::BatchRequest request;
      request.set_pool(pool);
      request.add_operations()->mutable_get_stats();
      auto response = client.Batch(request);
      if (!response.ok()) {
        return absl::Status(
            response.status().code(),
            absl::StrCat("GetStats of pool \"", pool,
                         "\" failed: ", response.status().ToString()));
      }
      if (max_users == 0 && response->results_size() == 1) {
        max_users = response->results(0).get_stats().max_users();
      }
    }
  }
  // A server that does not say (the empty server) gets the default.
  if (max_users == 0) max_users = kDefaultMaxUsers;
  const absl::Time started = absl::Now();
  // No pool named: the default pool, as before pools existed.
  const std::vector<std::string> pools =
      config.pools.empty() ? std::vector<std::string>{""} : config.pools;
  for (const std::string& pool : pools) {
    for (int first = 0; first < config.prepopulate;
         first += kPrepopulateBatch) {
      v1::BatchRequest request;
      if (!pool.empty()) request.set_pool(pool);
      const int last = std::min(config.prepopulate, first + kPrepopulateBatch);
      for (int i = first; i < last; ++i) {
        v1::RefreshRequest* refresh =
            request.add_operations()->mutable_refresh();
        refresh->set_jam_id(PrepopulatedJamId(i));
        for (uint32_t u = 0; u <= i % max_users; ++u) {
          refresh->add_user_ids(absl::StrCat(refresh->jam_id(), "-u", u));
        }
      }
      auto response = client.Batch(request);
      if (!response.ok()) {
        return absl::Status(response.status().code(),
                            absl::StrCat("prepopulate: Batch failed: ",
                                         response.status().ToString()));
      }
    }
  }
  if (config.prepopulate > 0 && config.progress) {
    std::cerr << absl::StrFormat(
        "jam-bench: prepopulated %d jams%s in %s\n", config.prepopulate,
        pools.size() > 1 ? absl::StrFormat(" in each of %d pools", pools.size())
                         : "",
        absl::FormatDuration(
            absl::Trunc(absl::Now() - started, absl::Milliseconds(1))));
  }
  return max_users;
}

}  // namespace bench
}  // namespace jambalancer
