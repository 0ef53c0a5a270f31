#include "bench/load/config.h"

#include <string>
#include <utility>

namespace jambalancer {
namespace bench {

bool ParseWorkload(const std::string& name, WorkloadKind* kind) {
  static const std::pair<const char*, WorkloadKind> kNames[] = {
      {"current_jam", WorkloadKind::kCurrentJam},
      {"arrivals", WorkloadKind::kArrivals},
      {"refresh", WorkloadKind::kRefresh},
      {"has_capacity", WorkloadKind::kHasCapacity},
      {"batch", WorkloadKind::kBatch},
      {"arrivals_fe", WorkloadKind::kArrivalsFe},
      {"sync", WorkloadKind::kSync},
      {"expiry", WorkloadKind::kExpiry},
      {"soak", WorkloadKind::kSoak}};
  for (const auto& [candidate, value] : kNames) {
    if (name == candidate) {
      *kind = value;
      return true;
    }
  }
  return false;
}

}  // namespace bench
}  // namespace jambalancer
