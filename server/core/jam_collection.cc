#include "server/core/jam_collection.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "server/core/jam_id.h"

namespace jambalancer {

JamCollection::JamCollection(uint32_t max_users, const CollectionLimits& limits)
    : max_users_(max_users), limits_(limits) {
  // One cache line per jam, two users per line (see Jam and User).
  static_assert(sizeof(Jam) == 64);
  static_assert(sizeof(User) == 32);
  assert(max_users >= 1);
  counters_.max_users = max_users_;
  counters_.jams_by_members.assign(max_users_ + 2, 0);
  // The id tables' indexes sized now: growth never rehashes them (at tens
  // of millions a rehash took seconds). The other sets are B-trees.
  if (limits_.max_jams != UINT64_MAX) {
    assert(limits_.max_jams < kNoHandle);
    jams_.Reserve(limits_.max_jams);
  }
  if (limits_.max_total_users != UINT64_MAX) {
    assert(limits_.max_total_users < kNoHandle);
    users_.Reserve(limits_.max_total_users);
  }
}

absl::Status JamCollection::CheckFits(uint64_t stored, uint64_t adding,
                                      uint64_t limit, absl::string_view flag,
                                      absl::string_view what) {
  if (adding <= limit && stored <= limit - adding) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      flag, " (", limit, ") reached: ", stored, " ", what, " stored, ", adding,
      " more asked for; nothing was changed"));
}

absl::Status JamCollection::CheckRoom(
    absl::Span<const absl::string_view> jam_ids,
    absl::Span<const absl::string_view> user_ids, size_t fresh_jams) const {
  // Far from a limit the number of ids decides; near it, only new ids count.
  uint64_t new_jams = jam_ids.size() + fresh_jams;
  if (jams_.size() + new_jams > limits_.max_jams) {
    new_jams = fresh_jams;
    for (absl::string_view id : jam_ids) {
      if (jams_.Find(IdKey(id)) == kNoHandle) ++new_jams;
    }
  }
  if (absl::Status s = CheckFits(jams_.size(), new_jams, limits_.max_jams,
                                 "max_jams", "jams");
      !s.ok()) {
    return s;
  }
  uint64_t new_users = user_ids.size();
  if (users_.size() + new_users > limits_.max_total_users) {
    new_users = 0;
    for (absl::string_view id : user_ids) {
      if (users_.Find(IdKey(id)) == kNoHandle) ++new_users;
    }
  }
  return CheckFits(users_.size(), new_users, limits_.max_total_users,
                   "max_total_users", "users (members and reservations)");
}

absl::Status JamCollection::CheckRoomForSeat(absl::string_view user_id) const {
  if (jams_.size() >= limits_.max_jams && jams_with_room_.Best() == kNoHandle) {
    // Every jam is full: the seat would be in a fresh one.
    if (absl::Status s =
            CheckFits(jams_.size(), 1, limits_.max_jams, "max_jams", "jams");
        !s.ok()) {
      return s;
    }
  }
  return CheckRoom({}, absl::MakeConstSpan(&user_id, 1));
}

absl::Status JamCollection::CheckRoomForSync(
    absl::Span<const JamMembers> jams) const {
  uint64_t listed = 0;
  for (const JamMembers& jam : jams) listed += jam.user_ids.size();
  uint64_t new_jams = jams.size();
  if (jams_.size() + new_jams > limits_.max_jams) {
    new_jams = 0;
    for (const JamMembers& jam : jams) {
      if (jams_.Find(IdKey(jam.jam_id)) == kNoHandle) ++new_jams;
    }
  }
  if (absl::Status s = CheckFits(jams_.size(), new_jams, limits_.max_jams,
                                 "max_jams", "jams");
      !s.ok()) {
    return s;
  }
  uint64_t new_users = listed;
  if (users_.size() + new_users > limits_.max_total_users) {
    new_users = 0;
    for (const JamMembers& jam : jams) {
      for (absl::string_view id : jam.user_ids) {
        if (users_.Find(IdKey(id)) == kNoHandle) ++new_users;
      }
    }
  }
  return CheckFits(users_.size(), new_users, limits_.max_total_users,
                   "max_total_users", "users (members and reservations)");
}

