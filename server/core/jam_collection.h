#ifndef JAM_BALANCER_SERVER_CORE_JAM_COLLECTION_H_
#define JAM_BALANCER_SERVER_CORE_JAM_COLLECTION_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/core/compact_id.h"
#include "server/core/expiry_queue.h"
#include "server/core/id_table.h"
#include "server/core/room_index.h"

namespace jambalancer {

// Answer of CurrentJam.
struct CurrentJamResult {
  std::string jam_id;
  uint32_t user_count = 0;  // Members, not counting reservations.
  bool new_jam = false;     // jam_id was made up by this call.
  // When the seat reserved by this call lapses; InfinitePast if none was.
  absl::Time reservation_expires = absl::InfinitePast();
};

struct RemoveUserResult {
  bool removed = false;  // A membership or a reservation was dropped.
  uint32_t user_count = 0;
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

// The collection's totals and running counters at one moment: everything
// GetStats and monitoring read, in one copy.
struct CollectionSnapshot {
  uint32_t max_users = 0;
  // Totals.
  uint64_t jam_count = 0;
  uint64_t user_count = 0;      // Members of all jams.
  uint64_t full_jam_count = 0;  // Jams with members >= max_users.
  uint64_t reservation_count = 0;
  // Running counters since the collection was made.
  uint64_t jams_created = 0;
  uint64_t users_turned_away = 0;     // AddUser answered added = false.
  uint64_t overfilled_refreshes = 0;  // Refresh lists above max_users.
  uint64_t reservations_made = 0;
  uint64_t reservations_expired = 0;  // Lapsed without being taken.
  // jams_by_members[n]: jams with n members, for n in [0, max_users];
  // jams_by_members[max_users + 1]: overfilled jams.
  std::vector<uint64_t> jams_by_members;
};

// Bounds on what a collection stores, so that its memory has a ceiling
// (the defaults bound nothing). A collection with bounds sizes its tables
// for them when it is made, so that growth never rehashes a large table
// (which would stop every call for seconds at tens of millions of users).
struct CollectionLimits {
  uint64_t max_jams = UINT64_MAX;
  // Members and reservation holders, all jams together.
  uint64_t max_total_users = UINT64_MAX;
};

// One jam's members as a front end reports them (Sync). Borrows the ids.
struct JamMembers {
  absl::string_view jam_id;
  absl::Span<const absl::string_view> user_ids;
};

// What one front end owns.
struct FrontEndCounts {
  uint64_t jam_count = 0;  // Jams in which it has members.
  uint64_t member_count = 0;
  uint64_t reservation_count = 0;
};

// Progress of RemoveFrontEnd.
struct FrontEndRemoval {
  uint64_t members_removed = 0;
  uint64_t reservations_removed = 0;
  bool done = false;  // The front end owns nothing any more.
};

// One member of a jam and the front end that owns it.
struct JamMemberSnapshot {
  std::string user_id;
  std::string frontend_id;  // Empty: anonymous.
};

// One jam in detail (GetJam).
struct JamDetail {
  std::vector<JamMemberSnapshot> members;  // In user id byte order.
  uint32_t reserved_count = 0;
};

struct JamSnapshot {
  std::string jam_id;
  std::vector<std::string> user_ids;  // In byte order.
  uint32_t reserved_count = 0;
};

struct JamPage {
  std::vector<JamSnapshot> jams;
  bool has_more = false;  // More jams follow the last one of this page.
};

// The jams, their members and the seats reserved in them, with the queries
// that place arriving users. Pure and single-threaded: no locks, no threads,
// and no clock of its own (time comes in as `now`). The owner must serialize
// every call (the strand does).
//
// Rules:
// - A user is a member of at most one jam; placing a user in jam B takes the
//   user out of the jam it was in, in the same call.
// - A reservation holds a seat in one jam for one user until it expires. A
//   user holds at most one, and never while being a member of a jam.
// - A jam's occupancy is members + reservations. Placement decisions
//   (CurrentJam, HasCapacity, AddUser) compare occupancy with max_users, so a
//   reserved seat is never given to another user.
// - A jam exists while it has members or reservations.
// - Every member and reservation has an owner: the front end that placed it
//   (calls name it by `frontend_id`), or none (anonymous: `frontend_id`
//   empty). Owners scope Refresh and RemoveUser, and a front end's users can
//   be replaced (ReplaceFrontEnd) or removed (RemoveFrontEnd) at once. The
//   collection keeps no leases: whoever owns it decides when a front end is
//   gone.
//
// Every call first expires the reservations due at `now`. Costs are
// O(log jams + log reservations) plus the size of the call's own arguments:
// indexes keep the best jam with room (highest occupancy, smallest id) at
// the root of a tournament tree, all jams ordered by id, and reservations
// by expiry, so nothing scans.
//
// Storage is laid out for few cache misses at millions of jams: jams and
// users are records in IdTables (ids packed, see CompactId; 32-bit handles),
// a jam lists its members' handles inline, and the indexes are keyed by
// integers (id prefixes and handles) so they rarely read a record.
//
// Ids are taken as given; callers validate them (the server does in
// server/rpc/id_validation.h).
class JamCollection {
 public:
  // REQUIRES: max_users >= 1; finite limits fit 32-bit handles.
  explicit JamCollection(uint32_t max_users,
                         const CollectionLimits& limits = {});

