#ifndef JAM_BALANCER_SERVER_HA_REBALANCE_PLAN_H_
#define JAM_BALANCER_SERVER_HA_REBALANCE_PLAN_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace jambalancer {

// One replica campaigning in a pool's election: its address, its key's
// create revision (etcd's queue order: the lowest leads) and mod revision
// (a leader proclaims itself when it wins, so for the leader this is when
// its leadership began).
struct ElectionCandidate {
  std::string address;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;

  friend bool operator==(const ElectionCandidate& a,
                         const ElectionCandidate& b) {
    return a.address == b.address && a.create_revision == b.create_revision &&
           a.mod_revision == b.mod_revision;
  }
  friend bool operator!=(const ElectionCandidate& a,
                         const ElectionCandidate& b) {
    return !(a == b);
  }
};

// Every pool's election as read from etcd: pool -> its candidates in queue
// order (the first leads; its create revision is the pool's epoch).
using ElectionQueues = std::map<std::string, std::vector<ElectionCandidate>>;

// Which replica should lead each pool (pools without candidates are left
// out). Deterministic: every replica computes the same plan from the same
// queues. Leaderships stay where they are, the longest-held first (by the
// leader's mod revision), while their replica leads at most
// ceil(pools / replicas); the others go to the
// least-loaded candidate of their pool (ties broken by a hash of pool and
// address). A replica that joins thus takes about a share of 1/replicas of
// the pools, and only the pools above a replica's share move; a replica
// that dies leaves only its own pools to move.
std::map<std::string, std::string> PlanLeaders(const ElectionQueues& queues);

// What replica `self` does about a plan.
struct RebalanceActions {
  // Pools it leads that the plan gives to the candidate right behind it:
  // it yields them (that candidate wins next).
  std::vector<std::string> yield;
  // Pools where it stands, not leading, ahead of the planned leader (who
  // does not lead yet): it goes to the back of the queue, so that the
  // planned leader comes right behind the leader.
  std::vector<std::string> requeue;
};
RebalanceActions ActionsFor(const std::string& self,
                            const ElectionQueues& queues,
                            const std::map<std::string, std::string>& plan);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_HA_REBALANCE_PLAN_H_
