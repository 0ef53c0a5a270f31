#ifndef JAM_BALANCER_SERVER_RPC_METRICS_H_
#define JAM_BALANCER_SERVER_RPC_METRICS_H_

#include <grpcpp/support/status.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "prometheus/metric_family.h"
#include "server/latency_histogram.h"

namespace jambalancer {

// The balancer service's methods, as metric labels.
enum class RpcMethod {
  kCurrentJam,
  kRefresh,
  kRemoveUser,
  kHasCapacity,
  kAddUser,
  kGetStats,
  kListJams,
  kBatch,
};
inline constexpr int kRpcMethodCount = 8;

// Per-method call counts and latencies of the balancer service, exported as
// the Go gRPC Prometheus middleware names them (grpc_server_started_total,
// grpc_server_handled_total, grpc_server_handling_seconds), so existing
// dashboards work. Updates are relaxed atomic adds: no lock on the RPC path.
//
// Thread-safe.
class RpcMetrics {
 public:
  RpcMetrics();

  void Started(RpcMethod method);
  // The call finished with `code` after `elapsed` since it started.
  void Handled(RpcMethod method, grpc::StatusCode code, absl::Duration elapsed);

  // The three families, read now.
  std::vector<prometheus::MetricFamily> Collect() const;

  // The label value the middleware writes for `code`, e.g. "InvalidArgument".
  static absl::string_view CodeName(grpc::StatusCode code);

 private:
  static constexpr int kCodeCount = 17;  // OK .. UNAUTHENTICATED.

  std::atomic<uint64_t> started_[kRpcMethodCount] = {};
  std::atomic<uint64_t> handled_[kRpcMethodCount][kCodeCount] = {};
  std::unique_ptr<LatencyHistogram> latency_[kRpcMethodCount];
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_METRICS_H_