bool JamCollection::IdOrder::operator()(const IdOrderKey& a,
                                        const IdOrderKey& b) const {
  if (a.prefix != b.prefix) return a.prefix < b.prefix;
  if (a.jam == b.jam) return false;
  return PackedId::Compare((*jams)[a.jam].id.packed(),
                           (*jams)[b.jam].id.packed()) < 0;
}

bool JamCollection::IdOrder::operator()(const IdOrderKey& a,
                                        const IdProbe& b) const {
  if (a.prefix != b.prefix) return a.prefix < b.prefix;
  return PackedId::Compare((*jams)[a.jam].id.packed(), *b.id) < 0;
}

bool JamCollection::IdOrder::operator()(const IdProbe& a,
                                        const IdOrderKey& b) const {
  if (a.prefix != b.prefix) return a.prefix < b.prefix;
  return PackedId::Compare(*a.id, (*jams)[b.jam].id.packed()) < 0;
}

bool JamCollection::JamIdLess(Handle a, Handle b) const {
  return PackedId::Compare(jams_[a].id.packed(), jams_[b].id.packed()) < 0;
}

JamCollection::Handle JamCollection::FindOrCreateJam(const IdKey& key) {
  const auto [jam, inserted] = jams_.FindOrInsert(key);
  if (inserted) {
    if (!resync_.closed_ids.empty() &&
        resync_.closed_ids.contains(key.packed().ToString())) {
      resync_.closed_jams.insert(jam);
    }
    jams_by_id_.insert(IdOrderKey{key.packed().Prefix(), jam});
    ++counters_.jams_created;
    ++counters_.jams_by_members[0];
  }
  return jam;
}

JamCollection::CallKeys JamCollection::KeysOf(absl::string_view jam_id,
                                              absl::string_view user_id,
                                              bool user_optional) {
  PrefetchIdBytes(jam_id);
  PrefetchIdBytes(user_id);
  CallKeys keys{IdKey(jam_id), std::nullopt};
  if (!user_optional || !user_id.empty()) keys.user.emplace(user_id);
  return keys;
}

std::pair<JamCollection::Handle, JamCollection::Handle>
JamCollection::FindJamAndUser(const CallKeys& keys, bool will_reindex) const {
  jams_.Prefetch(keys.jam);
  if (keys.user.has_value()) users_.Prefetch(*keys.user);
  const Handle jam = jams_.Find(keys.jam);
  if (will_reindex && jam != kNoHandle) jams_with_room_.Prefetch(jam);
  return {jam, keys.user.has_value() ? users_.Find(*keys.user) : kNoHandle};
}

void JamCollection::Reindex(Handle jam, size_t old_members,
                            size_t old_occupancy) {
  const Jam& record = jams_[jam];
  const size_t new_members = record.members.size();
  const size_t new_occupancy = record.occupancy();
  if (old_occupancy != new_occupancy &&
      (HasRoom(old_occupancy) || HasRoom(new_occupancy))) {
    const uint32_t level = HasRoom(new_occupancy) && !Closed(jam)
                               ? static_cast<uint32_t>(new_occupancy)
                               : 0;
    jams_with_room_.Set(jam, level, record.id.packed().Prefix(),
                        [this](Handle a, Handle b) { return JamIdLess(a, b); });
  }
  if (old_members >= max_users_) --full_jam_count_;
  if (new_members >= max_users_) ++full_jam_count_;
  const size_t overfilled = max_users_ + 1;
  --counters_.jams_by_members[std::min(old_members, overfilled)];
  ++counters_.jams_by_members[std::min(new_members, overfilled)];
  member_count_ = member_count_ - old_members + new_members;
}

void JamCollection::DeleteIfEmpty(Handle jam) {
  const Jam& record = jams_[jam];
  if (record.occupancy() != 0) return;
  // Not in jams_with_room_: HasRoom(0) is false.
  jams_by_id_.erase(IdOrderKey{record.id.packed().Prefix(), jam});
  --counters_.jams_by_members[0];
  if (jam == answered_jam_) answered_jam_ = kNoHandle;
  resync_.closed_jams.erase(jam);
  jams_.Erase(jam);
}

