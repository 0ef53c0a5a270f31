#ifndef JAM_BALANCER_SERVER_RPC_POOL_DIRECTORY_H_
#define JAM_BALANCER_SERVER_RPC_POOL_DIRECTORY_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/rpc/commands.h"
#include "server/rpc/pool_config.h"
#include "server/rpc/serving_gate.h"
#include "server/runtime/jam_pool.h"

namespace jambalancer {

// One pool as the server serves it: its settings, its JamPool (state and
// strand), the parser that applies its reservation times, and the gate
// that says whether this replica serves it now (null: always).
struct ServedPool {
  ServedPool(PoolConfig config, bool strand_inline, const PoolLimits& limits,
             const LeasePolicy& leases, const ServingGate* gate)
      : config(std::move(config)),
        pool(this->config.max_users, strand_inline, limits, this->config.name),
        parser({this->config.reservation_ttl, this->config.max_reservation_ttl},
               leases),
        gate(gate) {}

  // Whether this replica may serve the pool's calls now.
  bool Serving(absl::Time now) const {
    return gate == nullptr || gate->MayServe(now);
  }

  const PoolConfig config;
  JamPool pool;
  const CommandParser parser;
  const ServingGate* const gate;
};

// The pools a server is configured for, by name. Built once at start and
// never changed, so lookups need no lock. Thread-safe.
class PoolDirectory {
 public:
  // The gate of one pool (null: the pool is always served).
  using GateFor = std::function<const ServingGate*(const std::string& pool)>;

  // `configs` holds every pool, the default one (kDefaultPoolName)
  // included; names are unique. Each pool's state is sized for `limits`.
  PoolDirectory(std::vector<PoolConfig> configs, bool strand_inline,
                const PoolLimits& limits, const LeasePolicy& leases,
                const GateFor& gate_for);

  PoolDirectory(const PoolDirectory&) = delete;
  PoolDirectory& operator=(const PoolDirectory&) = delete;

  // The pool a request names ("" is the default pool); NOT_FOUND naming it
  // when it is not configured here (INVALID_ARGUMENT when it cannot be a
  // pool name at all), naming `field`.
  absl::StatusOr<ServedPool*> Find(absl::string_view field,
                                   absl::string_view name) const;
  // The default pool.
  ServedPool& default_pool() const { return *default_pool_; }
  // Every pool, in name order.
  const std::vector<std::unique_ptr<ServedPool>>& pools() const {
    return pools_;
  }

 private:
  std::vector<std::unique_ptr<ServedPool>> pools_;  // By name.
  ServedPool* default_pool_ = nullptr;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_POOL_DIRECTORY_H_
