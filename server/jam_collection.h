#ifndef JAM_BALANCER_SERVER_JAM_COLLECTION_H_
#define JAM_BALANCER_SERVER_JAM_COLLECTION_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace jambalancer {

// Answer of CurrentJam and of a turned-away AddUser's redirect.
struct CurrentJamResult {
  std::string jam_id;
  uint32_t user_count = 0;
  bool new_jam = false;  // jam_id is fresh and not stored.
};

struct RemoveUserResult {
  bool removed = false;
  uint32_t user_count = 0;  // Users left in the jam (0 when it is gone).
};

struct HasCapacityResult {
  bool has_capacity = false;
  uint32_t user_count = 0;
};

struct AddUserResult {
  bool added = false;
  uint32_t user_count = 0;
  std::string redirect_jam_id;  // Set only when added is false.
};

struct CollectionStats {
  uint64_t jam_count = 0;
  uint64_t user_count = 0;
  uint64_t full_jam_count = 0;  // Jams with user_count >= max_users.
};

struct JamSnapshot {
  std::string jam_id;
  std::vector<std::string> user_ids;  // In byte order.
};

struct JamPage {
  std::vector<JamSnapshot> jams;
  bool has_more = false;  // More jams follow the last one of this page.
};

// The jams and their users: jam id -> set of user ids, with the queries that
// place arriving users. Pure and single-threaded: no locks, no threads, no
// clock. The owner must serialize every call (the strand does).
//
// Every operation costs O(log jams + size of its own arguments): indexes keep
// the jams with room ordered by (most users, smallest id) and all jams ordered
// by id, so no request scans the collection.
//
// Ids are taken as given; callers validate them (see validation.h).
class JamCollection {
 public:
  // REQUIRES: max_users >= 1.
  explicit JamCollection(uint32_t max_users);

  JamCollection(const JamCollection&) = delete;
  JamCollection& operator=(const JamCollection&) = delete;

  uint32_t max_users() const { return max_users_; }

  // Among jams with fewer than max_users users, the one with the most users
  // (ties: smallest id in byte order). If none has room, a fresh random
  // lowercase UUID v4 with new_jam set; the fresh id is not stored.
  CurrentJamResult CurrentJam();

  // Replaces the jam's users with `user_ids` (duplicates count once),
  // creating the jam if needed. Stored even beyond max_users (the jam is then
  // overfilled). An empty list deletes the jam. Returns the new user count.
  uint32_t Refresh(absl::string_view jam_id,
                   absl::Span<const absl::string_view> user_ids);

  // Removes the user from the jam; a jam left empty is deleted. Unknown jam
  // or user: removed is false and nothing changes.
  RemoveUserResult RemoveUser(absl::string_view jam_id,
                              absl::string_view user_id);

  // True for an unknown jam; otherwise user_count < max_users.
  HasCapacityResult HasCapacity(absl::string_view jam_id) const;

  // Atomic check-and-add. A member already: added, no change. Room left: the
  // user is added. Full: not added, no change, and redirect_jam_id is what
  // CurrentJam answers now (never this jam).
  AddUserResult AddUser(absl::string_view jam_id, absl::string_view user_id);

  CollectionStats Stats() const;

  // Up to `limit` jams whose ids sort after `after_jam_id` (all jams when it
  // is empty), in id order.
  JamPage ListJams(absl::string_view after_jam_id, size_t limit) const;

 private:
  using UserSet = absl::flat_hash_set<std::string>;
  // node_hash_map: keys never move, so the indexes can point at them.
  using JamMap = absl::node_hash_map<std::string, UserSet>;

  // A jam that has room, ordered most users first, then by id.
  struct RoomKey {
    uint32_t user_count;
    absl::string_view jam_id;  // Points at a key of jams_.
  };
  struct RoomOrder {
    bool operator()(const RoomKey& a, const RoomKey& b) const {
      if (a.user_count != b.user_count) return a.user_count > b.user_count;
      return a.jam_id < b.jam_id;
    }
  };

  bool HasRoom(size_t user_count) const {
    return user_count > 0 && user_count < max_users_;
  }
  // Brings the indexes and totals up to date after the jam at `it` went from
  // `old_count` to its current user count; deletes the jam if it is empty.
  void Reindex(JamMap::iterator it, size_t old_count);
  // Finds the jam, creating an empty one (not yet indexed by room) if absent.
  JamMap::iterator FindOrCreate(absl::string_view jam_id);

  const uint32_t max_users_;
  JamMap jams_;
  absl::btree_set<absl::string_view> jams_by_id_;  // Keys of jams_.
  absl::btree_set<RoomKey, RoomOrder> jams_with_room_;
  uint64_t user_count_ = 0;
  uint64_t full_jam_count_ = 0;
  absl::BitGen random_;  // For fresh jam ids.
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_JAM_COLLECTION_H_