  JamCollection(const JamCollection&) = delete;
  JamCollection& operator=(const JamCollection&) = delete;

  uint32_t max_users() const { return max_users_; }
  const CollectionLimits& limits() const { return limits_; }

  // Admission against the limits, checked before a call that may store
  // jams or users, so that a refused call changes nothing: OK, or
  // RESOURCE_EXHAUSTED naming the limit. Counts the ids not stored yet (a
  // duplicate twice); cheap while far from the limits.
  // - CheckRoom: a call that may create the jams `jam_ids` and add the users
  //   `user_ids` (Refresh, AddUser), and make up `fresh_jams` jams.
  // - CheckRoomForSeat: ReserveSeat for `user_id`, which makes up a jam only
  //   when no jam has room.
  // - CheckRoomForSync: ReplaceFrontEnd with `jams`.
  absl::Status CheckRoom(absl::Span<const absl::string_view> jam_ids,
                         absl::Span<const absl::string_view> user_ids,
                         size_t fresh_jams = 0) const;
  absl::Status CheckRoomForSeat(absl::string_view user_id) const;
  absl::Status CheckRoomForSync(absl::Span<const JamMembers> jams) const;

  // Reservations one call expires at most (see ExpireReservations).
  static constexpr size_t kExpiryStep = 4096;

  // Drops the reservations that expire at or before `now` (at most
  // kExpiryStep; the rest stay due, for the next call or the timer), and
  // jams left with neither members nor reservations.
  void ExpireReservations(absl::Time now);

  // When the next reservation expires or the resync window ends (the next
  // time the collection changes by itself); InfiniteFuture if never.
  absl::Time NextExpiry() const;

  // Among jams with occupancy below max_users, the one with the highest
  // occupancy (ties: smallest id in byte order). If none, a fresh random
  // lowercase UUID v4 with new_jam set, not stored. Reserves nothing.
  CurrentJamResult CurrentJam(absl::Time now);

  // Where `user_id` should go, with a seat reserved there until now + ttl:
  // - a member of a jam is answered that jam (nothing reserved: the user
  //   already has a seat);
  // - a user whose seat is held (RemoveUser with hold_seat) is answered the
  //   held jam, the seat renewed as an ordinary reservation;
  // - otherwise the user's previous reservation, if any, is released first
  //   and the best jam is chosen as above; if none has room for others, the
  //   seat the user held is renewed where it was (a promise is kept even in
  //   a jam that Refresh has since filled), else a fresh id is recorded as a
  //   jam holding this seat, so the next arrivals join it.
  // The reservation is owned by `frontend_id`; a member keeps its owner.
  // REQUIRES: ttl > 0.
  CurrentJamResult ReserveSeat(absl::string_view user_id, absl::Duration ttl,
                               absl::Time now,
                               absl::string_view frontend_id = "");

  // Replaces the jam's members with `user_ids` (duplicates count once),
  // creating the jam if needed. Listed users leave any other jam, and their
  // reservations are consumed; reservations of others stay. Stored even
  // beyond max_users (the jam is then overfilled). Returns the member count.
  // With a `frontend_id`, only that front end's members of the jam are
  // replaced (other owners' members stay) and the listed users become its
  // own; without one, the whole jam is replaced and its members become
  // anonymous.
  uint32_t Refresh(absl::string_view jam_id,
                   absl::Span<const absl::string_view> user_ids, absl::Time now,
                   absl::string_view frontend_id = "");

