#include "server/rpc_metrics.h"

#include <string>
#include <utility>

#include "server/metric_families.h"

namespace jambalancer {
namespace {

constexpr absl::string_view kService = "jambalancer.v1.JamBalancerService";

constexpr absl::string_view kMethodNames[kRpcMethodCount] = {
    "CurrentJam", "Refresh",  "RemoveUser", "HasCapacity",
    "AddUser",    "GetStats", "ListJams",   "Batch"};

// Go's codes.Code.String(), which the middleware uses as grpc_code.
constexpr absl::string_view kCodeNames[] = {"OK",
                                            "Canceled",
                                            "Unknown",
                                            "InvalidArgument",
                                            "DeadlineExceeded",
                                            "NotFound",
                                            "AlreadyExists",
                                            "PermissionDenied",
                                            "ResourceExhausted",
                                            "FailedPrecondition",
                                            "Aborted",
                                            "OutOfRange",
                                            "Unimplemented",
                                            "Internal",
                                            "Unavailable",
                                            "DataLoss",
                                            "Unauthenticated"};

std::vector<prometheus::ClientMetric::Label> Labels(int method) {
  return {{"grpc_method", std::string(kMethodNames[method])},
          {"grpc_service", std::string(kService)},
          {"grpc_type", "unary"}};
}

}  // namespace

RpcMetrics::RpcMetrics() {
  for (auto& latency : latency_) {
    latency =
        std::make_unique<LatencyHistogram>(LatencyHistogram::DefaultBounds());
  }
}

absl::string_view RpcMetrics::CodeName(grpc::StatusCode code) {
  const int index = static_cast<int>(code);
  return index >= 0 && index < kCodeCount ? kCodeNames[index] : "Unknown";
}

void RpcMetrics::Started(RpcMethod method) {
  started_[static_cast<int>(method)].fetch_add(1, std::memory_order_relaxed);
}

void RpcMetrics::Handled(RpcMethod method, grpc::StatusCode code,
                         absl::Duration elapsed) {
  const int m = static_cast<int>(method);
  int c = static_cast<int>(code);
  if (c < 0 || c >= kCodeCount) c = static_cast<int>(grpc::StatusCode::UNKNOWN);
  handled_[m][c].fetch_add(1, std::memory_order_relaxed);
  latency_[m]->Observe(elapsed);
}

std::vector<prometheus::MetricFamily> RpcMetrics::Collect() const {
  prometheus::MetricFamily started{
      "grpc_server_started_total",
      "Total number of RPCs started on the server.",
      prometheus::MetricType::Counter,
      {}};
  prometheus::MetricFamily handled{
      "grpc_server_handled_total",
      "Total number of RPCs completed on the server, regardless of success "
      "or failure.",
      prometheus::MetricType::Counter,
      {}};
  prometheus::MetricFamily seconds{
      "grpc_server_handling_seconds",
      "Histogram of response latency (seconds) of gRPC that had been "
      "application-level handled by the server.",
      prometheus::MetricType::Histogram,
      {}};
  for (int m = 0; m < kRpcMethodCount; ++m) {
    prometheus::ClientMetric& s = started.metric.emplace_back();
    s.label = Labels(m);
    s.counter.value = static_cast<double>(started_[m].load());
    for (int c = 0; c < kCodeCount; ++c) {
      const uint64_t count = handled_[m][c].load();
      // OK always, so that rates and ratios exist from the start.
      if (count == 0 && c != 0) continue;
      prometheus::ClientMetric& h = handled.metric.emplace_back();
      h.label = Labels(m);
      h.label.insert(h.label.begin(),
                     {"grpc_code", std::string(kCodeNames[c])});
      h.counter.value = static_cast<double>(count);
    }
    prometheus::ClientMetric& l = seconds.metric.emplace_back();
    l.label = Labels(m);
    FillHistogram(latency_[m]->Read(), &l);
  }
  return {std::move(started), std::move(handled), std::move(seconds)};
}

}  // namespace jambalancer
