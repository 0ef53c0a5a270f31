#ifndef JAM_BALANCER_BENCH_LOAD_WORKLOAD_H_
#define JAM_BALANCER_BENCH_LOAD_WORKLOAD_H_

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "bench/load/config.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"

namespace jambalancer {
namespace bench {

// The workloads: what one simulated client sends, call after call (one
// call = one RPC).
//   current_jam   CurrentJam without a user id (a read).
//   arrivals      the front-end protocol: CurrentJam with a fresh user id,
//                 then AddUser of that user to the answered jam; once a slot
//                 holds its share of --population, each arrival is followed
//                 by a RemoveUser of the slot's oldest user (a departure), so
//                 the population stays steady. Steady state: 3 calls per
//                 arrival.
//   refresh       Refresh of a random prepopulated jam with 1..max_users
//                 users.
//   has_capacity  HasCapacity of a random prepopulated jam.
//   batch         Batch calls of --batch_size operations of the arrivals
//                 life cycle: AddUser for the users answered by the slot's
//                 previous batch, RemoveUser departures, and CurrentJam for
//                 new users (about a third each in the steady state).
//                 Reports operations/s as well as calls/s. With --pools,
//                 slot i's calls go to pool i % (number of pools)
//                 (BatchRequest.pool; the operations name none); user ids
//                 are the slot's own, so no two pools share one.
//   arrivals_fe   arrivals, each call with the frontend_id of the slot's
//                 front end: the channels are spread over --frontends front
//                 ends (channel c belongs to front end c % frontends), each
//                 of which Syncs an empty truth before the warm-up and sends
//                 KeepAlive every --lease/3 during the run
//                 (bench/load/sessions.h; keepalives are not counted as
//                 calls, but a failed one counts as an error).
//   sync          not a rate loop: --frontends front ends each Sync
//                 --users_per_frontend users at once; bench/load/sync.h.
//   expiry        arrivals_fe while one more front end Syncs
//                 --users_per_frontend users and lets its lease run out;
//                 bench/load/expiry.h.

// One simulated client: at most one call in flight. Only the thread that
// runs its current call (or, between calls, the one that starts the next)
// touches it.
struct Slot {
  // Creates the id of a user no call has named yet ("bench-SLOT-N").
  std::string NewUserId() {
    return absl::StrCat("bench-", index, "-", users_made++);
  }
  // After a call that failed or answered nonsense: the life cycle starts
  // over with a new user.
  void StartOver() {
    step = 0;
    answered.clear();
  }

  // Set by the driver (bench/load/driver.h):
  int index = 0;
  // arrivals_fe, expiry: the front end every call names; empty: anonymous
  // calls.
  std::string frontend_id;
  // batch: the pool its Batch calls name; empty: none (the default pool).
  std::string pool;
  v1::JamBalancerService::Stub* stub = nullptr;
  // The current call's; the driver makes a fresh one, with its deadline,
  // before each call.
  std::unique_ptr<grpc::ClientContext> context;
  // When the current call started (closed loop) or was due (open loop).
  std::chrono::steady_clock::time_point start;

  // The workload's:
  absl::InsecureBitGen random;
  uint64_t users_made = 0;
  // arrivals: 0 = next is CurrentJam, 1 = AddUser, 2 = RemoveUser.
  int step = 0;
  std::string user_id;
  std::string jam_id;
  // Members this slot added, oldest first: (jam, user).
  std::deque<std::pair<std::string, std::string>> members;
  // batch: users answered by CurrentJam in the previous batch: (jam, user).
  std::vector<std::pair<std::string, std::string>> answered;
  // Messages of the current call.
  v1::CurrentJamRequest current_jam_request;
  v1::CurrentJamResponse current_jam_response;
  v1::AddUserRequest add_user_request;
  v1::AddUserResponse add_user_response;
  v1::RemoveUserRequest remove_user_request;
  v1::RemoveUserResponse remove_user_response;
  v1::RefreshRequest refresh_request;
  v1::RefreshResponse refresh_response;
  v1::HasCapacityRequest has_capacity_request;
  v1::HasCapacityResponse has_capacity_response;
  v1::BatchRequest batch_request;
  v1::BatchResponse batch_response;
};

// What a completed call did, beyond its status.
struct Outcome {
  uint64_t ops = 1;
  uint64_t arrivals = 0;
  uint64_t redirects = 0;
  bool bad_response = false;  // OK, but not an answer to what was asked
};

// Starts the calls of one workload on the gRPC callback API. Start may run
// on any thread, for different slots at once; the slot's rule (one thread
// at a time) is the caller's to keep.
class Workload {
 public:
  // Called once per call Start started, on a gRPC thread, when the call has
  // completed and the slot's state has taken in its answer.
  using DoneCallback = std::function<void(
      Slot& slot, const grpc::Status& status, const Outcome& outcome)>;

  // The workload config.workload; `max_users` is the server's
  // (bench/load/setup.h). Each of the config.concurrency slots keeps
  // ceil(config.population / config.concurrency) members.
  Workload(const Config& config, uint32_t max_users, DoneCallback done);
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  // Starts `slot`'s next call on slot.stub, with slot.context.
  // REQUIRES: no call of `slot` in flight; slot.context fresh. The Workload
  // must outlive the call.
  void Start(Slot& slot);

 private:
  void StartCurrentJam(Slot& slot);
  void StartArrivalStep(Slot& slot);
  void StartRefresh(Slot& slot);
  void StartHasCapacity(Slot& slot);
  void StartBatch(Slot& slot);
  // Reads a batch's results into the slot's state.
  void CollectBatch(Slot& slot, Outcome* outcome);
  // A jam id of the prepopulated set (or, with none, one of 1000 unknown
  // ones).
  std::string RandomJamId(Slot& slot);

  const WorkloadKind kind_;
  const int batch_size_;
  const int prepopulate_;
  const uint32_t max_users_;
  const int share_;  // members each slot keeps (arrivals, batch)
  const DoneCallback done_;
};

}  // namespace bench
}  // namespace jambalancer

#endif  // JAM_BALANCER_BENCH_LOAD_WORKLOAD_H_
