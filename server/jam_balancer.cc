#include "server/jam_balancer.h"

#include <utility>

namespace jambalancer {

JamBalancer::JamBalancer(uint32_t max_users) : collection_(max_users) {}

bool JamBalancer::Post(Operation operation) {
  return strand_.Post([this, operation = std::move(operation)]() mutable {
    std::move(operation)(collection_);
  });
}

}  // namespace jambalancer
