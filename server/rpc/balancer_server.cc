#include "server/rpc/balancer_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/common.h"
#include "grpc/health/v1/health.pb.h"
#include "server/rpc/server_credentials.h"
#include "server/rpc/transport_limits.h"
#include "server/util/log.h"
#include "server/util/version.h"

namespace jambalancer {
namespace {

std::string ProtobufVersion() {
  const int v = GOOGLE_PROTOBUF_VERSION;  // e.g. 3021012
  return absl::StrCat(v / 1000000, ".", v / 1000 % 1000, ".", v % 1000);
}

}  // namespace

absl::StatusOr<std::unique_ptr<BalancerServer>> BalancerServer::Start(
    const ServerOptions& options, const PoolDirectory::GateFor& gates) {
  if (options.max_users < 1) {
    return absl::InvalidArgumentError("max_users must be at least 1");
  }
  absl::flat_hash_set<std::string> pool_names = {kDefaultPoolName};
  for (const PoolConfig& pool : options.pools) {
    if (absl::Status s = ValidatePoolName("a pool's name", pool.name);
        !s.ok()) {
      return s;
    }
    if (!pool_names.insert(pool.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("pool \"", pool.name, "\" is configured twice"));
    }
    if (pool.max_users < 1 || pool.reservation_ttl < absl::Milliseconds(1) ||
        pool.reservation_ttl > pool.max_reservation_ttl ||
        pool.max_reservation_ttl > kMaxReservationTtlSetting) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pool \"", pool.name,
          "\": max_users must be at least 1, and its reservation_ttl at least "
          "1ms and at most its max_reservation_ttl, which must be at most ",
          absl::FormatDuration(kMaxReservationTtlSetting)));
    }
  }
  if (options.reservation_ttl < absl::Milliseconds(1) ||
      options.reservation_ttl > options.max_reservation_ttl ||
      options.max_reservation_ttl > kMaxReservationTtlSetting) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reservation_ttl must be at least 1ms and at most max_reservation_ttl, "
        "which must be at most ",
        absl::FormatDuration(kMaxReservationTtlSetting), "; got ",
        absl::FormatDuration(options.reservation_ttl), " and ",
        absl::FormatDuration(options.max_reservation_ttl)));
  }
  if (options.lease_ttl < kMinLeaseTtl ||
      options.lease_ttl > options.max_lease_ttl ||
      options.max_lease_ttl > kMaxLeaseTtlSetting) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lease_ttl must be at least ", absl::FormatDuration(kMinLeaseTtl),
        " and at most max_lease_ttl, which must be at most ",
        absl::FormatDuration(kMaxLeaseTtlSetting), "; got ",
        absl::FormatDuration(options.lease_ttl), " and ",
        absl::FormatDuration(options.max_lease_ttl)));
  }
  if (options.resync_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("resync_grace must not be negative, got ",
                     absl::FormatDuration(options.resync_grace)));
  }
  if (options.listen.empty()) {
    return absl::InvalidArgumentError("listen must be host:port");
  }
  // Handles are 32 bits (see IdTable).
  constexpr uint64_t kMaxCount = uint64_t{1} << 31;
  if (options.max_jams < 1 || options.max_jams > kMaxCount ||
      options.max_total_users < 1 || options.max_total_users > kMaxCount ||
      options.max_sessions < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_jams and max_total_users must be in [1, ", kMaxCount,
        "] and max_sessions at least 1; got ", options.max_jams, ", ",
        options.max_total_users, " and ", options.max_sessions));
  }
  if (options.strand_stall_limit < absl::Milliseconds(100) ||
      options.listener_probe_interval < absl::ZeroDuration() ||
      options.memory_release_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "strand_stall_limit must be at least 100ms and "
        "listener_probe_interval not negative; got ",
        absl::FormatDuration(options.strand_stall_limit), " and ",
        absl::FormatDuration(options.listener_probe_interval), " and ",
        absl::FormatDuration(options.memory_release_interval)));
  }
  // Reflection can describe only what the generated pool holds; naming the
  // health descriptor links it in, so grpc.health.v1.Health is describable.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  std::unique_ptr<BalancerServer> server(new BalancerServer(options, gates));
  // Jams that front ends resupply after this start stay closed for a while
  // (see JamCollection::StartResync). A replica behind gates does so each
  // time it starts to lead a pool instead.
  if (gates == nullptr) {
    for (const std::unique_ptr<ServedPool>& pool : server->pools_.pools()) {
      pool->pool.Post([server = server.get(), pool = pool.get()](
                          PoolState& state, absl::Time now) {
        server->StartResync(*pool, state, now);
      });
    }
  }
  grpc::ServerBuilder builder;
  // gRPC binds with SO_REUSEPORT by default: a second balancer on the same
  // port would start and split the clients between two jam collections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (absl::Status status = ApplyTransportLimits(options.transport, builder);
      !status.ok()) {
    return status;
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      BuildServerCredentials(options);
  if (!credentials.ok()) return credentials.status();
  builder.AddListeningPort(options.listen, *credentials, &server->port_);
  builder.RegisterService(&server->service_);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen,
                     " (address in use, or not a valid host:port)"));
  }
  if (!options.metrics_listen.empty()) {
    if (absl::Status status = server->StartMetrics(options.metrics_listen);
        !status.ok()) {
      return status;
    }
  }
  if (!options.health_listen.empty()) {
    if (absl::Status status = server->StartHealthPort(options.health_listen);
        !status.ok()) {
      return status;
    }
  }
  {
    absl::MutexLock lock(&server->health_mu_);
    server->PublishHealth();
  }
  if (absl::Status status = server->StartWatchdog(); !status.ok()) {
    return status;
  }
  if (options.memory_release_interval > absl::ZeroDuration()) {
    server->memory_release_ = std::make_unique<PeriodicMemoryRelease>(
        options.memory_release_interval);
  }
  return server;
}

