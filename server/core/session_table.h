#ifndef JAM_BALANCER_SERVER_CORE_SESSION_TABLE_H_
#define JAM_BALANCER_SERVER_CORE_SESSION_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/expiry_queue.h"

namespace jambalancer {

// One front end's session as seen by operators.
struct SessionInfo {
  std::string frontend_id;
  absl::Time lease_expires;
};

// The front ends' sessions: each front end that synced holds a lease until
// it expires, is renewed or is ended. Pure: time comes in as `now`; not
// thread-safe, the owner serializes calls.
//
// A session is live at `now` while now < its expiry; one whose lease ran out
// is no longer live even before Expire has removed it, so an answer never
// depends on when Expire last ran.
class SessionTable {
 public:
  // At most `max_sessions` sessions at once (see CheckRoomFor).
  explicit SessionTable(uint64_t max_sessions = UINT64_MAX)
      : max_sessions_(max_sessions) {}
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  // Whether Start may take `frontend_id`: OK when it holds a session or
  // there is room for one more, else RESOURCE_EXHAUSTED naming the limit.
  absl::Status CheckRoomFor(absl::string_view frontend_id) const;

  // Creates the session, or renews it, with a lease of `ttl` from `now`;
  // later renewals without a TTL of their own use this one. Returns when the
  // lease expires. REQUIRES: ttl > 0.
  absl::Time Start(absl::string_view frontend_id, absl::Duration ttl,
                   absl::Time now);

  // Extends a live session by its TTL from `now`. Returns the new expiry, or
  // nullopt (changing nothing) if the front end has no live session.
  std::optional<absl::Time> Renew(absl::string_view frontend_id,
                                  absl::Time now);

  bool IsLive(absl::string_view frontend_id, absl::Time now) const;

  // Removes the session. Returns false if there was none (live or not).
  bool End(absl::string_view frontend_id);

  // Removes the sessions whose lease ran out at or before `now` and returns
  // their front-end ids, earliest expiry first.
  std::vector<std::string> Expire(absl::Time now);

  // When the next lease runs out; InfiniteFuture if there is no session.
  absl::Time NextExpiry() const { return leases_.Next(); }

  // Every session, live or not yet expired, in front-end id order.
  std::vector<SessionInfo> List() const;

  size_t size() const { return sessions_.size(); }

 private:
  using Handle = uint32_t;
  struct Session {
    Handle handle;  // The session's key in leases_.
    absl::Duration ttl;
    absl::Time expires;
  };

  const uint64_t max_sessions_;
  absl::flat_hash_map<std::string, Session> sessions_;
  // Handle -> front-end id, for what leases_ names.
  absl::flat_hash_map<Handle, std::string> ids_;
  ExpiryQueue<Handle> leases_;
  Handle next_handle_ = 0;
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_CORE_SESSION_TABLE_H_
