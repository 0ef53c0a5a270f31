#ifndef JAM_BALANCER_SERVER_RPC_SERVER_OPTIONS_H_
#define JAM_BALANCER_SERVER_RPC_SERVER_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/rpc/pool_config.h"
#include "server/rpc/transport_limits.h"

namespace jambalancer {

// Everything a BalancerServer is configured with. These defaults are the
// server's defaults: jam-balancer's flags take theirs from here.
struct ServerOptions {
  // host:port to listen on; port 0 asks the OS for a free port.
  std::string listen = "0.0.0.0:50051";
  // Capacity of every jam of the default pool: users a jam may hold (at
  // least 1).
  uint32_t max_users = 7;
  // The pools besides the default one (--pools, --pools_file), each with
  // its own jams, strand and settings. The default pool (kDefaultPoolName)
  // has max_users and the reservation times below.
  std::vector<PoolConfig> pools;
  // How long a seat reserved by CurrentJam with a user id is held when the
  // request asks for 0 ms.
  absl::Duration reservation_ttl = absl::Seconds(15);
  // Longest reservation a request may ask for; longer ones are capped.
  absl::Duration max_reservation_ttl = absl::Minutes(2);
  // A front end's lease when its Sync asks for 0 ms.
  absl::Duration lease_ttl = absl::Seconds(10);
  // Longest lease a Sync may ask for; longer ones are capped.
  absl::Duration max_lease_ttl = absl::Minutes(5);
  // After start, how long jams that front ends resupply stay closed to new
  // users (their lists may not be complete yet): long enough for a front end
  // that keeps alive at a third of the default lease to notice the restart
  // and sync.
  absl::Duration resync_grace = absl::Seconds(5);
  // Run an operation on the calling gRPC thread when the strand is idle,
  // instead of handing every one to the strand's thread (see Strand).
  bool strand_inline = true;
  // host:port serving /metrics for Prometheus; empty turns it off; port 0
  // picks a free port.
  std::string metrics_listen = "0.0.0.0:9464";
  // On shutdown, how long calls in flight may take before they are
  // cancelled.
  absl::Duration shutdown_grace = absl::Seconds(5);
  // Bounds on each pool's state, so that memory has a ceiling: calls that
  // would pass one are refused with RESOURCE_EXHAUSTED naming it. Sized for
  // the Kubernetes manifest's memory limit (see README, "Limits").
  uint64_t max_jams = 1'000'000;
  uint64_t max_total_users = 2'000'000;  // Members and reservations.
  uint64_t max_sessions = 10'000;
  // host:port of a plaintext port that serves only grpc.health.v1.Health,
  // with the gRPC port's statuses (for probes that cannot present a client
  // certificate); empty: off; port 0 picks a free port.
  std::string health_listen;
  // Health turns NOT_SERVING (for "" and the service) while the strand has
  // had work but finished none for this long, or the gRPC port stopped
  // accepting connections (listener_probe_interval).
  absl::Duration strand_stall_limit = absl::Seconds(5);
  // How often the gRPC port is probed with a fresh connection; 0: never.
  absl::Duration listener_probe_interval = absl::Seconds(5);
  // How often memory the allocator holds free is given back to the OS (a
  // burst's peak would stay in RSS otherwise); 0: never.
  absl::Duration memory_release_interval = absl::Seconds(30);
  // What one peer may cost below the service (gRPC memory, streams, message
  // sizes, connection lifetimes).
  TransportLimits transport;
  // TLS on the gRPC port (see server_credentials.h); all empty: plaintext.
  // PEM files, read once at start: new certificates need a restart.
  // The server's certificate chain, and its private key.
  std::string tls_cert;
  std::string tls_key;
  // With tls_cert: clients must present a certificate signed by a CA of this
  // bundle (mutual TLS); empty: any client may connect.
  std::string tls_client_ca;

  // Every pool, the default one first.
  std::vector<PoolConfig> AllPools() const {
    std::vector<PoolConfig> all = {
        {kDefaultPoolName, max_users, reservation_ttl, max_reservation_ttl}};
    all.insert(all.end(), pools.begin(), pools.end());
    return all;
  }
};

// Longest reservation time the server accepts as a setting.
inline constexpr absl::Duration kMaxReservationTtlSetting = absl::Hours(24);
// Shortest and longest lease the server accepts, as a setting or a request.
inline constexpr absl::Duration kMinLeaseTtl = absl::Milliseconds(500);
inline constexpr absl::Duration kMaxLeaseTtlSetting = absl::Hours(1);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_SERVER_OPTIONS_H_
