#ifndef JAM_BALANCER_SERVER_RPC_SERVING_GATE_H_
#define JAM_BALANCER_SERVER_RPC_SERVING_GATE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "server/metrics/leadership_metrics.h"

namespace jambalancer {

// Trailing metadata of every answer of a replica that runs with a gate: the
// epoch the answer belongs to, and (when refused) where the leader is.
inline constexpr char kEpochMetadataKey[] = "jam-balancer-epoch";
inline constexpr char kLeaderMetadataKey[] = "jam-balancer-leader";

// Whether this replica may answer balancer calls now, and what callers are
// told when it may not. When several replicas share the work through an
// election (server/ha), only the leader serves; main implements this over
// that leadership. A server running alone has no gate and always serves.
//
// Thread-safe; every method is cheap (called on every call).
class ServingGate {
 public:
  virtual ~ServingGate() = default;

  // This replica leads and its leadership is not past its fence deadline at
  // `now`: its answers may go out.
  virtual bool MayServe(absl::Time now) const = 0;
  // The epoch of the leadership this replica knows of (0: none known).
  virtual int64_t Epoch() const = 0;
  // The leader's address, for callers to dial instead; empty if unknown.
  virtual std::string LeaderAddress() const = 0;
  // What /metrics shows of the election; nullopt: nothing.
  virtual std::optional<LeadershipReading> Reading() const {
    return std::nullopt;
  }
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_SERVING_GATE_H_