CurrentJamResult JamCollection::Answer(Handle best) {
  if (best == kNoHandle) return {MakeJamId(), 0, /*new_jam=*/true};
  const Jam& jam = jams_[best];
  if (best != answered_jam_) {
    answered_jam_ = best;
    answered_id_ = jam.id.packed().ToString();
  }
  return {answered_id_, static_cast<uint32_t>(jam.members.size()),
          /*new_jam=*/false};
}

void JamCollection::DropReservation(Handle user) {
  [[maybe_unused]] const bool scheduled = reservations_.Cancel(user);
  assert(scheduled);
  held_.erase(user);
  SetReserved(user, false);
}

JamCollection::Handle JamCollection::FrontEndOf(absl::string_view frontend_id,
                                                bool create) {
  if (frontend_id.empty()) return kNoHandle;
  const IdKey key(frontend_id);
  return create ? frontends_.FindOrInsert(key).first : frontends_.Find(key);
}

void JamCollection::SetOwner(Handle user, Handle owner) {
  User& state = users_[user];
  if (state.owner == owner) return;
  if (state.owner != kNoHandle) {
    FrontEnd& previous = frontends_[state.owner];
    const Handle last = previous.users.back();
    previous.users[state.owner_slot] = last;
    users_[last].owner_slot = state.owner_slot;
    previous.users.pop_back();
    if (state.reserved) --previous.reservation_count;
  }
  state.owner = owner;
  if (owner != kNoHandle) {
    FrontEnd& next = frontends_[owner];
    state.owner_slot = static_cast<uint32_t>(next.users.size());
    next.users.push_back(user);
    if (state.reserved) ++next.reservation_count;
  }
}

void JamCollection::SetReserved(Handle user, bool reserved) {
  User& state = users_[user];
  if (state.reserved == reserved) return;
  state.reserved = reserved;
  if (state.owner == kNoHandle) return;
  FrontEnd& owner = frontends_[state.owner];
  if (reserved) {
    ++owner.reservation_count;
  } else {
    --owner.reservation_count;
  }
}

void JamCollection::EraseUser(Handle user) {
  SetOwner(user, kNoHandle);
  users_.Erase(user);
}

void JamCollection::Detach(Handle user) {
  User& state = users_[user];
  const Handle jam = state.jam;
  Jam& record = jams_[jam];
  const size_t old_members = record.members.size();
  const size_t old_occupancy = record.occupancy();
  if (state.reserved) {
    --record.reserved;
    DropReservation(user);
  } else {
    auto member = std::find(record.members.begin(), record.members.end(), user);
    assert(member != record.members.end());
    *member = record.members.back();
    record.members.pop_back();
  }
  state.jam = kNoHandle;
  Reindex(jam, old_members, old_occupancy);
}

void JamCollection::Forget(Handle user) {
  const Handle jam = users_[user].jam;
  Detach(user);
  EraseUser(user);
  DeleteIfEmpty(jam);
}

void JamCollection::Join(Handle user, Handle jam) {
  if (const Handle previous = users_[user].jam; previous != kNoHandle) {
    Detach(user);
    if (previous != jam) DeleteIfEmpty(previous);
  }
  Jam& record = jams_[jam];
  const size_t old_members = record.members.size();
  const size_t old_occupancy = record.occupancy();
  record.members.push_back(user);
  users_[user].jam = jam;
  Reindex(jam, old_members, old_occupancy);
}

void JamCollection::ExpireReservations(absl::Time now) {
  EndResyncIfDue(now);
  // At most kExpiryStep per call: a mass expiry (a burst of reservations
  // made together) is spread over the following calls and the owner's
  // timer (NextExpiry stays due), so no call takes long. Meanwhile a due
  // seat still counts as taken: placement errs towards fewer users.
  for (size_t i = 0; i < kExpiryStep; ++i) {
    const std::optional<Handle> user = reservations_.FirstDue(now);
    if (!user.has_value()) break;
    ++counters_.reservations_expired;
    Forget(*user);  // Cancels the reservation.
  }
}

