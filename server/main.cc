// jam-balancer: serves the jam balancer API over gRPC until SIGTERM or SIGINT.
// With --etcd_endpoints, one of several replicas: it serves while it leads
// the election in etcd (server/ha), and stands by otherwise.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/ha/leadership.h"
#include "server/ha/pool_elections.h"
#include "server/rpc/balancer_server.h"
#include "server/rpc/server_options.h"
#include "server/rpc/serving_gate.h"
#include "server/util/fd_limit.h"
#include "server/util/log.h"
#include "server/util/version.h"

namespace {
// The defaults of every flag below: the server's own (server_options.h) and
// the election's (leadership.h).
const jambalancer::ServerOptions kDefaults;
const jambalancer::LeadershipOptions kElectionDefaults;
// After a replica resigns on SIGTERM, how long it only refuses calls before
// it shuts its gRPC server down.
constexpr absl::Duration kHandoverPause = absl::Milliseconds(250);

// The server's gate over the election: closed until the Leadership is
// started (it needs the bound port for its address), then whatever it says.
class LeadershipGate : public jambalancer::ServingGate {
 public:
  // Once; `leadership` must outlive every call of the gate's methods.
  void Open(const jambalancer::Leadership* leadership) {
    leadership_.store(leadership);
  }
  bool MayServe(absl::Time now) const override {
    const jambalancer::Leadership* leadership = leadership_.load();
    return leadership != nullptr && leadership->MayServe(now);
  }
  int64_t Epoch() const override {
    const jambalancer::Leadership* leadership = leadership_.load();
    return leadership == nullptr ? 0 : leadership->View().epoch;
  }
  std::string LeaderAddress() const override {
    const jambalancer::Leadership* leadership = leadership_.load();
    return leadership == nullptr ? "" : leadership->View().leader_address;
  }
  std::optional<jambalancer::LeadershipReading> Reading() const override {
    jambalancer::LeadershipReading reading;
    const jambalancer::Leadership* leadership = leadership_.load();
    if (leadership == nullptr) return reading;  // Not started yet.
    const jambalancer::LeaderView view = leadership->View();
    const jambalancer::LeadershipStats stats = leadership->Stats();
    reading.leading = view.leading;
    reading.epoch = view.epoch;
    reading.elections_won = stats.elections_won;
    reading.seconds_leading = absl::ToDoubleSeconds(stats.time_leading);
    reading.keepalive_round_trip = stats.keepalive_round_trip;
    reading.keepalive_failures = stats.keepalive_failures;
    return reading;
  }

 private:
  std::atomic<const jambalancer::Leadership*> leadership_{nullptr};
};

// What front ends should dial: `advertise` if set, else --listen's host with
// the bound port (this machine's name when --listen is on every address).
std::string AdvertiseAddress(const std::string& advertise,
                             const std::string& listen, int port) {
  if (!advertise.empty()) return advertise;
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]") {
    char name[256] = {};
    host = gethostname(name, sizeof(name) - 1) == 0 ? name : "localhost";
  }
  return absl::StrCat(host, ":", port);
}

// For the start-up log: the pools besides the default one, as --pools.
std::string PoolsText(const jambalancer::ServerOptions& options) {
  std::string text;
  for (const jambalancer::PoolConfig& pool : options.pools) {
    absl::StrAppend(&text, text.empty() ? "" : ",", pool.name, ":",
                    pool.max_users, ":",
                    absl::FormatDuration(pool.reservation_ttl), ":",
                    absl::FormatDuration(pool.max_reservation_ttl));
  }
  return text.empty() ? "none" : text;
}

// For the start-up log: whether the gRPC port speaks TLS.
std::string TlsMode(const jambalancer::ServerOptions& options) {
  if (options.tls_cert.empty()) return "off";
  return options.tls_client_ca.empty() ? "on" : "mutual";
}
}  // namespace

ABSL_FLAG(std::string, listen, kDefaults.listen,
          "host:port for gRPC; port 0 picks a free port (logged at start)");
ABSL_FLAG(uint32_t, max_users, kDefaults.max_users,
          "capacity of every jam of the default pool: users a jam may hold "
          "(at least 1)");
ABSL_FLAG(std::string, pools, "",
          "pools besides the default one, each with its own jams and strand: "
          "NAME:MAX_USERS[:RESERVATION_TTL[:MAX_RESERVATION_TTL]],... (e.g. "
          "rock:7,duo:2:30s); requests name a pool in their pool field");