  // Removes the user from the jam, or releases the user's reservation there.
  // Unknown jam or user, or (with a `frontend_id`) a user that front end
  // does not own: removed is false and nothing changes. With `hold_seat` >
  // 0 a leaving member's seat stays reserved for the user until now +
  // hold_seat, same owner: ReserveSeat answers that jam while it is held
  // (a page reload returns to the same jam).
  RemoveUserResult RemoveUser(absl::string_view jam_id,
                              absl::string_view user_id, absl::Time now,
                              absl::string_view frontend_id = "",
                              absl::Duration hold_seat = absl::ZeroDuration());

  // True for an unknown jam; for a member of the jam or a holder of a
  // reservation there (when user_id is not empty); else occupancy below
  // max_users.
  HasCapacityResult HasCapacity(absl::string_view jam_id,
                                absl::string_view user_id, absl::Time now);

  // Atomic check-and-add. A member already: added, no change. A holder of a
  // reservation in this jam: always added (the seat becomes membership).
  // Occupancy below max_users: added, leaving any other jam and releasing
  // any other reservation. Otherwise not added, no change, and
  // redirect_jam_id is what CurrentJam answers now (never this jam).
  // The user is then owned by `frontend_id` if one is given (a member that
  // reconnected to another front end moves to it), else placed anonymous
  // (an existing member keeps its owner).
  AddUserResult AddUser(absl::string_view jam_id, absl::string_view user_id,
                        absl::Time now, absl::string_view frontend_id = "");

  // Sync: makes `jams` the whole truth of what `frontend_id` hosts. Listed
  // users become its members there (moving from wherever they were, their
  // reservations consumed); its members not listed are removed; its
  // reservations of users not listed stay. A jam may be listed more than
  // once (its entries add up); a user listed twice ends in the last jam
  // that lists it. Returns what it owns afterwards.
  // REQUIRES: frontend_id is not empty.
  FrontEndCounts ReplaceFrontEnd(absl::string_view frontend_id,
                                 absl::Span<const JamMembers> jams,
                                 absl::Time now);

  // ReplaceFrontEnd in bounded steps, so that a large Sync never holds the
  // collection's owner for long: PlanReplace groups the lists (pure, any
  // thread, no change), then each ReplaceStep applies up to `limit` listed
  // users, or checks up to `limit` of the front end's other members for
  // removal, until it returns true. Calls between steps see the front end's
  // jams partly replaced; the steps of one plan must not interleave with
  // another plan of the same front end. The plan borrows the ids.
  struct Replacement {
    std::string frontend_id;
    // Each listed jam once, in listed order, with its users (each user in
    // the last jam that lists it).
    std::vector<std::pair<absl::string_view, std::vector<absl::string_view>>>
        jams;
    size_t listed_users = 0;
    // Progress, for ReplaceStep.
    size_t next_jam = 0;
    size_t next_user = 0;
    absl::flat_hash_set<uint32_t> listed_jams;  // Handles of listed jams.
    bool sweeping = false;
    size_t sweep_cursor = 0;  // The front end's users below it are unchecked.
  };
  static Replacement PlanReplace(absl::string_view frontend_id,
                                 absl::Span<const JamMembers> jams);
  bool ReplaceStep(Replacement& plan, size_t limit, absl::Time now);

  // Removes up to `limit` of the front end's members and reservations (jams
  // left empty are deleted), so that a large front end can be removed in
  // bounded steps; once it owns nothing, forgets it (done).
  FrontEndRemoval RemoveFrontEnd(absl::string_view frontend_id, size_t limit,
                                 absl::Time now);

  // What `frontend_id` owns (zeros for an unknown front end). O(its users).
  FrontEndCounts CountsOf(absl::string_view frontend_id) const;
  // CountsOf without jam_count: O(1).
  FrontEndCounts UsersOf(absl::string_view frontend_id) const;

  // Opens the resync window after a restart, until `until`: the front ends
  // are resupplying their jams, which may not be complete yet. Meanwhile a
  // jam named by a call with a frontend_id (Refresh, RemoveUser, AddUser,
  // ReplaceFrontEnd; also an id not stored yet) is closed to new users,
  // unless this collection made its id (a fresh id of CurrentJam or
  // ReserveSeat in the window). A closed jam is never the best jam;
  // HasCapacity is false for a user who is neither a member nor a seat
  // holder there; AddUser of such a user is refused with a redirect to a
  // fresh jam in which a seat is reserved for the user for `redirect_ttl`.
  // Refresh and ReplaceFrontEnd always apply. At `until` every jam opens.
  // REQUIRES: redirect_ttl > 0.
  void StartResync(absl::Time until, absl::Duration redirect_ttl);