absl::Time JamCollection::NextExpiry() const {
  const absl::Time resync_end = resync_.until == absl::InfinitePast()
                                    ? absl::InfiniteFuture()
                                    : resync_.until;
  return std::min(reservations_.Next(), resync_end);
}

void JamCollection::StartResync(absl::Time until, absl::Duration redirect_ttl) {
  assert(redirect_ttl > absl::ZeroDuration());
  resync_.until = until;
  resync_.redirect_ttl = redirect_ttl;
}

std::string JamCollection::MakeJamId() {
  std::string id = NewJamId(random_);
  if (resync_.until != absl::InfinitePast()) resync_.made_ids.insert(id);
  return id;
}

void JamCollection::CloseNamedJam(absl::string_view jam_id, absl::Time now) {
  EndResyncIfDue(now);
  if (resync_.until == absl::InfinitePast() ||
      resync_.made_ids.contains(jam_id) ||
      !resync_.closed_ids.insert(std::string(jam_id)).second) {
    return;
  }
  const Handle jam = jams_.Find(IdKey(jam_id));
  if (jam == kNoHandle) return;
  resync_.closed_jams.insert(jam);
  jams_with_room_.Set(jam, 0, jams_[jam].id.packed().Prefix(),
                      [this](Handle a, Handle b) { return JamIdLess(a, b); });
}

void JamCollection::EndResyncIfDue(absl::Time now) {
  if (resync_.until == absl::InfinitePast() || now < resync_.until) return;
  const absl::btree_set<Handle> closed = std::move(resync_.closed_jams);
  resync_ = Resync();
  for (Handle jam : closed) {
    const size_t occupancy = jams_[jam].occupancy();
    if (HasRoom(occupancy)) {
      jams_with_room_.Set(
          jam, static_cast<uint32_t>(occupancy),
          jams_[jam].id.packed().Prefix(),
          [this](Handle a, Handle b) { return JamIdLess(a, b); });
    }
  }
}

bool JamCollection::IsClosed(absl::string_view jam_id, absl::Time now) {
  EndResyncIfDue(now);
  if (resync_.until == absl::InfinitePast()) return false;
  return resync_.closed_ids.contains(jam_id);
}

absl::Time JamCollection::ReserveIn(Handle user, Handle jam, absl::Duration ttl,
                                    absl::Time now, Handle owner) {
  Jam& record = jams_[jam];
  const size_t old_members = record.members.size();
  const size_t old_occupancy = record.occupancy();
  const absl::Time expires = now + ttl;
  ++record.reserved;
  ++counters_.reservations_made;
  users_[user].jam = jam;
  SetReserved(user, true);
  SetOwner(user, owner);
  reservations_.Schedule(user, expires);
  Reindex(jam, old_members, old_occupancy);
  return expires;
}

CurrentJamResult JamCollection::CurrentJam(absl::Time now) {
  ExpireReservations(now);
  return Answer(jams_with_room_.Best());
}

CurrentJamResult JamCollection::ReserveSeat(absl::string_view user_id,
                                            absl::Duration ttl, absl::Time now,
                                            absl::string_view frontend_id) {
  assert(ttl > absl::ZeroDuration());
  ExpireReservations(now);
  const IdKey key(user_id);
  Handle user = users_.Find(key);
  if (user != kNoHandle && !users_[user].reserved) {
    return Answer(users_[user].jam);  // A member keeps its seat.
  }
  Handle previous = kNoHandle;
  bool held = false;
  if (user != kNoHandle) {
    previous = users_[user].jam;
    held = held_.contains(user);
    Detach(user);
  } else {
    user = users_.FindOrInsert(key).first;
  }
  // A held seat is kept where it is, whatever jam is best now.
  Handle target = held ? previous : jams_with_room_.Best();
  bool fresh = false;
  if (target == kNoHandle) {
    // No jam has room for others: keep the seat the user held, if any.
    target = previous;
  }
  if (target == kNoHandle) {
    const std::string id = MakeJamId();
    target = FindOrCreateJam(IdKey(id));
    fresh = true;
  }
  if (previous != kNoHandle && previous != target) DeleteIfEmpty(previous);
  const absl::Time expires = ReserveIn(
      user, target, ttl, now, FrontEndOf(frontend_id, /*create=*/true));

  CurrentJamResult result = Answer(target);
  result.new_jam = fresh;
  result.reservation_expires = expires;
  return result;
}

