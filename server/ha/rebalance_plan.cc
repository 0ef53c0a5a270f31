#include "server/ha/rebalance_plan.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

namespace jambalancer {
namespace {

// FNV-1a over pool, a separator and address: the same on every replica
// (absl::Hash is seeded per process).
uint64_t TieBreak(const std::string& pool, const std::string& address) {
  uint64_t hash = 1469598103934665603ull;
  auto mix = [&hash](const std::string& text) {
    for (unsigned char c : text) {
      hash ^= c;
      hash *= 1099511628211ull;
    }
  };
  mix(pool);
  hash ^= 0xff;
  hash *= 1099511628211ull;
  mix(address);
  return hash;
}

}  // namespace

std::map<std::string, std::string> PlanLeaders(const ElectionQueues& queues) {
  std::set<std::string> replicas;
  size_t pool_count = 0;
  for (const auto& [pool, candidates] : queues) {
    if (candidates.empty()) continue;
    ++pool_count;
    for (const ElectionCandidate& candidate : candidates) {
      replicas.insert(candidate.address);
    }
  }
  std::map<std::string, std::string> plan;
  if (replicas.empty()) return plan;
  const size_t share = (pool_count + replicas.size() - 1) / replicas.size();
  std::map<std::string, size_t> load;

  // Leaderships stay, the longest-held first, up to each replica's share:
  // a replica's pools of long standing never move for one that just failed
  // over to it.
  std::vector<std::pair<int64_t, std::string>> by_age;
  for (const auto& [pool, candidates] : queues) {
    if (!candidates.empty()) {
      by_age.emplace_back(candidates.front().mod_revision, pool);
    }
  }
  std::sort(by_age.begin(), by_age.end());
  for (const auto& [since, pool] : by_age) {
    const std::string& leader = queues.at(pool).front().address;
    if (load[leader] < share) {
      ++load[leader];
      plan[pool] = leader;
    }
  }
  // The rest go to their least-loaded candidate.
  for (const auto& [pool, candidates] : queues) {
    if (candidates.empty() || plan.count(pool) > 0) continue;
    const ElectionCandidate* best = nullptr;
    for (const ElectionCandidate& candidate : candidates) {
      if (best == nullptr ||
          std::make_tuple(-static_cast<int64_t>(load[candidate.address]),
                          TieBreak(pool, candidate.address)) >
              std::make_tuple(-static_cast<int64_t>(load[best->address]),
                              TieBreak(pool, best->address))) {
        best = &candidate;
      }
    }
    ++load[best->address];
    plan[pool] = best->address;
  }
  return plan;
}

RebalanceActions ActionsFor(const std::string& self,
                            const ElectionQueues& queues,
                            const std::map<std::string, std::string>& plan) {
  RebalanceActions actions;
  for (const auto& [pool, owner] : plan) {
    const std::vector<ElectionCandidate>& queue = queues.at(pool);
    if (queue.front().address == owner || owner == self) continue;
    if (queue.front().address == self) {
      if (queue.size() > 1 && queue[1].address == owner) {
        actions.yield.push_back(pool);
      }
      continue;
    }
    // Standing between the leader and the planned owner: step back.
    for (size_t i = 1; i < queue.size(); ++i) {
      if (queue[i].address == owner) break;
      if (queue[i].address == self) {
        actions.requeue.push_back(pool);
        break;
      }
    }
  }
  return actions;
}

}  // namespace jambalancer