  // Whether the jam is closed at `now` (see StartResync).
  bool IsClosed(absl::string_view jam_id, absl::Time now);

  // Totals and counters at `now` (due reservations expired first, like every
  // call); see CollectionSnapshot. O(max_users).
  CollectionSnapshot Snapshot(absl::Time now);

  // Up to `limit` jams whose ids sort after `after_jam_id` (all jams when it
  // is empty), in id order; a page ends early once it lists `max_user_ids`
  // members (never before its first jam), which bounds its size and cost.
  JamPage ListJams(absl::string_view after_jam_id, size_t limit, absl::Time now,
                   size_t max_user_ids = SIZE_MAX);

  // One jam's members with their front ends; a jam not held has none.
  JamDetail GetJam(absl::string_view jam_id, absl::Time now);

 private:
  using Handle = uint32_t;
  static constexpr Handle kNoHandle = ~Handle{0};
  // One cache line: the id, the reserved seats and up to 8 members inline
  // (user handles; more spill to the heap), so changing a jam's members
  // touches no user record.
  struct alignas(64) Jam {
    CompactId id;
    uint32_t reserved = 0;
    absl::InlinedVector<Handle, 8> members;
    size_t occupancy() const { return members.size() + reserved; }
  };
  struct alignas(32) User {
    CompactId id;
    bool reserved = false;     // Holds a reservation in `jam` (not a member).
    Handle jam = kNoHandle;    // The jam it is a member of or reserved in.
    Handle owner = kNoHandle;  // Its front end; kNoHandle: anonymous.
    uint32_t owner_slot = 0;   // Its index in the owner's `users`.
  };
  // A front end that owns users, with their handles (any order), so that
  // its users are found without a scan.
  struct FrontEnd {
    CompactId id;
    std::vector<Handle> users;       // Members and reservation holders.
    uint64_t reservation_count = 0;  // Of `users`, those holding a seat.
  };
  using JamTable = IdTable<Jam>;
  using UserTable = IdTable<User>;
  using FrontEndTable = IdTable<FrontEnd>;