uint32_t JamCollection::Refresh(absl::string_view jam_id,
                                absl::Span<const absl::string_view> user_ids,
                                absl::Time now, absl::string_view frontend_id) {
  ExpireReservations(now);
  // Overlap the lookups of the jam and of every listed user.
  PrefetchIdBytes(jam_id);
  for (absl::string_view user_id : user_ids) PrefetchIdBytes(user_id);
  const IdKey jam_key(jam_id);
  jams_.Prefetch(jam_key);
  absl::InlinedVector<IdKey, 16> keys;
  keys.reserve(user_ids.size());
  for (absl::string_view user_id : user_ids) {
    users_.Prefetch(keys.emplace_back(user_id));
  }
  const bool scoped = !frontend_id.empty();
  if (scoped) CloseNamedJam(jam_id, now);
  const Handle owner = FrontEndOf(frontend_id, /*create=*/!user_ids.empty());
  if (scoped && owner == kNoHandle) {
    // An unknown front end listing no one owns nothing here to replace.
    const Handle jam = jams_.Find(jam_key);
    return jam == kNoHandle ? 0
                            : static_cast<uint32_t>(jams_[jam].members.size());
  }
  const Handle jam =
      user_ids.empty() ? jams_.Find(jam_key) : FindOrCreateJam(jam_key);
  if (jam == kNoHandle) return 0;
  jams_with_room_.Prefetch(jam);
  Jam& record = jams_[jam];
  const size_t old_members = record.members.size();
  const size_t old_occupancy = record.occupancy();

  // Unmark the members being replaced (all, or the front end's own); those
  // listed again are marked back below. The indexes keep the jam's old
  // state until the Reindex at the end.
  absl::InlinedVector<Handle, 8> replaced;
  if (scoped) {
    auto kept = record.members.begin();
    for (Handle member : record.members) {
      if (users_[member].owner == owner) {
        replaced.push_back(member);
      } else {
        *kept++ = member;
      }
    }
    record.members.erase(kept, record.members.end());
  } else {
    replaced.swap(record.members);
  }
  for (Handle member : replaced) users_.PrefetchRecord(member);
  for (Handle member : replaced) users_[member].jam = kNoHandle;
  for (const IdKey& key : keys) {
    const Handle user = users_.FindOrInsert(key).first;
    User& state = users_[user];
    if (state.jam == jam) {
      if (!state.reserved) {  // Listed twice, or another owner's member.
        SetOwner(user, owner);
        continue;
      }
      // The reservation becomes membership.
      --record.reserved;
      DropReservation(user);
    } else if (const Handle other = state.jam; other != kNoHandle) {
      Detach(user);
      DeleteIfEmpty(other);
    }
    users_[user].jam = jam;
    SetOwner(user, owner);
    record.members.push_back(user);
  }
  for (Handle member : replaced) {
    if (users_[member].jam == kNoHandle) EraseUser(member);
  }
  const auto count = static_cast<uint32_t>(record.members.size());
  if (count > max_users_) ++counters_.overfilled_refreshes;
  Reindex(jam, old_members, old_occupancy);
  DeleteIfEmpty(jam);
  return count;
}

RemoveUserResult JamCollection::RemoveUser(absl::string_view jam_id,
                                           absl::string_view user_id,
                                           absl::Time now,
                                           absl::string_view frontend_id,
                                           absl::Duration hold_seat) {
  ExpireReservations(now);
  if (!frontend_id.empty()) CloseNamedJam(jam_id, now);
  const CallKeys keys = KeysOf(jam_id, user_id, /*user_optional=*/false);
  const auto [jam, user] = FindJamAndUser(keys, /*will_reindex=*/true);
  if (jam == kNoHandle) return {false, 0};
  const auto members = static_cast<uint32_t>(jams_[jam].members.size());
  if (user == kNoHandle || users_[user].jam != jam) return {false, members};
  if (!frontend_id.empty() &&
      (users_[user].owner == kNoHandle ||
       users_[user].owner != FrontEndOf(frontend_id, /*create=*/false))) {
    return {false, members};  // Another front end's (or anonymous) user.
  }
  const bool member = !users_[user].reserved;
  if (member && hold_seat > absl::ZeroDuration()) {
    // The seat stays, as a reservation held for the user.
    Jam& record = jams_[jam];
    const size_t old_occupancy = record.occupancy();
    auto it = std::find(record.members.begin(), record.members.end(), user);
    *it = record.members.back();
    record.members.pop_back();
    ++record.reserved;
    SetReserved(user, true);
    reservations_.Schedule(user, now + hold_seat);
    held_.insert(user);
    Reindex(jam, members, old_occupancy);
    return {true, members - 1};
  }
  Forget(user);  // May delete the jam.
  return {true, member ? members - 1 : members};
}

