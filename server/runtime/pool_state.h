#ifndef JAM_BALANCER_SERVER_RUNTIME_POOL_STATE_H_
#define JAM_BALANCER_SERVER_RUNTIME_POOL_STATE_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>

#include "absl/strings/string_view.h"
#include "server/core/jam_collection.h"
#include "server/core/session_table.h"

namespace jambalancer {

// What a pool's operations run against: the jams and the front ends'
// sessions. Touched only on the pool's strand.
struct PoolState {
  explicit PoolState(uint32_t max_users) : jams(max_users) {}

  JamCollection jams;
  SessionTable sessions;
  // Front ends whose lease ran out and that still own users, removed in
  // steps, first one first. A new session of such a front end must wait
  // until its removal is done, or the steps would remove its new users.
  std::deque<std::string> removals;
  bool Removing(absl::string_view frontend_id) const {
    return std::find(removals.begin(), removals.end(), frontend_id) !=
           removals.end();
  }
  // Running totals of the front ends removed when their lease ran out.
  uint64_t sessions_expired = 0;
  uint64_t members_removed_by_expiry = 0;
  uint64_t reservations_removed_by_expiry = 0;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RUNTIME_POOL_STATE_H_