absl::Status BalancerServer::StartHealthPort(const std::string& listen) {
  // A server with no service of its own: the default health service is all
  // it has (and reflection, which describes just that).
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (absl::Status status = ApplyTransportLimits(options_.transport, builder);
      !status.ok()) {
    return status;
  }
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(),
                           &health_port_);
  health_server_ = builder.BuildAndStart();
  if (health_server_ == nullptr || health_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve health on ", listen,
                     " (address in use, or not a valid host:port)"));
  }
  return absl::OkStatus();
}

absl::Status BalancerServer::StartWatchdog() {
  std::vector<LivenessWatchdog::Check> checks;
  const absl::Duration stall_limit = options_.strand_stall_limit;
  checks.push_back({"strand", [this, stall_limit] {
                      for (const auto& pool : pools_.pools()) {
                        const absl::Duration stalled = pool->pool.Stalled();
                        if (stalled <= stall_limit) continue;
                        return absl::UnavailableError(absl::StrCat(
                            "pool ", pool->config.name,
                            ": no operation finished for ",
                            absl::FormatDuration(stalled), " (limit ",
                            absl::FormatDuration(stall_limit), ")"));
                      }
                      return absl::OkStatus();
                    }});
  if (options_.listener_probe_interval > absl::ZeroDuration()) {
    ListenerProbeOptions probe =
        ListenerProbeOptionsFor(options_.listen, port_);
    probe.interval = options_.listener_probe_interval;
    probe.tls = !options_.tls_cert.empty();
    auto started = ListenerProbe::Start(probe);
    if (!started.ok()) return started.status();
    listener_probe_ = *std::move(started);
    checks.push_back({"listener", [probe = listener_probe_.get()] {
                        return probe->Check();
                      }});
  }
  // Often enough to notice a stall within a fraction of its limit.
  const absl::Duration interval = std::clamp(
      stall_limit / 4, absl::Milliseconds(50), absl::Milliseconds(500));
  watchdog_ = std::make_unique<LivenessWatchdog>(
      std::move(checks), interval, [this](const absl::Status& liveness) {
        if (liveness.ok()) {
          Log(LogLevel::kInfo, "alive again: health SERVING");
        } else {
          Log(LogLevel::kError, "not alive: health NOT_SERVING",
              {{"reason", std::string(liveness.message())}});
        }
        absl::MutexLock lock(&health_mu_);
        alive_ = liveness.ok();
        PublishHealth();
      });
  return absl::OkStatus();
}

