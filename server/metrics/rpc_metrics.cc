#include "server/metrics/rpc_metrics.h"

#include <iterator>
#include <string>
#include <utility>

#include "server/metrics/metric_families.h"

namespace jambalancer {
namespace {

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

int CodeIndex(absl::StatusCode code) {
  const int index = static_cast<int>(code);
  return index >= 0 && index < static_cast<int>(std::size(kCodeNames))
             ? index
             : static_cast<int>(absl::StatusCode::kUnknown);
}

}  // namespace

RpcMetrics::RpcMetrics(std::string service, std::vector<std::string> methods,
                       std::vector<std::string> types)
    : service_(std::move(service)),
      method_count_(methods.size()),
      methods_(std::make_unique<Method[]>(methods.size())) {
  for (size_t m = 0; m < method_count_; ++m) {
    methods_[m].name = std::move(methods[m]);
    if (m < types.size()) methods_[m].type = std::move(types[m]);
  }
}

absl::string_view RpcMetrics::CodeName(absl::StatusCode code) {
  return kCodeNames[CodeIndex(code)];
}

void RpcMetrics::Started(size_t method) {
  methods_[method].started.fetch_add(1, std::memory_order_relaxed);
}

void RpcMetrics::Handled(size_t method, absl::StatusCode code,
                         absl::Duration elapsed) {
  Method& m = methods_[method];
  m.handled[CodeIndex(code)].fetch_add(1, std::memory_order_relaxed);
  m.latency.Observe(elapsed);
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
  for (size_t i = 0; i < method_count_; ++i) {
    const Method& m = methods_[i];
    const std::vector<prometheus::ClientMetric::Label> labels = {
        {"grpc_method", m.name},
        {"grpc_service", service_},
        {"grpc_type", m.type}};
    prometheus::ClientMetric& s = started.metric.emplace_back();
    s.label = labels;
    s.counter.value = static_cast<double>(m.started.load());
    for (int c = 0; c < kCodeCount; ++c) {
      const uint64_t count = m.handled[c].load();
      // OK always, so that rates and ratios exist from the start.
      if (count == 0 && c != 0) continue;
      prometheus::ClientMetric& h = handled.metric.emplace_back();
      h.label = labels;
      h.label.insert(h.label.begin(),
                     {"grpc_code", std::string(kCodeNames[c])});
      h.counter.value = static_cast<double>(count);
    }
    prometheus::ClientMetric& l = seconds.metric.emplace_back();
    l.label = labels;
    FillHistogram(m.latency.Read(), &l);
  }
  return {std::move(started), std::move(handled), std::move(seconds)};
}

}  // namespace jambalancer
