#ifndef JAM_BALANCER_SERVER_CORE_EXPIRY_QUEUE_H_
#define JAM_BALANCER_SERVER_CORE_EXPIRY_QUEUE_H_

#include <cstddef>
#include <optional>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/time/time.h"

namespace jambalancer {

// Keys with a deadline each, in deadline order: what expires next and what
// is due now, in O(log n). Seat reservations use it; so can anything else
// that lapses (leases). Pure: time comes in as arguments. Not thread-safe;
// the owner serializes calls.
//
// Keys are small values (handles); equal deadlines are ordered by key.
template <typename Key>
class ExpiryQueue {
 public:
  ExpiryQueue() = default;
  ExpiryQueue(const ExpiryQueue&) = delete;
  ExpiryQueue& operator=(const ExpiryQueue&) = delete;

  // Sets `key` to expire at `when`, replacing the deadline it had.
  void Schedule(Key key, absl::Time when) {
    auto [it, inserted] = deadlines_.try_emplace(key, when);
    if (!inserted) {
      by_deadline_.erase({it->second, key});
      it->second = when;
    }
    by_deadline_.emplace(when, key);
  }

  // Removes `key`. Returns false if it was not scheduled.
  bool Cancel(Key key) {
    auto it = deadlines_.find(key);
    if (it == deadlines_.end()) return false;
    by_deadline_.erase({it->second, key});
    deadlines_.erase(it);
    return true;
  }

  // The deadline of `key`, if it is scheduled.
  std::optional<absl::Time> DeadlineOf(Key key) const {
    auto it = deadlines_.find(key);
    if (it == deadlines_.end()) return std::nullopt;
    return it->second;
  }

  // The earliest deadline; InfiniteFuture when empty.
  absl::Time Next() const {
    return by_deadline_.empty() ? absl::InfiniteFuture()
                                : by_deadline_.begin()->first;
  }

  // The key with the earliest deadline if that is at or before `now`. It
  // stays scheduled: the caller cancels it (typically while dropping what
  // the key stands for), so a loop `while (auto key = FirstDue(now))` ends.
  std::optional<Key> FirstDue(absl::Time now) const {
    if (by_deadline_.empty() || by_deadline_.begin()->first > now) {
      return std::nullopt;
    }
    return by_deadline_.begin()->second;
  }

  size_t size() const { return deadlines_.size(); }
  bool empty() const { return deadlines_.empty(); }

 private:
  absl::btree_set<std::pair<absl::Time, Key>> by_deadline_;
  // A B-tree, not a hash map: it grows a node at a time, never rehashing
  // millions of entries in one call.
  absl::btree_map<Key, absl::Time> deadlines_;  // Exact, as scheduled.
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_CORE_EXPIRY_QUEUE_H_