void BalancerServer::PublishHealth() {
  const bool process = alive_ && !stopping_;
  const bool service = process && (!replicated_ || !leading_.empty());
  for (grpc::Server* server : {server_.get(), health_server_.get()}) {
    if (server == nullptr) continue;
    grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
    if (stopping_) {
      health->Shutdown();  // NOT_SERVING for good, whatever is set later.
      continue;
    }
    health->SetServingStatus("", process);
    health->SetServingStatus(v1::JamBalancerService::service_full_name(),
                             service);
  }
}

void BalancerServer::StartResync(const ServedPool& pool, PoolState& state,
                                 absl::Time now) const {
  if (options_.resync_grace > absl::ZeroDuration()) {
    state.jams.StartResync(now + options_.resync_grace,
                           pool.config.reservation_ttl);
  }
}

void BalancerServer::OnLeadershipChange(const std::string& pool_name,
                                        bool leading, int64_t epoch) {
  absl::StatusOr<ServedPool*> pool = pools_.Find("pool", pool_name);
  if (!pool.ok()) return;
  (*pool)->pool.Reset(
      [this, pool = *pool, leading, epoch](PoolState& state, absl::Time now) {
        if (!leading) return;
        state.epoch = epoch;
        StartResync(*pool, state, now);
      });
  // After the reset is queued: calls that see SERVING run on the new state.
  absl::MutexLock lock(&health_mu_);
  if (leading) {
    leading_.insert(pool_name);
  } else {
    leading_.erase(pool_name);
  }
  PublishHealth();
}

absl::Status BalancerServer::StartMetrics(const std::string& listen) {
  MetricsCollector::LeadershipReader read_leadership;
  if (replicated_) {
    read_leadership = [this] {
      std::vector<LeadershipReading> readings;
      for (const std::unique_ptr<ServedPool>& pool : pools_.pools()) {
        if (pool->gate == nullptr) continue;
        std::optional<LeadershipReading> reading = pool->gate->Reading();
        if (!reading.has_value()) continue;
        reading->labels = {{"pool", pool->config.name}};
        readings.push_back(*std::move(reading));
      }
      return readings;
    };
  }
  std::vector<MetricsCollector::NamedPool> named;
  for (const std::unique_ptr<ServedPool>& pool : pools_.pools()) {
    named.push_back({pool->config.name, &pool->pool});
  }
  metrics_collector_ = std::make_shared<MetricsCollector>(
      std::move(named), &rpc_metrics_,
      BuildInfo{kVersion, grpc::Version(), ProtobufVersion()},
      std::move(read_leadership));
  // prometheus-cpp (civetweb) reports a failure to listen by throwing; it
  // stops here.
  try {
    metrics_exposer_ = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", listen, " (", e.what(), ")"));
  }
  metrics_exposer_->RegisterCollectable(metrics_collector_);
  const std::vector<int> ports = metrics_exposer_->GetListeningPorts();
  metrics_port_ = ports.empty() ? 0 : ports.front();
  return absl::OkStatus();
}

BalancerServer::~BalancerServer() { Shutdown(absl::ZeroDuration()); }

void BalancerServer::Shutdown(absl::Duration grace) {
  std::call_once(shutdown_once_, [this, grace] {
    watchdog_.reset();
    listener_probe_.reset();
    {
      // NOT_SERVING first, so health-checking load balancers drain us.
      absl::MutexLock lock(&health_mu_);
      stopping_ = true;
      PublishHealth();
    }
    if (health_server_ != nullptr) {
      health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
    }
    if (server_ != nullptr) {
      // Calls in flight still need the strand to finish: stop it afterwards.
      server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
      server_->Wait();
    }
    metrics_exposer_.reset();
    for (const std::unique_ptr<ServedPool>& pool : pools_.pools()) {
      pool->pool.Shutdown();
    }
  });
}

}  // namespace jambalancer
