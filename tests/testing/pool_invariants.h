#ifndef JAM_BALANCER_TESTS_TESTING_POOL_INVARIANTS_H_
#define JAM_BALANCER_TESTS_TESTING_POOL_INVARIANTS_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/core/jam_collection.h"
#include "server/runtime/pool_state.h"

namespace jambalancer {
namespace testing {

// What the collection holds, read through its public queries (ListJams,
// GetJam): for tests that compare states or check promises from outside.
struct JamView {
  std::map<std::string, std::string> members;  // User id -> owner ("": none).
  uint32_t reserved = 0;
  size_t occupancy() const { return members.size() + reserved; }
  bool operator==(const JamView& other) const {
    return members == other.members && reserved == other.reserved;
  }
};
using PoolView = std::map<std::string, JamView>;  // By jam id.

// Every jam at `now` (due reservations expire first, as in every call).
PoolView ViewOf(JamCollection& jams, absl::Time now);

// Checks the promises of jam_collection.h, session_table.h and
// pool_state.h on `state` at `now`, through their public interfaces only:
// - ListJams lists each jam once, in id order, each with members or seats;
//   GetJam agrees with it; a user is a member of at most one jam and each
//   member's jam holds it (HasCapacity for that user is true);
// - Snapshot's totals and jams_by_members are the sums over the jams;
// - CurrentJam answers the best open jam with room (highest occupancy,
//   smallest id), else a fresh id; HasCapacity of each jam agrees;
// - every owner is one of `frontends`, and CountsOf each agrees with the
//   members listed; a front end that owns anything has a session or is
//   queued in `removals` (never both, never queued twice);
// - SessionTable lists its sessions in id order, and its NextExpiry is
//   the earliest of their leases.
// Returns INTERNAL naming the first broken promise. Stores the view it
// read in `view` if not null. Not const: every query of the collection
// first expires what is due at `now`, like the server's calls.
absl::Status CheckPoolInvariants(PoolState& state, absl::Time now,
                                 absl::Span<const std::string> frontends,
                                 PoolView* view = nullptr);

// A readable dump of a view, for failure messages.
std::string ToString(const PoolView& view);

}  // namespace testing
}  // namespace jambalancer

#endif  // JAM_BALANCER_TESTS_TESTING_POOL_INVARIANTS_H_
