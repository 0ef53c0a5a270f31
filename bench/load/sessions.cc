#include "bench/load/sessions.h"

#include <grpcpp/channel.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bench/load/config.h"
#include "bench/load/recorder.h"
#include "bench/load/setup.h"
#include "client/balancer_client.h"

namespace jambalancer {
namespace bench {
namespace {

std::unique_ptr<BalancerClient> FrontendClient(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    const Config& config, int f) {
  BalancerClient::Options options;
  options.deadline = config.deadline;
  options.frontend_id = FrontendId(f);
  return std::make_unique<BalancerClient>(channels[f % channels.size()],
                                          options);
}

}  // namespace

absl::Status StartSessions(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    const Config& config) {
  for (int f = 0; f < config.frontends; ++f) {
    auto response = FrontendClient(channels, config, f)->Sync(config.lease, {});
    if (!response.ok()) {
      return absl::Status(
          response.status().code(),
          absl::StrCat("Sync of front end ", FrontendId(f),
                       " failed: ", response.status().ToString()));
    }
  }
  return absl::OkStatus();
}

KeepAlives::KeepAlives(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    const Config& config)
    : interval_(config.lease / 3) {
  for (int f = 0; f < config.frontends; ++f) {
    clients_.push_back(FrontendClient(channels, config, f));
  }
}

void KeepAlives::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void KeepAlives::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void KeepAlives::AddErrors(Totals* totals) const {
  for (int code = 0; code < kStatusCodes; ++code) {
    totals->errors[code] += errors_[code];
  }
}

void KeepAlives::Loop() {
  auto next = std::chrono::steady_clock::now();
  while (true) {
    next += absl::ToChronoNanoseconds(interval_);
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_until(lock, next, [this] { return stop_; })) return;
    }
    for (const std::unique_ptr<BalancerClient>& client : clients_) {
      const absl::Status status = client->KeepAlive().status();
      ++sent_;
      if (status.ok()) continue;
      ++failed_;
      const int code =
          std::min(static_cast<int>(status.code()), kStatusCodes - 1);
      ++errors_[code];
      if (first_error_.empty()) {
        first_error_ =
            absl::StrCat(StatusCodeName(code), ": KeepAlive of ",
                         client->options().frontend_id, ": ", status.message());
      }
    }
  }
}

}  // namespace bench
}  // namespace jambalancer
