#include "server/jam_collection.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "server/jam_id.h"

namespace jambalancer {

JamCollection::JamCollection(uint32_t max_users) : max_users_(max_users) {
  assert(max_users >= 1);
}

CurrentJamResult JamCollection::CurrentJam() {
  if (jams_with_room_.empty()) {
    return {NewJamId(random_), 0, /*new_jam=*/true};
  }
  const RoomKey& best = *jams_with_room_.begin();
  return {std::string(best.jam_id), best.user_count, /*new_jam=*/false};
}

JamCollection::JamMap::iterator JamCollection::FindOrCreate(
    absl::string_view jam_id) {
  auto it = jams_.find(jam_id);
  if (it != jams_.end()) return it;
  it = jams_.emplace(std::string(jam_id), UserSet()).first;
  jams_by_id_.insert(it->first);
  return it;
}

void JamCollection::Reindex(JamMap::iterator it, size_t old_count) {
  const size_t new_count = it->second.size();
  const absl::string_view jam_id = it->first;
  if (old_count != new_count) {
    if (HasRoom(old_count)) {
      jams_with_room_.erase(RoomKey{static_cast<uint32_t>(old_count), jam_id});
    }
    if (HasRoom(new_count)) {
      jams_with_room_.insert(RoomKey{static_cast<uint32_t>(new_count), jam_id});
    }
    if (old_count >= max_users_) --full_jam_count_;
    if (new_count >= max_users_) ++full_jam_count_;
    user_count_ = user_count_ - old_count + new_count;
  }
  if (new_count == 0) {
    jams_by_id_.erase(jam_id);
    jams_.erase(it);
  }
}

uint32_t JamCollection::Refresh(absl::string_view jam_id,
                                absl::Span<const absl::string_view> user_ids) {
  if (user_ids.empty()) {
    auto it = jams_.find(jam_id);
    if (it != jams_.end()) {
      const size_t old_count = it->second.size();
      it->second.clear();
      Reindex(it, old_count);
    }
    return 0;
  }
  UserSet users;
  users.reserve(user_ids.size());
  for (absl::string_view user_id : user_ids) users.emplace(user_id);

  auto it = FindOrCreate(jam_id);
  const size_t old_count = it->second.size();
  it->second = std::move(users);
  const auto new_count = static_cast<uint32_t>(it->second.size());
  Reindex(it, old_count);
  return new_count;
}

RemoveUserResult JamCollection::RemoveUser(absl::string_view jam_id,
                                           absl::string_view user_id) {
  auto it = jams_.find(jam_id);
  if (it == jams_.end()) return {false, 0};
  const size_t old_count = it->second.size();
  if (it->second.erase(user_id) == 0) {
    return {false, static_cast<uint32_t>(old_count)};
  }
  const auto new_count = static_cast<uint32_t>(old_count - 1);
  Reindex(it, old_count);
  return {true, new_count};
}

HasCapacityResult JamCollection::HasCapacity(absl::string_view jam_id) const {
  auto it = jams_.find(jam_id);
  if (it == jams_.end()) return {true, 0};
  const size_t count = it->second.size();
  return {count < max_users_, static_cast<uint32_t>(count)};
}

AddUserResult JamCollection::AddUser(absl::string_view jam_id,
                                     absl::string_view user_id) {
  auto it = jams_.find(jam_id);
  if (it != jams_.end()) {
    UserSet& users = it->second;
    const size_t old_count = users.size();
    if (users.contains(user_id)) {
      return {true, static_cast<uint32_t>(old_count), ""};
    }
    if (old_count >= max_users_) {
      return {false, static_cast<uint32_t>(old_count), CurrentJam().jam_id};
    }
    users.emplace(user_id);
    Reindex(it, old_count);
    return {true, static_cast<uint32_t>(old_count + 1), ""};
  }
  it = FindOrCreate(jam_id);
  it->second.emplace(user_id);
  Reindex(it, 0);
  return {true, 1, ""};
}

CollectionStats JamCollection::Stats() const {
  return {jams_.size(), user_count_, full_jam_count_};
}

JamPage JamCollection::ListJams(absl::string_view after_jam_id,
                                size_t limit) const {
  JamPage page;
  auto it = after_jam_id.empty() ? jams_by_id_.begin()
                                 : jams_by_id_.upper_bound(after_jam_id);
  for (; it != jams_by_id_.end() && page.jams.size() < limit; ++it) {
    const UserSet& users = jams_.find(*it)->second;
    JamSnapshot& jam = page.jams.emplace_back();
    jam.jam_id = std::string(*it);
    jam.user_ids.assign(users.begin(), users.end());
    std::sort(jam.user_ids.begin(), jam.user_ids.end());
  }
  page.has_more = it != jams_by_id_.end();
  return page;
}

}  // namespace jambalancer