ABSL_FLAG(std::string, pools_file, "",
          "file of pools in --pools' syntax, one or more per line, '#' "
          "comments; read at start, added to --pools");
ABSL_FLAG(absl::Duration, reservation_ttl, kDefaults.reservation_ttl,
          "how long a seat reserved by CurrentJam with a user id is held when "
          "the request asks for 0 ms");
ABSL_FLAG(absl::Duration, max_reservation_ttl, kDefaults.max_reservation_ttl,
          "longest reservation a request may ask for; longer ones are capped "
          "(at most 24h)");
ABSL_FLAG(std::string, metrics_listen, kDefaults.metrics_listen,
          "host:port serving Prometheus metrics at /metrics; empty turns "
          "metrics off; port 0 picks a free port (logged at start)");
ABSL_FLAG(absl::Duration, lease_ttl, kDefaults.lease_ttl,
          "a front end's lease when its Sync asks for 0 ms (at least 500ms)");
ABSL_FLAG(absl::Duration, max_lease_ttl, kDefaults.max_lease_ttl,
          "longest lease a Sync may ask for; longer ones are capped (at most "
          "1h)");
ABSL_FLAG(absl::Duration, resync_grace, kDefaults.resync_grace,
          "after start, how long jams that front ends resupply stay closed to "
          "new users (0: not at all)");
ABSL_FLAG(bool, strand_inline, kDefaults.strand_inline,
          "run an operation on the gRPC thread that received it when the "
          "strand is idle (false: always hand it to the strand's thread)");
ABSL_FLAG(std::string, log_format, "text",
          "log line format on stderr: text or json");
ABSL_FLAG(absl::Duration, shutdown_grace, kDefaults.shutdown_grace,
          "on SIGTERM/SIGINT, how long calls in flight may take to finish "
          "before they are cancelled");
ABSL_FLAG(uint64_t, max_jams, kDefaults.max_jams,
          "most jams held at once; calls that would create more are refused "
          "with RESOURCE_EXHAUSTED");
ABSL_FLAG(uint64_t, max_total_users, kDefaults.max_total_users,
          "most users (members and seat reservations, all jams together) "
          "held at once; calls that would add more are refused with "
          "RESOURCE_EXHAUSTED. About 100 bytes each: size the memory limit "
          "for it (README, Limits)");
ABSL_FLAG(uint64_t, max_sessions, kDefaults.max_sessions,
          "most front-end sessions at once; a Sync of another front end is "
          "refused with RESOURCE_EXHAUSTED");
ABSL_FLAG(std::string, health_listen, kDefaults.health_listen,
          "host:port of a plaintext port serving only grpc.health.v1.Health "
          "(for probes that cannot present a client certificate); empty: "
          "off; port 0 picks a free port (logged at start)");
ABSL_FLAG(absl::Duration, strand_stall_limit, kDefaults.strand_stall_limit,
          "health turns NOT_SERVING while the strand has had work but "
          "finished none for this long");
ABSL_FLAG(absl::Duration, listener_probe_interval,
          kDefaults.listener_probe_interval,
          "how often the gRPC port is probed with a fresh connection; health "
          "turns NOT_SERVING after 3 failures in a row (0: no probe)");
ABSL_FLAG(absl::Duration, memory_release_interval,
          kDefaults.memory_release_interval,
          "how often memory the allocator holds free is given back to the "
          "operating system (0: never)");
ABSL_FLAG(int64_t, grpc_memory_limit, kDefaults.transport.memory_limit_bytes,
          "bytes gRPC may take for connections and calls (a resource quota; "
          "the jams are not counted); above it gRPC shrinks buffers, closes "
          "idle connections and cancels streams");
ABSL_FLAG(uint32_t, max_concurrent_streams,
          kDefaults.transport.max_concurrent_streams,
          "calls a client may have open on one connection; more wait in the "
          "client");
ABSL_FLAG(int32_t, max_receive_message_size,
          kDefaults.transport.max_receive_message_bytes,
          "largest request message in bytes (the clients split Sync into "
          "messages of at most 1 MiB); larger ones fail RESOURCE_EXHAUSTED");
