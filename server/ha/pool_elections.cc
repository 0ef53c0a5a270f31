#include "server/ha/pool_elections.h"

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/util/log.h"

namespace jambalancer {
namespace {

// Rounds the queues must stay the same before the rebalancer acts on them.
constexpr int kSettledRounds = 2;

}  // namespace

absl::StatusOr<std::unique_ptr<PoolElections>> PoolElections::Start(
    PoolElectionsOptions options, OnChange on_change) {
  if (options.pools.empty()) {
    return absl::InvalidArgumentError("pool elections: no pool");
  }
  // The rebalancer's reads go through a client of their own, made as the
  // elections' are (endpoints, TLS).
  absl::StatusOr<std::unique_ptr<EtcdClient>> reader =
      ConnectEtcd(options.election);
  if (!reader.ok()) return reader.status();
  std::unique_ptr<PoolElections> elections;
  std::vector<std::pair<std::string, std::unique_ptr<Leadership>>> started;
  for (const std::string& pool : options.pools) {
    LeadershipOptions election = options.election;
    election.election_name = ElectionName(options.election.election_name, pool);
    absl::StatusOr<std::unique_ptr<Leadership>> leadership = Leadership::Start(
        election,
        [on_change, pool](const LeaderView& view) { on_change(pool, view); });
    if (!leadership.ok()) return leadership.status();
    started.emplace_back(pool, *std::move(leadership));
  }
  elections.reset(new PoolElections(std::move(options), *std::move(reader)));
  for (auto& [pool, leadership] : started) {
    elections->leaderships_[pool] = std::move(leadership);
  }
  if (elections->options_.rebalance_interval > absl::ZeroDuration()) {
    elections->rebalancer_ =
        std::thread([raw = elections.get()] { raw->RunRebalancer(); });
  }
  return elections;
}

PoolElections::PoolElections(PoolElectionsOptions options,
                             std::unique_ptr<EtcdClient> client)
    : options_(std::move(options)), client_(std::move(client)) {}

PoolElections::~PoolElections() {
  StopRebalancer();
  leaderships_.clear();
}

const Leadership* PoolElections::Find(const std::string& pool) const {
  auto it = leaderships_.find(pool);
  return it == leaderships_.end() ? nullptr : it->second.get();
}

void PoolElections::Resign(absl::Duration timeout) {
  StopRebalancer();
  // All pools at once: each may wait up to `timeout` for etcd, and a
  // shutdown must not take a timeout per pool.
  std::vector<std::thread> resigning;
  for (auto& [pool, leadership] : leaderships_) {
    resigning.emplace_back([leadership = leadership.get(), timeout] {
      leadership->Resign(timeout);
    });
  }
  for (std::thread& thread : resigning) thread.join();
}

void PoolElections::StopRebalancer() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (rebalancer_.joinable()) rebalancer_.join();
}

absl::StatusOr<ElectionQueues> PoolElections::ReadQueues() const {
  // Keys are "<prefix>/<pool>/<lease>", one per candidate.
  const std::string prefix = options_.election.election_name + "/";
  absl::StatusOr<std::vector<EtcdKeyValue>> keys =
      client_->Range(prefix, EtcdClient::PrefixEnd(prefix));
  if (!keys.ok()) return keys.status();
  ElectionQueues queues;
  for (const EtcdKeyValue& kv : *keys) {
    const std::string rest = kv.key.substr(prefix.size());
    const size_t slash = rest.find('/');
    if (slash == std::string::npos || slash == 0) continue;
    queues[rest.substr(0, slash)].push_back(
        {kv.value, kv.create_revision, kv.mod_revision});
  }
  for (auto& [pool, queue] : queues) {
    std::sort(queue.begin(), queue.end(),
              [](const ElectionCandidate& a, const ElectionCandidate& b) {
                return a.create_revision < b.create_revision;
              });
  }
  return queues;
}

void PoolElections::RunRebalancer() {
  const std::string& self = options_.election.advertise_address;
  // Each queue's candidates (addresses, and when its leader began) in the
  // previous round, and for how many rounds in a row they were the same.
  std::map<std::string, std::vector<std::string>> previous;
  int same_rounds = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]()
                          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopping),
                           options_.rebalance_interval);
      if (stop_) return;
    }
    absl::StatusOr<ElectionQueues> queues = ReadQueues();
    if (!queues.ok()) continue;  // The elections log etcd's troubles.
    std::map<std::string, std::vector<std::string>> members;
    for (const auto& [pool, queue] : *queues) {
      std::vector<std::string>& addresses = members[pool];
      for (const ElectionCandidate& candidate : queue) {
        addresses.push_back(candidate.address);
      }
      std::sort(addresses.begin(), addresses.end());
      // A leader that has not proclaimed itself yet looks long-standing:
      // wait for its proclamation.
      if (!queue.empty()) {
        addresses.push_back(absl::StrCat(queue.front().mod_revision));
      }
    }
    same_rounds = members == previous ? same_rounds + 1 : 0;
    previous = std::move(members);
    // A replica that joins campaigns in its pools one by one, and one that
    // dies leaves its keys until its lease ends: act only on queues that
    // stayed the same for kSettledRounds rounds.
    if (same_rounds < kSettledRounds) continue;
    const std::map<std::string, std::string> plan = PlanLeaders(*queues);
    const RebalanceActions actions = ActionsFor(self, *queues, plan);
    // Both hand the pool on: yielding as its leader, stepping back as a
    // candidate ahead of the planned leader.
    for (const auto& [pools, message] :
         {std::pair{&actions.yield, "rebalance: yielding a pool's leadership"},
          std::pair{&actions.requeue,
                    "rebalance: stepping back in a pool's queue"}}) {
      for (const std::string& pool : *pools) {
        auto it = leaderships_.find(pool);
        if (it == leaderships_.end()) continue;
        Log(LogLevel::kInfo, message,
            {{"pool", pool}, {"planned_leader", plan.at(pool)}});
        it->second->Yield();
      }
    }
  }
}

}  // namespace jambalancer
