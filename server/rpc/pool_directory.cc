#include "server/rpc/pool_directory.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"

namespace jambalancer {

PoolDirectory::PoolDirectory(std::vector<PoolConfig> configs,
                             bool strand_inline, const PoolLimits& limits,
                             const LeasePolicy& leases,
                             const GateFor& gate_for) {
  std::sort(
      configs.begin(), configs.end(),
      [](const PoolConfig& a, const PoolConfig& b) { return a.name < b.name; });
  pools_.reserve(configs.size());
  for (PoolConfig& config : configs) {
    const ServingGate* gate = gate_for ? gate_for(config.name) : nullptr;
    pools_.push_back(std::make_unique<ServedPool>(
        std::move(config), strand_inline, limits, leases, gate));
    if (pools_.back()->config.name == kDefaultPoolName) {
      default_pool_ = pools_.back().get();
    }
  }
  assert(default_pool_ != nullptr);
}

absl::StatusOr<ServedPool*> PoolDirectory::Find(absl::string_view field,
                                                absl::string_view name) const {
  if (name.empty()) return default_pool_;
  auto it = std::lower_bound(
      pools_.begin(), pools_.end(), name,
      [](const std::unique_ptr<ServedPool>& pool, absl::string_view name) {
        return pool->config.name < name;
      });
  if (it != pools_.end() && (*it)->config.name == name) return it->get();
  if (absl::Status s = ValidatePoolName(field, name); !s.ok()) return s;
  return absl::NotFoundError(
      absl::StrCat(field, ": pool \"", name,
                   "\" is not configured on this server (see ListPools)"));
}

}  // namespace jambalancer