HasCapacityResult JamCollection::HasCapacity(absl::string_view jam_id,
                                             absl::string_view user_id,
                                             absl::Time now) {
  ExpireReservations(now);
  const CallKeys keys = KeysOf(jam_id, user_id, /*user_optional=*/true);
  const auto [jam, user] = FindJamAndUser(keys, /*will_reindex=*/false);
  if (jam == kNoHandle) return {!IsClosed(jam_id, now), 0};
  const Jam& record = jams_[jam];
  const auto members = static_cast<uint32_t>(record.members.size());
  if (user != kNoHandle && users_[user].jam == jam) return {true, members};
  if (IsClosed(jam_id, now)) return {false, members};
  return {record.occupancy() < max_users_, members};
}

AddUserResult JamCollection::AddUser(absl::string_view jam_id,
                                     absl::string_view user_id, absl::Time now,
                                     absl::string_view frontend_id) {
  ExpireReservations(now);
  if (!frontend_id.empty()) CloseNamedJam(jam_id, now);
  const CallKeys keys = KeysOf(jam_id, user_id, /*user_optional=*/false);
  auto [jam, user] = FindJamAndUser(keys, /*will_reindex=*/true);
  const bool in_this_jam =
      jam != kNoHandle && user != kNoHandle && users_[user].jam == jam;
  if (!in_this_jam && IsClosed(jam_id, now)) {
    // Resyncing: the jam may be fuller than it looks. A seat in a fresh jam.
    ++counters_.users_turned_away;
    if (user == kNoHandle) {
      user = users_.FindOrInsert(*keys.user).first;
    } else if (const Handle previous = users_[user].jam;
               previous != kNoHandle) {
      Detach(user);
      DeleteIfEmpty(previous);
    }
    const Handle fresh = FindOrCreateJam(IdKey(MakeJamId()));
    ReserveIn(user, fresh, resync_.redirect_ttl, now,
              FrontEndOf(frontend_id, /*create=*/true));
    return {
        false,
        jam == kNoHandle ? 0 : static_cast<uint32_t>(jams_[jam].members.size()),
        jams_[fresh].id.packed().ToString()};
  }
  if (!in_this_jam && jam != kNoHandle &&
      jams_[jam].occupancy() >= max_users_) {
    ++counters_.users_turned_away;
    return {false, static_cast<uint32_t>(jams_[jam].members.size()),
            Answer(jams_with_room_.Best()).jam_id};
  }
  if (!in_this_jam || users_[user].reserved) {
    if (jam == kNoHandle) jam = FindOrCreateJam(keys.jam);
    if (user == kNoHandle) user = users_.FindOrInsert(*keys.user).first;
    Join(user, jam);
    SetOwner(user, FrontEndOf(frontend_id, /*create=*/true));
  } else if (!frontend_id.empty()) {
    SetOwner(user, FrontEndOf(frontend_id, /*create=*/true));
  }
  return {true, static_cast<uint32_t>(jams_[jam].members.size()), ""};
}