  // jams_by_id_ entries: the jam's id prefix (see PackedId::Prefix) and
  // handle, ordered by id. Most comparisons are decided by the prefixes;
  // equal ones compare the ids in the jam records.
  struct IdOrderKey {
    uint64_t prefix;
    Handle jam;
  };
  // A position between ids, for lookups of ids that may not be stored.
  struct IdProbe {
    uint64_t prefix;
    const PackedId* id;
  };
  struct IdOrder {
    using is_transparent = void;
    bool operator()(const IdOrderKey& a, const IdOrderKey& b) const;
    bool operator()(const IdOrderKey& a, const IdProbe& b) const;
    bool operator()(const IdProbe& a, const IdOrderKey& b) const;
    const JamTable* jams;
  };
  bool HasRoom(size_t occupancy) const {
    return occupancy > 0 && occupancy < max_users_;
  }
  bool Closed(Handle jam) const {
    return !resync_.closed_jams.empty() && resync_.closed_jams.contains(jam);
  }
  // During the resync window: closes the jam a front end named, unless
  // made here. Ends the window when it is over.
  void CloseNamedJam(absl::string_view jam_id, absl::Time now);
  void EndResyncIfDue(absl::Time now);
  // A fresh jam id, remembered as made here during the resync window.
  std::string MakeJamId();
  // Reserves a seat for `user` (in no jam) in `jam` until now + ttl, owned
  // by `owner`. Returns the expiry.
  absl::Time ReserveIn(Handle user, Handle jam, absl::Duration ttl,
                       absl::Time now, Handle owner);
  // True if jam a's id sorts before jam b's.
  bool JamIdLess(Handle a, Handle b) const;
  Handle FindOrCreateJam(const IdKey& key);
  // The keys of a call's jam and user ids. They borrow the ids' bytes.
  struct CallKeys {
    IdKey jam;
    std::optional<IdKey> user;  // None: the call names no user.
  };
  // Starts loading both ids' bytes, so that their cache misses overlap, then
  // builds their keys. An empty user_id names no user if `user_optional`.
  static CallKeys KeysOf(absl::string_view jam_id, absl::string_view user_id,
                         bool user_optional);
  // Finds the jam and, if keys.user is set, the user (else kNoHandle), their
  // lookups overlapped. With `will_reindex` it also starts loading the
  // jam's path in jams_with_room_.
  std::pair<Handle, Handle> FindJamAndUser(const CallKeys& keys,
                                           bool will_reindex) const;
  // Brings the indexes and totals up to date after `jam` went from
  // `old_members` members and `old_occupancy` to its current state.
  void Reindex(Handle jam, size_t old_members, size_t old_occupancy);
  // Deletes the jam if it has neither members nor reservations.
  void DeleteIfEmpty(Handle jam);
  // Drops the user's reservation record (not the seat count).
  // REQUIRES: the user holds a reservation.
  void DropReservation(Handle user);
  // The front end's record; null for "" (anonymous) and unknown ones.
  const FrontEnd* FindFrontEnd(absl::string_view frontend_id) const;
  // Its members and reservations (jam_count left 0).
  static FrontEndCounts UserCounts(const FrontEnd& front_end);
  // The front end's handle; kNoHandle for "" (anonymous), and for an
  // unknown one unless `create`.
  Handle FrontEndOf(absl::string_view frontend_id, bool create);
  // Moves the user to `owner`'s list (kNoHandle: anonymous).
  void SetOwner(Handle user, Handle owner);
  // Sets whether the user holds a reservation, keeping its owner's count.
  void SetReserved(Handle user, bool reserved);
  // Deletes the user entry (after it left its jam), and its ownership.
  void EraseUser(Handle user);
  // Takes the user out of its jam: membership or reservation. The jam is
  // reindexed but not deleted. REQUIRES: the user is in a jam.
  void Detach(Handle user);
  // Detach, then delete the user entry, and the jam if left empty.
  void Forget(Handle user);
  // Makes the user a member of `jam`, leaving the jam it was in (deleted if
  // left empty) or releasing its reservation.
  void Join(Handle user, Handle jam);
  // CurrentJam's answer for `best` (kNoHandle: a fresh, unstored id).
  CurrentJamResult Answer(Handle best);

  // RESOURCE_EXHAUSTED naming `flag` (the limit's setting) unless `stored`
  // + `adding` fit `limit`.
  static absl::Status CheckFits(uint64_t stored, uint64_t adding,
                                uint64_t limit, absl::string_view flag,
                                absl::string_view what);

  const uint32_t max_users_;
  const CollectionLimits limits_;
  JamTable jams_;
  UserTable users_;          // Members and reservation holders.
  FrontEndTable frontends_;  // Front ends that own users.
  // Jams with room, by (occupancy, id); see RoomIndex.
  RoomIndex jams_with_room_;
  absl::btree_set<IdOrderKey, IdOrder> jams_by_id_{IdOrder{&jams_}};
  // Reservation holders by the time their seat lapses.
  ExpiryQueue<Handle> reservations_;
  // Holders whose reservation is a held seat (a subset of reservations_).
  // This and the sets below are B-trees: they grow a node at a time, where
  // a hash set would rehash all its entries in one call (tens of
  // milliseconds at a million); the id tables are sized for the limits
  // instead.
  absl::btree_set<Handle> held_;
  // The resync window (see StartResync); the sets are empty outside it.
  struct Resync {
    absl::Time until = absl::InfinitePast();
    absl::Duration redirect_ttl;
    absl::btree_set<std::string> closed_ids;  // Named by front ends.
    absl::btree_set<std::string> made_ids;    // Made up here.
    absl::btree_set<Handle> closed_jams;      // Stored closed jams.
  } resync_;
  // The running counters and jams_by_members of Snapshot(), kept up to date
  // as things change (jams_by_members by Reindex, FindOrCreateJam and
  // DeleteIfEmpty); the totals are filled in when a snapshot is taken.
  CollectionSnapshot counters_;
  uint64_t member_count_ = 0;
  uint64_t full_jam_count_ = 0;
  absl::BitGen random_;  // For fresh jam ids.
  // The id of the jam Answer named last (kNoHandle: none), kept as text:
  // the best jam is answered many times in a row, and unpacking a UUID
  // costs as much as copying it. Reset when that jam is deleted.
  Handle answered_jam_ = kNoHandle;
  std::string answered_id_;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_CORE_JAM_COLLECTION_H_
