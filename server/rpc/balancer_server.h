#ifndef JAM_BALANCER_SERVER_RPC_BALANCER_SERVER_H_
#define JAM_BALANCER_SERVER_RPC_BALANCER_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/exposer.h"
#include "server/metrics/metrics_collector.h"
#include "server/metrics/rpc_metrics.h"
#include "server/rpc/jam_balancer_service_impl.h"
#include "server/rpc/listener_probe.h"
#include "server/rpc/liveness_watchdog.h"
#include "server/rpc/pool_directory.h"
#include "server/rpc/server_options.h"
#include "server/util/memory_release.h"

namespace jambalancer {

// A running jam balancer: its pools of jams (each on a strand of its own),
// JamBalancerService over them, the standard health service and server
// reflection on one gRPC server, and optionally the /metrics endpoint.
//
// Thread-safe. Destruction shuts down with no grace period.
class BalancerServer {
 public:
  // Starts serving. INVALID_ARGUMENT for bad options, UNAVAILABLE if the
  // address cannot be bound. With `gates` (each gate must outlive the
  // server) the replica is one of several, each pool with an election of
  // its own: it answers a pool's calls only while the pool's gate lets it
  // (see JamBalancerServiceImpl), and starts as a standby of every pool
  // (health NOT_SERVING for the balancer service until it leads one) until
  // told it leads (OnLeadershipChange).
  static absl::StatusOr<std::unique_ptr<BalancerServer>> Start(
      const ServerOptions& options,
      const PoolDirectory::GateFor& gates = nullptr);

  ~BalancerServer();

  // The port actually bound (the chosen one when options.listen asked for 0).
  int port() const { return port_; }
  // The metrics port actually bound; 0 when metrics are off.
  int metrics_port() const { return metrics_port_; }
  // The health-only port actually bound; 0 when it is off.
  int health_port() const { return health_port_; }

  // The default pool, for tests that must hold its strand.
  JamPool& pool_for_testing() { return pools_.default_pool().pool; }
  const PoolDirectory& pools() const { return pools_; }

  // A transition of `pool`'s leadership (any thread; in order per pool).
  // Leading at `epoch`: the pool starts over empty at that epoch, with the
  // resync window of a start (front ends resupply it). Not leading: the
  // pool's state is dropped (a later leadership starts empty again).
  // Health reports SERVING for the balancer service while the replica
  // leads at least one pool. An unknown pool is ignored.
  void OnLeadershipChange(const std::string& pool, bool leading, int64_t epoch);

  // Marks health NOT_SERVING, stops accepting calls, lets calls in flight
  // finish for up to `grace` (then cancels them), and stops the strand.
  // Idempotent; returns when the server is down.
  void Shutdown(absl::Duration grace);

 private:
  BalancerServer(const ServerOptions& options,
                 const PoolDirectory::GateFor& gates)
      : options_(options),
        replicated_(gates != nullptr),
        pools_(options.AllPools(), options.strand_inline,
               PoolLimits{{options.max_jams, options.max_total_users},
                          options.max_sessions},
               {options.lease_ttl, options.max_lease_ttl}, gates),
        service_(&pools_, &rpc_metrics_) {}

  // The resync window of a start, on `pool`'s state at `now`. Its strand
  // only.
  void StartResync(const ServedPool& pool, PoolState& state,
                   absl::Time now) const;

  // Starts the /metrics endpoint. UNAVAILABLE if it cannot listen.
  absl::Status StartMetrics(const std::string& listen);
  // Starts the plaintext health-only server. UNAVAILABLE if it cannot
  // listen.
  absl::Status StartHealthPort(const std::string& listen);
  // Starts the liveness watchdog (strand, listener).
  absl::Status StartWatchdog();
  // Sets every health status from leading_, alive_ and stopping_.
  void PublishHealth() ABSL_EXCLUSIVE_LOCKS_REQUIRED(health_mu_);

  const ServerOptions options_;
  const bool replicated_;  // The pools have gates (elections).
  RpcMetrics rpc_metrics_ = JamBalancerServiceImpl::NewRpcMetrics();
  PoolDirectory pools_;
  JamBalancerServiceImpl service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  // Serves grpc.health.v1.Health only, in plaintext; null when off.
  std::unique_ptr<grpc::Server> health_server_;
  int health_port_ = 0;
  // What health reports: SERVING for "" while alive and not stopping; for
  // the balancer service, also only while leading a pool (always when
  // alone).
  absl::Mutex health_mu_;
  absl::flat_hash_set<std::string> leading_ ABSL_GUARDED_BY(health_mu_);
  bool alive_ ABSL_GUARDED_BY(health_mu_) = true;
  bool stopping_ ABSL_GUARDED_BY(health_mu_) = false;
  std::unique_ptr<ListenerProbe> listener_probe_;
  std::unique_ptr<PeriodicMemoryRelease> memory_release_;
  // Destroyed before what its checks read.
  std::unique_ptr<LivenessWatchdog> watchdog_;
  // Destroyed first: scrapes stop before what they read goes away.
  std::shared_ptr<MetricsCollector> metrics_collector_;
  std::unique_ptr<prometheus::Exposer> metrics_exposer_;
  int metrics_port_ = 0;
  std::once_flag shutdown_once_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_BALANCER_SERVER_H_