JamCollection::Replacement JamCollection::PlanReplace(
    absl::string_view frontend_id, absl::Span<const JamMembers> jams) {
  assert(!frontend_id.empty());
  Replacement plan;
  plan.frontend_id = std::string(frontend_id);
  // Entries may repeat a jam (a long list comes in parts) and users: merge
  // them, each user in the last jam that lists it, jams in listed order.
  absl::flat_hash_map<absl::string_view, size_t> jam_index;
  absl::flat_hash_map<absl::string_view, size_t> last_jam;  // By user.
  size_t listed = 0;
  for (const JamMembers& jam : jams) listed += jam.user_ids.size();
  last_jam.reserve(listed);
  for (const JamMembers& jam : jams) {
    const size_t index =
        jam_index.try_emplace(jam.jam_id, plan.jams.size()).first->second;
    if (index == plan.jams.size()) {
      plan.jams.emplace_back(jam.jam_id, std::vector<absl::string_view>());
    }
    for (absl::string_view user : jam.user_ids) last_jam[user] = index;
  }
  for (const JamMembers& jam : jams) {
    const size_t index = jam_index[jam.jam_id];
    for (absl::string_view user : jam.user_ids) {
      auto last = last_jam.find(user);
      if (last != last_jam.end() && last->second == index) {
        plan.jams[index].second.push_back(user);
        ++plan.listed_users;
        last_jam.erase(last);  // Listed once.
      }
    }
  }
  plan.listed_jams.reserve(plan.jams.size());
  return plan;
}

bool JamCollection::ReplaceStep(Replacement& plan, size_t limit,
                                absl::Time now) {
  ExpireReservations(now);
  size_t budget = std::max<size_t>(limit, 1);
  // Each listed jam holds exactly its listed users of this front end ...
  while (!plan.sweeping && budget > 0) {
    if (plan.next_jam == plan.jams.size()) {
      plan.sweeping = true;
      const Handle owner = FrontEndOf(plan.frontend_id, /*create=*/false);
      plan.sweep_cursor =
          owner == kNoHandle ? 0 : frontends_[owner].users.size();
      break;
    }
    const auto& [jam_id, users] = plan.jams[plan.next_jam];
    // A jam's list is applied by one Refresh (a jam holds few users; a
    // longer list is applied whole even past the budget).
    Refresh(jam_id, users, now, plan.frontend_id);
    if (const Handle jam = jams_.Find(IdKey(jam_id)); jam != kNoHandle) {
      plan.listed_jams.insert(jam);
    }
    budget -= std::min(budget, std::max<size_t>(users.size(), 1));
    ++plan.next_jam;
  }
  if (!plan.sweeping) return false;
  // ... and its members elsewhere go; reservations stay. Scanned from the
  // end: removing a user moves the last one into its slot, which is then
  // either checked already or added since the plan began (kept).
  const Handle owner = FrontEndOf(plan.frontend_id, /*create=*/false);
  if (owner == kNoHandle) return true;
  budget = std::max<size_t>(limit, 1);
  while (plan.sweep_cursor > 0 && budget > 0) {
    --budget;
    FrontEnd& front_end = frontends_[owner];
    plan.sweep_cursor = std::min(plan.sweep_cursor, front_end.users.size());
    if (plan.sweep_cursor == 0) break;
    const Handle user = front_end.users[--plan.sweep_cursor];
    const User& state = users_[user];
    if (!state.reserved && !plan.listed_jams.contains(state.jam)) {
      Forget(user);
    }
  }
  return plan.sweep_cursor == 0;
}

FrontEndCounts JamCollection::ReplaceFrontEnd(absl::string_view frontend_id,
                                              absl::Span<const JamMembers> jams,
                                              absl::Time now) {
  Replacement plan = PlanReplace(frontend_id, jams);
  while (!ReplaceStep(plan, std::numeric_limits<size_t>::max(), now)) {
  }
  return CountsOf(frontend_id);
}

FrontEndRemoval JamCollection::RemoveFrontEnd(absl::string_view frontend_id,
                                              size_t limit, absl::Time now) {
  ExpireReservations(now);
  FrontEndRemoval removal;
  const Handle owner = FrontEndOf(frontend_id, /*create=*/false);
  if (owner == kNoHandle) {
    removal.done = true;
    return removal;
  }
  FrontEnd& front_end = frontends_[owner];
  for (size_t i = 0; i < limit && !front_end.users.empty(); ++i) {
    const Handle user = front_end.users.back();
    if (users_[user].reserved) {
      ++removal.reservations_removed;
    } else {
      ++removal.members_removed;
    }
    Forget(user);  // Takes it off front_end.users.
  }
  if (front_end.users.empty()) {
    frontends_.Erase(owner);
    removal.done = true;
  }
  return removal;
}

