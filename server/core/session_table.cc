#include "server/core/session_table.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"

namespace jambalancer {

absl::Status SessionTable::CheckRoomFor(absl::string_view frontend_id) const {
  if (sessions_.size() < max_sessions_ || sessions_.contains(frontend_id)) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "max_sessions (", max_sessions_, ") reached: ", sessions_.size(),
      " front ends hold sessions; front end ", frontend_id,
      " was not given one"));
}

absl::Time SessionTable::Start(absl::string_view frontend_id,
                               absl::Duration ttl, absl::Time now) {
  assert(ttl > absl::ZeroDuration());
  auto [it, inserted] = sessions_.try_emplace(frontend_id);
  Session& session = it->second;
  if (inserted) {
    session.handle = next_handle_++;
    ids_.emplace(session.handle, std::string(frontend_id));
  }
  session.ttl = ttl;
  session.expires = now + ttl;
  leases_.Schedule(session.handle, session.expires);
  return session.expires;
}

std::optional<absl::Time> SessionTable::Renew(absl::string_view frontend_id,
                                              absl::Time now) {
  auto it = sessions_.find(frontend_id);
  if (it == sessions_.end() || it->second.expires <= now) return std::nullopt;
  Session& session = it->second;
  session.expires = now + session.ttl;
  leases_.Schedule(session.handle, session.expires);
  return session.expires;
}

bool SessionTable::IsLive(absl::string_view frontend_id, absl::Time now) const {
  auto it = sessions_.find(frontend_id);
  return it != sessions_.end() && it->second.expires > now;
}

bool SessionTable::End(absl::string_view frontend_id) {
  auto it = sessions_.find(frontend_id);
  if (it == sessions_.end()) return false;
  leases_.Cancel(it->second.handle);
  ids_.erase(it->second.handle);
  sessions_.erase(it);
  return true;
}

std::vector<std::string> SessionTable::Expire(absl::Time now) {
  std::vector<std::string> expired;
  while (const std::optional<Handle> handle = leases_.FirstDue(now)) {
    leases_.Cancel(*handle);
    auto id = ids_.find(*handle);
    assert(id != ids_.end());
    sessions_.erase(id->second);
    expired.push_back(std::move(id->second));
    ids_.erase(id);
  }
  return expired;
}

std::vector<SessionInfo> SessionTable::List() const {
  std::vector<SessionInfo> sessions;
  sessions.reserve(sessions_.size());
  for (const auto& [id, session] : sessions_) {
    sessions.push_back({id, session.expires});
  }
  std::sort(sessions.begin(), sessions.end(),
            [](const SessionInfo& a, const SessionInfo& b) {
              return a.frontend_id < b.frontend_id;
            });
  return sessions;
}

}  // namespace jambalancer
