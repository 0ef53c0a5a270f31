#ifndef JAM_BALANCER_SERVER_RPC_OPERATIONS_H_
#define JAM_BALANCER_SERVER_RPC_OPERATIONS_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "jambalancer/v1/jam_balancer.pb.h"
#include "server/rpc/commands.h"
#include "server/runtime/pool_state.h"

namespace jambalancer {

// What each RPC does: applies a checked command to a pool's state at `now`
// and fills in the response. One overload per RPC. These run on the pool's
// strand (the caller has exclusive access to `state`); they are pure
// otherwise, so tests call them directly.
//
// A command with a frontend_id needs that front end's live session: without
// one the answer is FAILED_PRECONDITION naming the front end, and nothing
// changes; with one, its lease is renewed. A Batch is refused whole if any
// of its operations is.

absl::Status Apply(const CurrentJamCommand& command, absl::Time now,
                   PoolState& state, v1::CurrentJamResponse* response);
absl::Status Apply(const RefreshCommand& command, absl::Time now,
                   PoolState& state, v1::RefreshResponse* response);
absl::Status Apply(const RemoveUserCommand& command, absl::Time now,
                   PoolState& state, v1::RemoveUserResponse* response);
absl::Status Apply(const HasCapacityCommand& command, absl::Time now,
                   PoolState& state, v1::HasCapacityResponse* response);
absl::Status Apply(const AddUserCommand& command, absl::Time now,
                   PoolState& state, v1::AddUserResponse* response);
absl::Status Apply(const GetStatsCommand& command, absl::Time now,
                   PoolState& state, v1::GetStatsResponse* response);
absl::Status Apply(const ListJamsCommand& command, absl::Time now,
                   PoolState& state, v1::ListJamsResponse* response);
// Runs the operations in order, one result each, in this one call.
absl::Status Apply(const BatchCommand& command, absl::Time now,
                   PoolState& state, v1::BatchResponse* response);
absl::Status Apply(const KeepAliveCommand& command, absl::Time now,
                   PoolState& state, v1::KeepAliveResponse* response);
// Ends the session and queues the removal of the front end's members and
// reservations (PoolState::removals: the pool removes them in steps); `done`
// gets the count of members removed once they are all gone. On an error
// (no live session) nothing changes and `done` is not called.
absl::Status Apply(const EndSessionCommand& command, absl::Time now,
                   PoolState& state, FrontEndRemovalTask::Done done);
absl::Status Apply(const ListSessionsCommand& command, absl::Time now,
                   PoolState& state, v1::ListSessionsResponse* response);
absl::Status Apply(const GetJamCommand& command, absl::Time now,
                   PoolState& state, v1::GetJamResponse* response);
// Starts or renews the session and makes the listed jams the front end's
// whole truth. A front end whose ended session is still being removed is
// removed first (in this step; its EndSession, if any, is answered).
absl::Status Apply(const SyncCommand& command, absl::Time now, PoolState& state,
                   v1::SyncResponse* response);

// Sync as the server runs it: admitted at once (the limits on sessions and
// on what it stores), then queued on the state as `task` (planned from
// `command`), which the pool applies in steps and answers. A refused Sync
// is not queued and changes nothing.
absl::Status Apply(const SyncCommand& command, absl::Time now, PoolState& state,
                   SyncTask task);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_RPC_OPERATIONS_H_
