#ifndef JAM_BALANCER_SERVER_BALANCER_SERVER_H_
#define JAM_BALANCER_SERVER_BALANCER_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prometheus/exposer.h"
#include "server/balancer_service.h"
#include "server/jam_balancer.h"
#include "server/metrics_collector.h"
#include "server/rpc_metrics.h"

namespace jambalancer {

struct ServerOptions {
  // host:port to listen on; port 0 asks the OS for a free port.
  std::string listen = "0.0.0.0:50051";
  uint32_t max_users = 7;
  // Seat reservations made by CurrentJam with a user id.
  BalancerService::Options reservations;
  // Run an operation on the calling gRPC thread when the strand is idle,
  // instead of handing every one to the strand's thread (see Strand).
  bool strand_inline = true;
  // host:port serving /metrics for Prometheus; empty turns it off; port 0
  // picks a free port.
  std::string metrics_listen;
};

// A running jam balancer: the balancer service, the standard health service
// and server reflection on one gRPC server.
//
// Thread-safe. Destruction shuts down with no grace period.
class BalancerServer {
 public:
  static constexpr char kServiceName[] = "jambalancer.v1.JamBalancerService";

  // Longest reservation time the server accepts as a setting.
  static constexpr absl::Duration kMaxReservationTtlSetting = absl::Hours(24);

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
      : balancer_(options.max_users, options.strand_inline),
        service_(&balancer_, &rpc_metrics_, options.reservations) {}

  // Starts the /metrics endpoint. UNAVAILABLE if it cannot listen.
  absl::Status StartMetrics(const std::string& listen);

  RpcMetrics rpc_metrics_;
  JamBalancer balancer_;
  BalancerService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  // Destroyed first: scrapes stop before what they read goes away.
  std::shared_ptr<MetricsCollector> metrics_collector_;
  std::unique_ptr<prometheus::Exposer> metrics_exposer_;
  int metrics_port_ = 0;
  std::once_flag shutdown_once_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_BALANCER_SERVER_H_
