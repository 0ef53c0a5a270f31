#include "server/jam_collection.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "server/jam_id.h"

namespace jambalancer {

JamCollection::JamCollection(uint32_t max_users) : max_users_(max_users) {
  assert(max_users >= 1);
  counters_.jams_by_members.assign(max_users_ + 2, 0);
}

uint64_t JamCollection::IdPrefix(absl::string_view id) {
  uint64_t prefix = 0;
  for (size_t i = 0; i < 8; ++i) {
    prefix = (prefix << 8) | (i < id.size() ? static_cast<uint8_t>(id[i]) : 0);
  }
  return prefix;
}

JamCollection::Jam* JamCollection::Find(absl::string_view jam_id) {
  auto it = jams_.find(jam_id);
  return it == jams_.end() ? nullptr : &it->second;
}

JamCollection::Jam* JamCollection::FindOrCreate(absl::string_view jam_id) {
  if (Jam* jam = Find(jam_id)) return jam;
  auto it = jams_.emplace(std::string(jam_id), Jam()).first;
  Jam* jam = &it->second;
  jam->id = it->first;
  jam->id_prefix = IdPrefix(jam->id);
  jams_by_id_.emplace(IdKey{jam->id_prefix, jam->id}, jam);
  ++counters_.jams_created;
  ++counters_.jams_by_members[0];
  return jam;
}

void JamCollection::Reindex(Jam* jam, size_t old_members,
                            size_t old_occupancy) {
  const size_t new_members = jam->members.size();
  const size_t new_occupancy = jam->occupancy();
  const IdKey id{jam->id_prefix, jam->id};
  if (old_occupancy != new_occupancy) {
    if (HasRoom(old_occupancy)) {
      jams_with_room_.erase(RoomKey{static_cast<uint32_t>(old_occupancy), id});
    }
    if (HasRoom(new_occupancy)) {
      jams_with_room_.emplace(RoomKey{static_cast<uint32_t>(new_occupancy), id},
                              jam);
    }
  }
  if (old_members >= max_users_) --full_jam_count_;
  if (new_members >= max_users_) ++full_jam_count_;
  const size_t overfilled = max_users_ + 1;
  --counters_.jams_by_members[std::min(old_members, overfilled)];
  ++counters_.jams_by_members[std::min(new_members, overfilled)];
  member_count_ = member_count_ - old_members + new_members;
}

void JamCollection::DeleteIfEmpty(Jam* jam) {
  if (jam->occupancy() != 0) return;
  // Not in jams_with_room_: HasRoom(0) is false.
  jams_by_id_.erase(IdKey{jam->id_prefix, jam->id});
  --counters_.jams_by_members[0];
  jams_.erase(jams_.find(jam->id));
}

JamCollection::Jam* JamCollection::BestWithRoom() const {
  return jams_with_room_.empty() ? nullptr : jams_with_room_.begin()->second;
}

CurrentJamResult JamCollection::Answer(const Jam* best) {
  if (best == nullptr) return {NewJamId(random_), 0, /*new_jam=*/true};
  return {std::string(best->id), static_cast<uint32_t>(best->members.size()),
          /*new_jam=*/false};
}

void JamCollection::Detach(UserMap::iterator user) {
  User& state = user->second;
  Jam* jam = state.jam;
  const size_t old_members = jam->members.size();
  const size_t old_occupancy = jam->occupancy();
  if (state.reserved) {
    --jam->reserved;
    reservations_by_expiry_.erase({state.expires, user->first});
    state.reserved = false;
  } else {
    // Members are views of users_ keys: find this user's by address.
    auto member = std::find_if(
        jam->members.begin(), jam->members.end(),
        [&](absl::string_view m) { return m.data() == user->first.data(); });
    assert(member != jam->members.end());
    *member = jam->members.back();
    jam->members.pop_back();
  }
  state.jam = nullptr;
  Reindex(jam, old_members, old_occupancy);
}

void JamCollection::Forget(UserMap::iterator user) {
  Jam* jam = user->second.jam;
  Detach(user);
  users_.erase(user);
  DeleteIfEmpty(jam);
}

void JamCollection::Join(UserMap::iterator user, Jam* jam) {
  if (Jam* previous = user->second.jam) {
    Detach(user);
    if (previous != jam) DeleteIfEmpty(previous);
  }
  const size_t old_members = jam->members.size();
  const size_t old_occupancy = jam->occupancy();
  jam->members.push_back(user->first);
  user->second.jam = jam;
  Reindex(jam, old_members, old_occupancy);
}

void JamCollection::ExpireReservations(absl::Time now) {
  while (!reservations_by_expiry_.empty() &&
         reservations_by_expiry_.begin()->first <= now) {
    ++counters_.reservations_expired;
    Forget(users_.find(reservations_by_expiry_.begin()->second));
  }
}

absl::Time JamCollection::NextExpiry() const {
  return reservations_by_expiry_.empty()
             ? absl::InfiniteFuture()
             : reservations_by_expiry_.begin()->first;
}

CurrentJamResult JamCollection::CurrentJam(absl::Time now) {
  ExpireReservations(now);
  return Answer(BestWithRoom());
}

CurrentJamResult JamCollection::ReserveSeat(absl::string_view user_id,
                                            absl::Duration ttl,
                                            absl::Time now) {
  assert(ttl > absl::ZeroDuration());
  ExpireReservations(now);
  auto user = users_.find(user_id);
  if (user != users_.end() && !user->second.reserved) {
    return Answer(user->second.jam);  // A member keeps its seat.
  }
  Jam* previous = nullptr;
  if (user != users_.end()) {
    previous = user->second.jam;
    Detach(user);
  } else {
    user = users_.emplace(std::string(user_id), User()).first;
  }
  Jam* target = BestWithRoom();
  bool fresh = false;
  if (target == nullptr) {
    // No jam has room for others: keep the seat the user held, if any.
    target = previous;
  }
  if (target == nullptr) {
    target = FindOrCreate(NewJamId(random_));
    fresh = true;
  }
  if (previous != nullptr && previous != target) DeleteIfEmpty(previous);

  const size_t old_members = target->members.size();
  const size_t old_occupancy = target->occupancy();
  const absl::Time expires = now + ttl;
  ++target->reserved;
  ++counters_.reservations_made;
  user->second = User{target, /*reserved=*/true, expires};
  reservations_by_expiry_.emplace(expires, user->first);
  Reindex(target, old_members, old_occupancy);

  CurrentJamResult result = Answer(target);
  result.new_jam = fresh;
  result.reservation_expires = expires;
  return result;
}

uint32_t JamCollection::Refresh(absl::string_view jam_id,
                                absl::Span<const absl::string_view> user_ids,
                                absl::Time now) {
  ExpireReservations(now);
  Jam* jam = user_ids.empty() ? Find(jam_id) : FindOrCreate(jam_id);
  if (jam == nullptr) return 0;
  const size_t old_members = jam->members.size();
  const size_t old_occupancy = jam->occupancy();

  // Unmark the old members; those listed again are marked back below. The
  // indexes keep the jam's old state until the Reindex at the end.
  std::vector<absl::string_view> previous_members;
  previous_members.swap(jam->members);
  for (absl::string_view member : previous_members) {
    users_.find(member)->second.jam = nullptr;
  }
  for (absl::string_view user_id : user_ids) {
    auto user = users_.find(user_id);
    if (user == users_.end()) {
      user = users_.emplace(std::string(user_id), User()).first;
    }
    User& state = user->second;
    if (state.jam == jam) {
      if (!state.reserved) continue;  // Listed twice.
      // The reservation becomes membership.
      --jam->reserved;
      reservations_by_expiry_.erase({state.expires, user->first});
      state.reserved = false;
    } else if (Jam* other = state.jam) {
      Detach(user);
      DeleteIfEmpty(other);
    }
    state.jam = jam;
    jam->members.push_back(user->first);
  }
  for (absl::string_view member : previous_members) {
    auto user = users_.find(member);
    if (user->second.jam == nullptr) users_.erase(user);
  }
  const auto count = static_cast<uint32_t>(jam->members.size());
  if (count > max_users_) ++counters_.overfilled_refreshes;
  Reindex(jam, old_members, old_occupancy);
  DeleteIfEmpty(jam);
  return count;
}

RemoveUserResult JamCollection::RemoveUser(absl::string_view jam_id,
                                           absl::string_view user_id,
                                           absl::Time now) {
  ExpireReservations(now);
  Jam* jam = Find(jam_id);
  if (jam == nullptr) return {false, 0};
  auto user = users_.find(user_id);
  const auto members = static_cast<uint32_t>(jam->members.size());
  if (user == users_.end() || user->second.jam != jam) return {false, members};
  const bool member = !user->second.reserved;
  Forget(user);  // May delete the jam.
  return {true, member ? members - 1 : members};
}

HasCapacityResult JamCollection::HasCapacity(absl::string_view jam_id,
                                             absl::string_view user_id,
                                             absl::Time now) {
  ExpireReservations(now);
  const Jam* jam = Find(jam_id);
  if (jam == nullptr) return {true, 0};
  const auto members = static_cast<uint32_t>(jam->members.size());
  if (!user_id.empty()) {
    auto user = users_.find(user_id);
    if (user != users_.end() && user->second.jam == jam) return {true, members};
  }
  return {jam->occupancy() < max_users_, members};
}

AddUserResult JamCollection::AddUser(absl::string_view jam_id,
                                     absl::string_view user_id,
                                     absl::Time now) {
  ExpireReservations(now);
  Jam* jam = Find(jam_id);
  auto user = users_.find(user_id);
  const bool in_this_jam =
      jam != nullptr && user != users_.end() && user->second.jam == jam;
  if (!in_this_jam && jam != nullptr && jam->occupancy() >= max_users_) {
    ++counters_.users_turned_away;
    return {false, static_cast<uint32_t>(jam->members.size()),
            Answer(BestWithRoom()).jam_id};
  }
  if (!in_this_jam || user->second.reserved) {
    if (jam == nullptr) jam = FindOrCreate(jam_id);
    if (user == users_.end()) {
      user = users_.emplace(std::string(user_id), User()).first;
    }
    Join(user, jam);
  }
  return {true, static_cast<uint32_t>(jam->members.size()), ""};
}

CollectionStats JamCollection::Stats(absl::Time now) {
  ExpireReservations(now);
  return Totals();
}

CollectionStats JamCollection::Totals() const {
  return {jams_.size(), member_count_, full_jam_count_,
          reservations_by_expiry_.size()};
}

CollectionCounters JamCollection::Counters() const {
  CollectionCounters counters = counters_;
  counters.stats = Totals();
  return counters;
}

JamPage JamCollection::ListJams(absl::string_view after_jam_id, size_t limit,
                                absl::Time now) {
  ExpireReservations(now);
  JamPage page;
  page.jams.reserve(std::min(limit, jams_.size()));
  auto it = after_jam_id.empty() ? jams_by_id_.begin()
                                 : jams_by_id_.upper_bound(IdKey{
                                       IdPrefix(after_jam_id), after_jam_id});
  for (; it != jams_by_id_.end() && page.jams.size() < limit; ++it) {
    const Jam& jam = *it->second;
    JamSnapshot& snapshot = page.jams.emplace_back();
    snapshot.jam_id = std::string(jam.id);
    snapshot.user_ids.reserve(jam.members.size());
    for (absl::string_view member : jam.members) {
      snapshot.user_ids.emplace_back(member);
    }
    std::sort(snapshot.user_ids.begin(), snapshot.user_ids.end());
    snapshot.reserved_count = jam.reserved;
  }
  page.has_more = it != jams_by_id_.end();
  return page;
}

}  // namespace jambalancer