ABSL_FLAG(int32_t, max_send_message_size,
          kDefaults.transport.max_send_message_bytes,
          "largest response message in bytes; larger ones fail "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(absl::Duration, max_connection_idle,
          kDefaults.transport.max_connection_idle,
          "close a connection that has had no call for this long (clients "
          "reconnect on their next call; inf: never)");
ABSL_FLAG(absl::Duration, max_connection_age,
          kDefaults.transport.max_connection_age,
          "send a connection GOAWAY after this long (+-10% jitter), so no "
          "stream holds memory for longer (inf: never)");
ABSL_FLAG(absl::Duration, max_connection_age_grace,
          kDefaults.transport.max_connection_age_grace,
          "after a GOAWAY of --max_connection_age, how long its calls may "
          "take before they are cancelled");
ABSL_FLAG(absl::Duration, handshake_timeout,
          kDefaults.transport.handshake_timeout,
          "close a connection that has not finished its TLS handshake and "
          "sent its HTTP/2 settings within this");
ABSL_FLAG(absl::Duration, keepalive_time, kDefaults.transport.keepalive_time,
          "ping a connection quiet for this long, and close it if the ping is "
          "unanswered after --keepalive_timeout (finds dead peers)");
ABSL_FLAG(absl::Duration, keepalive_timeout,
          kDefaults.transport.keepalive_timeout,
          "how long a keepalive ping may go unanswered");
ABSL_FLAG(std::string, etcd_endpoints, "",
          "etcd members as IP:port,... or one name:port resolving to every "
          "member: run as one of several replicas, serving only while "
          "leading the election there (empty: serve alone)");
ABSL_FLAG(std::string, election_name, kElectionDefaults.election_name,
          "with --etcd_endpoints: the election's name (key prefix) in etcd; "
          "replicas of one balancer share it");
ABSL_FLAG(absl::Duration, election_ttl, kElectionDefaults.ttl,
          "with --etcd_endpoints: the replica's etcd lease; a leader stops "
          "serving within it when it loses etcd, and a standby takes over "
          "about this long after the leader died (whole seconds, at least 1s)");
ABSL_FLAG(absl::Duration, rebalance_interval, absl::Seconds(1),
          "with --etcd_endpoints: how often the pools' election queues are "
          "read to spread their leaderships over the replicas (0: never)");
ABSL_FLAG(std::string, advertise_address, "",
          "with --etcd_endpoints: host:port front ends should dial to reach "
          "this replica when it leads (default: --listen's host and port; "
          "this machine's name for 0.0.0.0)");
ABSL_FLAG(std::string, tls_cert, kDefaults.tls_cert,
          "PEM certificate chain of the gRPC port: serve TLS (needs "
          "--tls_key; read once at start); empty: plaintext");
ABSL_FLAG(std::string, tls_key, kDefaults.tls_key,
          "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, kDefaults.tls_client_ca,
          "with --tls_cert: PEM CA bundle; clients must present a certificate "
          "it signed (mutual TLS); empty: no client certificate asked for");
ABSL_FLAG(std::string, etcd_cacert, kElectionDefaults.etcd_cacert,
          "with --etcd_endpoints: talk TLS to etcd, trusting this PEM CA "
          "bundle (as etcdctl's --cacert)");
ABSL_FLAG(std::string, etcd_cert, kElectionDefaults.etcd_cert,
          "with --etcd_endpoints: PEM client certificate for etcd's "
          "--client-cert-auth (needs --etcd_key; as etcdctl's --cert)");
ABSL_FLAG(std::string, etcd_key, kElectionDefaults.etcd_key,
          "PEM private key of --etcd_cert (as etcdctl's --key)");

int main(int argc, char** argv) {
  // --help lists the flags of files named after the program by default; ours
  // live in main.cc.
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view path) {
    return absl::EndsWith(path, "server/main.cc");
  };
  absl::SetFlagsUsageConfig(usage_config);
  absl::SetProgramUsageMessage(
      "Places users into jams (small rooms) for front-end servers.\n"
      "Usage: jam-balancer [--listen=HOST:PORT] [--max_users=N] "
      "[--pools=NAME:MAX_USERS[:TTL[:MAX_TTL]],...] [--pools_file=PATH] "
      "[--reservation_ttl=DURATION] [--max_reservation_ttl=DURATION] "
      "[--lease_ttl=DURATION] [--max_lease_ttl=DURATION] "
      "[--resync_grace=DURATION] "
      "[--metrics_listen=HOST:PORT] [--log_format=text|json] "
      "[--strand_inline=BOOL] "
      "[--max_jams=N] [--max_total_users=N] [--max_sessions=N] "
      "[--health_listen=HOST:PORT] [--strand_stall_limit=DURATION] "
      "[--listener_probe_interval=DURATION] "
      "[--memory_release_interval=DURATION] "
      "[--grpc_memory_limit=BYTES] [--max_concurrent_streams=N] "
      "[--max_receive_message_size=BYTES] [--max_send_message_size=BYTES] "
      "[--max_connection_idle=DURATION] [--max_connection_age=DURATION] "
      "[--max_connection_age_grace=DURATION] [--handshake_timeout=DURATION] "
      "[--keepalive_time=DURATION] [--keepalive_timeout=DURATION] "
      "[--shutdown_grace=DURATION] [--etcd_endpoints=IP:PORT,...|NAME:PORT] "
      "[--election_name=NAME] [--election_ttl=DURATION] "
      "[--rebalance_interval=DURATION] "
      "[--advertise_address=HOST:PORT] "
      "[--tls_cert=PEM --tls_key=PEM [--tls_client_ca=PEM]] "
      "[--etcd_cacert=PEM] [--etcd_cert=PEM --etcd_key=PEM]");
  absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil with mutex deadlock detection on, which costs every
  // lock a graph update; the server's lock order is fixed and small.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using jambalancer::Log;
  using jambalancer::LogLevel;

  const std::string log_format = absl::GetFlag(FLAGS_log_format);
  if (log_format == "json") {
    jambalancer::SetLogFormat(jambalancer::LogFormat::kJson);
  } else if (log_format != "text") {
    Log(LogLevel::kError, "not started: log_format must be text or json",
        {{"log_format", log_format}});
    return EXIT_FAILURE;
  }

  // Every connection holds a descriptor: a soft limit of 1024 would let a
  // thousand idle connections stop the listener (accept4: EMFILE).
  // Both limits go in the start-up line.
  const absl::StatusOr<jambalancer::FdLimit> fds = jambalancer::RaiseFdLimit();
  if (!fds.ok()) {
    Log(LogLevel::kError, "open file limit left as it was",
        {{"error", std::string(fds.status().message())}});
  }

  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  jambalancer::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.max_users = absl::GetFlag(FLAGS_max_users);
  options.reservation_ttl = absl::GetFlag(FLAGS_reservation_ttl);
  options.max_reservation_ttl = absl::GetFlag(FLAGS_max_reservation_ttl);
  options.lease_ttl = absl::GetFlag(FLAGS_lease_ttl);
  options.max_lease_ttl = absl::GetFlag(FLAGS_max_lease_ttl);
  options.resync_grace = absl::GetFlag(FLAGS_resync_grace);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.strand_inline = absl::GetFlag(FLAGS_strand_inline);
  jambalancer::TransportLimits& transport = options.transport;
  transport.memory_limit_bytes = absl::GetFlag(FLAGS_grpc_memory_limit);
  transport.max_concurrent_streams =
      absl::GetFlag(FLAGS_max_concurrent_streams);
  transport.max_receive_message_bytes =
      absl::GetFlag(FLAGS_max_receive_message_size);
  transport.max_send_message_bytes = absl::GetFlag(FLAGS_max_send_message_size);
  transport.max_connection_idle = absl::GetFlag(FLAGS_max_connection_idle);
  transport.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  transport.max_connection_age_grace =
      absl::GetFlag(FLAGS_max_connection_age_grace);
  transport.handshake_timeout = absl::GetFlag(FLAGS_handshake_timeout);
  transport.keepalive_time = absl::GetFlag(FLAGS_keepalive_time);
  transport.keepalive_timeout = absl::GetFlag(FLAGS_keepalive_timeout);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.max_jams = absl::GetFlag(FLAGS_max_jams);
  options.max_total_users = absl::GetFlag(FLAGS_max_total_users);
  options.max_sessions = absl::GetFlag(FLAGS_max_sessions);
  options.health_listen = absl::GetFlag(FLAGS_health_listen);
  options.strand_stall_limit = absl::GetFlag(FLAGS_strand_stall_limit);
  options.listener_probe_interval =
      absl::GetFlag(FLAGS_listener_probe_interval);
  options.memory_release_interval =
      absl::GetFlag(FLAGS_memory_release_interval);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  {
    // Pools take the default pool's reservation times unless they say.
    const jambalancer::PoolConfig pool_defaults = options.AllPools().front();
    absl::StatusOr<std::vector<jambalancer::PoolConfig>> pools =
        jambalancer::ParsePools("--pools", absl::GetFlag(FLAGS_pools),
                                pool_defaults);
    if (pools.ok() && !absl::GetFlag(FLAGS_pools_file).empty()) {
      absl::StatusOr<std::vector<jambalancer::PoolConfig>> from_file =
          jambalancer::ReadPoolsFile(absl::GetFlag(FLAGS_pools_file),
                                     pool_defaults);
      if (from_file.ok()) {
        pools->insert(pools->end(), from_file->begin(), from_file->end());
      } else {
        pools = from_file.status();
      }
    }
    if (!pools.ok()) {
      Log(LogLevel::kError, "not started",
          {{"error", std::string(pools.status().message())}});
      return EXIT_FAILURE;
    }
    options.pools = *std::move(pools);
  }

  const std::string etcd_endpoints = absl::GetFlag(FLAGS_etcd_endpoints);
  const bool replicated = !etcd_endpoints.empty();
  for (const auto& [name, value] :
       {std::pair{"etcd_cacert", absl::GetFlag(FLAGS_etcd_cacert)},
        std::pair{"etcd_cert", absl::GetFlag(FLAGS_etcd_cert)},
        std::pair{"etcd_key", absl::GetFlag(FLAGS_etcd_key)}}) {
    if (!replicated && !value.empty()) {
      Log(LogLevel::kError,
          absl::StrCat("not started: --", name, " needs --etcd_endpoints"),
          {{name, value}});
      return EXIT_FAILURE;
    }
  }
  // One election (and gate) per pool, so that pools spread over replicas.
  std::map<std::string, std::unique_ptr<LeadershipGate>> gates;
  for (const jambalancer::PoolConfig& pool : options.AllPools()) {
    gates[pool.name] = std::make_unique<LeadershipGate>();
  }
  jambalancer::PoolDirectory::GateFor gate_for;
  if (replicated) {
    gate_for = [&gates](const std::string& pool) {
      return gates.at(pool).get();
    };
  }
  auto server = jambalancer::BalancerServer::Start(options, gate_for);
  if (!server.ok()) {
    Log(LogLevel::kError, "not started",
        {{"error", std::string(server.status().message())}});
    return EXIT_FAILURE;
  }
  // Declared after the server: destroyed (their leases revoked) before it.
  std::unique_ptr<jambalancer::PoolElections> elections;
  if (replicated) {
    jambalancer::PoolElectionsOptions pool_elections;
    jambalancer::LeadershipOptions& election = pool_elections.election;
    election.etcd_endpoints =
        absl::StrSplit(etcd_endpoints, ',', absl::SkipWhitespace());
    election.election_name = absl::GetFlag(FLAGS_election_name);
    election.ttl = absl::GetFlag(FLAGS_election_ttl);
    election.etcd_cacert = absl::GetFlag(FLAGS_etcd_cacert);
    election.etcd_cert = absl::GetFlag(FLAGS_etcd_cert);
    election.etcd_key = absl::GetFlag(FLAGS_etcd_key);
    election.advertise_address =
        AdvertiseAddress(absl::GetFlag(FLAGS_advertise_address), options.listen,
                         (*server)->port());
    for (const jambalancer::PoolConfig& pool : options.AllPools()) {
      pool_elections.pools.push_back(pool.name);
    }
    pool_elections.rebalance_interval = absl::GetFlag(FLAGS_rebalance_interval);
    jambalancer::BalancerServer* serving = server->get();
    auto started = jambalancer::PoolElections::Start(
        pool_elections, [serving](const std::string& pool,
                                  const jambalancer::LeaderView& view) {
          // The server follows every transition: a new leadership starts
          // the pool empty (the front ends resync it), a lost one drops its
          // state.
          serving->OnLeadershipChange(pool, view.leading, view.epoch);
        });
    if (!started.ok()) {
      Log(LogLevel::kError, "not started",
          {{"error", std::string(started.status().message())}});
      return EXIT_FAILURE;
    }
    elections = *std::move(started);
    for (auto& [pool, gate] : gates) gate->Open(elections->Find(pool));
    Log(LogLevel::kInfo, "standing by for the pools' elections in etcd",
        {{"etcd_endpoints", etcd_endpoints},
         {"election_name", election.election_name},
         {"pools", absl::StrCat(pool_elections.pools.size())},
         {"election_ttl", absl::FormatDuration(election.ttl)},
         {"rebalance_interval",
          absl::FormatDuration(pool_elections.rebalance_interval)},
         {"etcd_cacert", election.etcd_cacert},
         {"etcd_cert", election.etcd_cert},
         {"advertise_address", election.advertise_address}});
  }
  const int metrics_port = (*server)->metrics_port();
  Log(LogLevel::kInfo, "jam-balancer started",
      {{"version", jambalancer::kVersion},
       {"listen", options.listen},
       {"port", absl::StrCat((*server)->port())},
       {"metrics_listen",
        options.metrics_listen.empty() ? "off" : options.metrics_listen},
       {"metrics_port", absl::StrCat(metrics_port)},
       {"max_users", absl::StrCat(options.max_users)},
       {"pools", PoolsText(options)},
       {"reservation_ttl", absl::FormatDuration(options.reservation_ttl)},
       {"max_reservation_ttl",
        absl::FormatDuration(options.max_reservation_ttl)},
       {"lease_ttl", absl::FormatDuration(options.lease_ttl)},
       {"max_lease_ttl", absl::FormatDuration(options.max_lease_ttl)},
       {"resync_grace", absl::FormatDuration(options.resync_grace)},
       {"strand_inline", options.strand_inline ? "true" : "false"},
       {"shutdown_grace", absl::FormatDuration(options.shutdown_grace)},
       {"open_file_limit_was", fds.ok() ? absl::StrCat(fds->before) : "?"},
       {"open_file_limit", fds.ok() ? absl::StrCat(fds->after) : "?"},
       {"grpc_memory_limit", absl::StrCat(transport.memory_limit_bytes)},
       {"max_concurrent_streams",
        absl::StrCat(transport.max_concurrent_streams)},
       {"max_receive_message_size",
        absl::StrCat(transport.max_receive_message_bytes)},
       {"max_send_message_size",
        absl::StrCat(transport.max_send_message_bytes)},
       {"max_connection_idle",
        absl::FormatDuration(transport.max_connection_idle)},
       {"max_connection_age",
        absl::FormatDuration(transport.max_connection_age)},
       {"max_connection_age_grace",
        absl::FormatDuration(transport.max_connection_age_grace)},
       {"handshake_timeout", absl::FormatDuration(transport.handshake_timeout)},
       {"keepalive_time", absl::FormatDuration(transport.keepalive_time)},
       {"keepalive_timeout", absl::FormatDuration(transport.keepalive_timeout)},
       {"max_jams", absl::StrCat(options.max_jams)},
       {"max_total_users", absl::StrCat(options.max_total_users)},
       {"max_sessions", absl::StrCat(options.max_sessions)},
       {"health_port", absl::StrCat((*server)->health_port())},
       {"strand_stall_limit", absl::FormatDuration(options.strand_stall_limit)},
       {"listener_probe_interval",
        absl::FormatDuration(options.listener_probe_interval)},
       {"memory_release_interval",
        absl::FormatDuration(options.memory_release_interval)},
       {"tls", TlsMode(options)},
       {"tls_cert", options.tls_cert},
       {"tls_client_ca", options.tls_client_ca}});

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  Log(LogLevel::kInfo,
      absl::StrCat("received ", strsignal(signal_number),
                   ", shutting down: health NOT_SERVING, draining calls"));
  if (elections != nullptr) {
    // A standby takes over at once instead of after the lease: hand over
    // first, then drain (calls are refused with the new leader's address).
    elections->Resign(absl::GetFlag(FLAGS_election_ttl));
    // Refuse for a moment (UNAVAILABLE: clients move to another replica)
    // before the listener goes: a call racing the server's shutdown would
    // be CANCELLED instead.
    absl::SleepFor(std::min(options.shutdown_grace, kHandoverPause));
  }
  (*server)->Shutdown(options.shutdown_grace);
  Log(LogLevel::kInfo, "jam-balancer stopped");
  return EXIT_SUCCESS;
}
