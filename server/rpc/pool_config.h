#ifndef JAM_BALANCER_SERVER_RPC_POOL_CONFIG_H_
#define JAM_BALANCER_SERVER_RPC_POOL_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace jambalancer {

// The default pool's name: requests name it with an empty pool field.
inline constexpr char kDefaultPoolName[] = "default";
inline constexpr size_t kMaxPoolNameBytes = 63;
// Pools one server may be configured for.
inline constexpr size_t kMaxPools = 256;

// One pool's settings: its own jams, on a strand of their own.
struct PoolConfig {
  std::string name;
  uint32_t max_users = 7;  // Capacity of each of its jams.
  // Seat reservations (see ServerOptions): a request asking 0 ms gets
  // reservation_ttl; longer ones are capped at max_reservation_ttl.
  absl::Duration reservation_ttl = absl::Seconds(15);
  absl::Duration max_reservation_ttl = absl::Minutes(2);

  friend bool operator==(const PoolConfig& a, const PoolConfig& b) {
    return a.name == b.name && a.max_users == b.max_users &&
           a.reservation_ttl == b.reservation_ttl &&
           a.max_reservation_ttl == b.max_reservation_ttl;
  }
};

// A pool name: 1 to 63 bytes of a-z, 0-9, '-' and '_', starting with a
// letter or digit (it becomes a metric label and an etcd key). INVALID_ARGUMENT
// naming `field` otherwise.
absl::Status ValidatePoolName(absl::string_view field, absl::string_view name);

// Parses pool specs: entries
// NAME:MAX_USERS[:RESERVATION_TTL[:MAX_RESERVATION_TTL]] (durations as 15s, 2m)
// separated by commas or newlines; '#' starts a comment that runs to the end of
// its line. Omitted TTLs are `defaults`'. The default pool is not among them
// (--max_users configures it), and no name may repeat. INVALID_ARGUMENT naming
// `source` and the bad entry.
absl::StatusOr<std::vector<PoolConfig>> ParsePools(absl::string_view source,
                                                   absl::string_view text,
                                                   const PoolConfig& defaults);

// ParsePools on the contents of the file at `path`.
absl::StatusOr<std::vector<PoolConfig>> ReadPoolsFile(
    const std::string& path, const PoolConfig& defaults);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_POOL_CONFIG_H_
