#ifndef JAM_BALANCER_SERVER_METRICS_RPC_METRICS_H_
#define JAM_BALANCER_SERVER_METRICS_RPC_METRICS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "prometheus/metric_family.h"
#include "server/util/latency_histogram.h"

namespace jambalancer {

// Per-method call counts and latencies of one gRPC service, exported as the
// Go gRPC Prometheus middleware names them (grpc_server_started_total,
// grpc_server_handled_total, grpc_server_handling_seconds), so existing
// dashboards work. Methods are numbered by their position in the list given
// at construction (the service passes its RPC list). Updates are relaxed
// atomic adds: no lock on the RPC path.
//
// Thread-safe.
class RpcMetrics {
 public:
  // `service` and `methods` are the grpc_service and grpc_method labels;
  // `types` the grpc_type of each method ("unary" for all when empty).
  RpcMetrics(std::string service, std::vector<std::string> methods,
             std::vector<std::string> types = {});

  RpcMetrics(const RpcMetrics&) = delete;
  RpcMetrics& operator=(const RpcMetrics&) = delete;

  // REQUIRES: method < the number of methods given.
  void Started(size_t method);
  // The call finished with `code` after `elapsed` since it started. Codes
  // are gRPC's (absl::StatusCode has the same numbers).
  void Handled(size_t method, absl::StatusCode code, absl::Duration elapsed);

  // The three families, read now.
  std::vector<prometheus::MetricFamily> Collect() const;

  // The label value the middleware writes for `code`, e.g. "InvalidArgument";
  // "Unknown" for a number outside gRPC's codes.
  static absl::string_view CodeName(absl::StatusCode code);

 private:
  static constexpr int kCodeCount = 17;  // OK .. UNAUTHENTICATED.
  struct Method {
    std::string name;
    std::string type = "unary";
    std::atomic<uint64_t> started{0};
    std::atomic<uint64_t> handled[kCodeCount] = {};
    LatencyHistogram latency{LatencyHistogram::DefaultBounds()};
  };

  const std::string service_;
  const size_t method_count_;
  const std::unique_ptr<Method[]> methods_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_METRICS_RPC_METRICS_H_
