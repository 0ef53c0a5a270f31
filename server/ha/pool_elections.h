#ifndef JAM_BALANCER_SERVER_HA_POOL_ELECTIONS_H_
#define JAM_BALANCER_SERVER_HA_POOL_ELECTIONS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/etcd/etcd_client.h"
#include "server/ha/leadership.h"
#include "server/ha/rebalance_plan.h"

namespace jambalancer {

struct PoolElectionsOptions {
  // The election of every pool: its election_name is a prefix, each pool's
  // election being "<election_name>/<pool>".
  LeadershipOptions election;
  // The pools this replica serves.
  std::vector<std::string> pools;
  // How often the queues are read to spread the leaderships (0: never).
  absl::Duration rebalance_interval = absl::Seconds(1);
};

// A replica's part in the elections of its pools: one Leadership per pool,
// so that different replicas lead different pools and each pool fails over
// on its own, and a rebalancer that spreads the leaderships. Every
// rebalance_interval it reads every pool's election queue from etcd (one
// range read of the prefix), computes the plan all replicas compute
// (PlanLeaders) and does its own part (ActionsFor): yields a pool whose
// planned leader stands right behind it, or steps back in a queue where it
// stands ahead of the planned leader. It acts only on queues whose
// candidates (and leaders' start) stayed the same for two rounds after the
// one that changed them, so a replica that is joining or dying is waited
// for.
//
// Thread-safe: Find from any thread; Resign and the destructor from any
// thread but on_change's.
class PoolElections {
 public:
  // Called on a transition of one pool's leadership, from that pool's
  // Leadership thread (see Leadership::OnChange).
  using OnChange =
      std::function<void(const std::string& pool, const LeaderView& view)>;

  static absl::StatusOr<std::unique_ptr<PoolElections>> Start(
      PoolElectionsOptions options, OnChange on_change);
  ~PoolElections();

  PoolElections(const PoolElections&) = delete;
  PoolElections& operator=(const PoolElections&) = delete;

  // The election of `pool`; null for a pool this replica does not serve.
  const Leadership* Find(const std::string& pool) const;

  // Stops rebalancing, then resigns every pool at once (see
  // Leadership::Resign), waiting at most about `timeout` in all.
  void Resign(absl::Duration timeout);

  // The election name of `pool` under `prefix`.
  static std::string ElectionName(const std::string& prefix,
                                  const std::string& pool) {
    return prefix + "/" + pool;
  }

 private:
  PoolElections(PoolElectionsOptions options,
                std::unique_ptr<EtcdClient> client);

  // The rebalancer's thread.
  void RunRebalancer();
  // Reads every pool's queue under the prefix.
  absl::StatusOr<ElectionQueues> ReadQueues() const;
  // Stops the rebalancer and waits for it. Idempotent.
  void StopRebalancer();

  const PoolElectionsOptions options_;
  const std::unique_ptr<EtcdClient> client_;  // For the rebalancer's reads.
  // Written once by Start, before any other thread reads them.
  std::map<std::string, std::unique_ptr<Leadership>> leaderships_;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread rebalancer_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_HA_POOL_ELECTIONS_H_
