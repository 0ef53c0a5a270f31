#ifndef JAM_BALANCER_SERVER_RPC_BALANCER_SERVER_H_
#define JAM_BALANCER_SERVER_RPC_BALANCER_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prometheus/exposer.h"
#include "server/metrics/metrics_collector.h"
#include "server/metrics/rpc_metrics.h"
#include "server/rpc/jam_balancer_service_impl.h"
#include "server/rpc/server_options.h"
#include "server/runtime/jam_pool.h"

namespace jambalancer {

// A running jam balancer: one pool of jams, JamBalancerService over it, the
// standard health service and server reflection on one gRPC server, and
// optionally the /metrics endpoint.
//
// Thread-safe. Destruction shuts down with no grace period.
class BalancerServer {
 public:
  // Starts serving. INVALID_ARGUMENT for bad options, UNAVAILABLE if the
  // address cannot be bound.
  static absl::StatusOr<std::unique_ptr<BalancerServer>> Start(
      const ServerOptions& options);

  ~BalancerServer();

  // The port actually bound (the chosen one when options.listen asked for 0).
  int port() const { return port_; }
  // The metrics port actually bound; 0 when metrics are off.
  int metrics_port() const { return metrics_port_; }

  // Marks health NOT_SERVING, stops accepting calls, lets calls in flight
  // finish for up to `grace` (then cancels them), and stops the strand.
  // Idempotent; returns when the server is down.
  void Shutdown(absl::Duration grace);

 private:
  explicit BalancerServer(const ServerOptions& options)
      : pool_(options.max_users, options.strand_inline),
        service_(&pool_, &rpc_metrics_,
                 CommandParser(
                     {options.reservation_ttl, options.max_reservation_ttl},
                     {options.lease_ttl, options.max_lease_ttl})) {}

  // Starts the /metrics endpoint. UNAVAILABLE if it cannot listen.
  absl::Status StartMetrics(const std::string& listen);

  RpcMetrics rpc_metrics_ = JamBalancerServiceImpl::NewRpcMetrics();
  JamPool pool_;
  JamBalancerServiceImpl service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  // Destroyed first: scrapes stop before what they read goes away.
  std::shared_ptr<MetricsCollector> metrics_collector_;
  std::unique_ptr<prometheus::Exposer> metrics_exposer_;
  int metrics_port_ = 0;
  std::once_flag shutdown_once_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_BALANCER_SERVER_H_