const JamCollection::FrontEnd* JamCollection::FindFrontEnd(
    absl::string_view frontend_id) const {
  if (frontend_id.empty()) return nullptr;
  const Handle owner = frontends_.Find(IdKey(frontend_id));
  return owner == kNoHandle ? nullptr : &frontends_[owner];
}

FrontEndCounts JamCollection::UserCounts(const FrontEnd& front_end) {
  FrontEndCounts counts;
  counts.reservation_count = front_end.reservation_count;
  counts.member_count = front_end.users.size() - front_end.reservation_count;
  return counts;
}

FrontEndCounts JamCollection::UsersOf(absl::string_view frontend_id) const {
  const FrontEnd* front_end = FindFrontEnd(frontend_id);
  return front_end == nullptr ? FrontEndCounts() : UserCounts(*front_end);
}

FrontEndCounts JamCollection::CountsOf(absl::string_view frontend_id) const {
  const FrontEnd* front_end = FindFrontEnd(frontend_id);
  if (front_end == nullptr) return {};
  FrontEndCounts counts = UserCounts(*front_end);
  absl::flat_hash_set<Handle> jams;
  for (Handle user : front_end->users) {
    if (!users_[user].reserved) jams.insert(users_[user].jam);
  }
  counts.jam_count = jams.size();
  return counts;
}

CollectionSnapshot JamCollection::Snapshot(absl::Time now) {
  ExpireReservations(now);
  CollectionSnapshot snapshot = counters_;
  snapshot.jam_count = jams_.size();
  snapshot.user_count = member_count_;
  snapshot.full_jam_count = full_jam_count_;
  snapshot.reservation_count = reservations_.size();
  return snapshot;
}

JamPage JamCollection::ListJams(absl::string_view after_jam_id, size_t limit,
                                absl::Time now, size_t max_user_ids) {
  ExpireReservations(now);
  JamPage page;
  page.jams.reserve(std::min(limit, jams_.size()));
  auto it = jams_by_id_.begin();
  if (!after_jam_id.empty()) {
    const PackedId after = PackedId::Borrow(after_jam_id);
    it = jams_by_id_.upper_bound(IdProbe{after.Prefix(), &after});
  }
  size_t listed_users = 0;
  for (; it != jams_by_id_.end() && page.jams.size() < limit &&
         (page.jams.empty() || listed_users < max_user_ids);
       ++it) {
    const Jam& jam = jams_[it->jam];
    listed_users += jam.members.size();
    JamSnapshot& snapshot = page.jams.emplace_back();
    snapshot.jam_id = jam.id.packed().ToString();
    snapshot.user_ids.reserve(jam.members.size());
    for (Handle member : jam.members) {
      snapshot.user_ids.push_back(users_[member].id.packed().ToString());
    }
    std::sort(snapshot.user_ids.begin(), snapshot.user_ids.end());
    snapshot.reserved_count = jam.reserved;
  }
  page.has_more = it != jams_by_id_.end();
  return page;
}

JamDetail JamCollection::GetJam(absl::string_view jam_id, absl::Time now) {
  ExpireReservations(now);
  JamDetail detail;
  const Handle jam = jams_.Find(IdKey(jam_id));
  if (jam == kNoHandle) return detail;
  const Jam& record = jams_[jam];
  detail.members.reserve(record.members.size());
  for (Handle member : record.members) {
    const User& user = users_[member];
    JamMemberSnapshot& snapshot = detail.members.emplace_back();
    snapshot.user_id = user.id.packed().ToString();
    if (user.owner != kNoHandle) {
      snapshot.frontend_id = frontends_[user.owner].id.packed().ToString();
    }
  }
  std::sort(detail.members.begin(), detail.members.end(),
            [](const JamMemberSnapshot& a, const JamMemberSnapshot& b) {
              return a.user_id < b.user_id;
            });
  detail.reserved_count = record.reserved;
  return detail;
}

}  // namespace jambalancer
