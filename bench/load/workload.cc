#include "bench/load/workload.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "bench/load/config.h"
#include "bench/load/setup.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"

namespace jambalancer {
namespace bench {

Workload::Workload(const Config& config, uint32_t max_users, DoneCallback done)
    : kind_(config.workload),
      batch_size_(config.batch_size),
      prepopulate_(config.prepopulate),
      max_users_(max_users),
      share_((config.population + config.concurrency - 1) / config.concurrency),
      done_(std::move(done)) {}

void Workload::Start(Slot& slot) {
  switch (kind_) {
    case WorkloadKind::kCurrentJam:
      StartCurrentJam(slot);
      break;
    case WorkloadKind::kArrivals:
    case WorkloadKind::kArrivalsFe:
    case WorkloadKind::kExpiry:
      StartArrivalStep(slot);
      break;
    case WorkloadKind::kRefresh:
      StartRefresh(slot);
      break;
    case WorkloadKind::kHasCapacity:
      StartHasCapacity(slot);
      break;
    case WorkloadKind::kBatch:
      StartBatch(slot);
      break;
    case WorkloadKind::kSync:  // not run by the driver (bench/load/sync.h)
    case WorkloadKind::kSoak:  // nor this one (bench/load/soak.h)
      done_(slot, grpc::Status(grpc::StatusCode::INTERNAL, "not a driver run"),
            Outcome());
      break;
  }
}

void Workload::StartCurrentJam(Slot& slot) {
  slot.current_jam_request.Clear();
  slot.current_jam_response.Clear();
  slot.stub->async()->CurrentJam(
      slot.context.get(), &slot.current_jam_request, &slot.current_jam_response,
      [this, &slot](grpc::Status status) {
        Outcome outcome;
        outcome.bad_response =
            status.ok() && slot.current_jam_response.jam_id().empty();
        done_(slot, status, outcome);
      });
}

void Workload::StartArrivalStep(Slot& slot) {
  switch (slot.step) {
    case 0:
      slot.user_id = slot.NewUserId();
      slot.current_jam_request.Clear();
      slot.current_jam_request.set_user_id(slot.user_id);
      if (!slot.frontend_id.empty()) {
        slot.current_jam_request.set_frontend_id(slot.frontend_id);
      }
      slot.current_jam_response.Clear();
      slot.stub->async()->CurrentJam(
          slot.context.get(), &slot.current_jam_request,
          &slot.current_jam_response, [this, &slot](grpc::Status status) {
            Outcome outcome;
            if (status.ok()) {
              slot.jam_id = slot.current_jam_response.jam_id();
              outcome.bad_response = slot.jam_id.empty();
              slot.step = outcome.bad_response ? 0 : 1;
            }
            done_(slot, status, outcome);
          });
      break;
    case 1:
      slot.add_user_request.set_jam_id(slot.jam_id);
      slot.add_user_request.set_user_id(slot.user_id);
      if (!slot.frontend_id.empty()) {
        slot.add_user_request.set_frontend_id(slot.frontend_id);
      }
      slot.add_user_response.Clear();
      slot.stub->async()->AddUser(
          slot.context.get(), &slot.add_user_request, &slot.add_user_response,
          [this, &slot](grpc::Status status) {
            Outcome outcome;
            slot.step = 0;
            if (status.ok()) {
              if (slot.add_user_response.added()) {
                outcome.arrivals = 1;
                slot.members.emplace_back(slot.jam_id, slot.user_id);
                if (static_cast<int>(slot.members.size()) > share_) {
                  slot.step = 2;
                }
              } else {
                outcome.redirects = 1;
              }
            }
            done_(slot, status, outcome);
          });
      break;
    default:
      slot.remove_user_request.set_jam_id(slot.members.front().first);
      slot.remove_user_request.set_user_id(slot.members.front().second);
      if (!slot.frontend_id.empty()) {
        slot.remove_user_request.set_frontend_id(slot.frontend_id);
      }
      slot.members.pop_front();
      slot.remove_user_response.Clear();
      slot.stub->async()->RemoveUser(
          slot.context.get(), &slot.remove_user_request,
          &slot.remove_user_response, [this, &slot](grpc::Status status) {
            slot.step = 0;
            done_(slot, status, Outcome());
          });
      break;
  }
}

std::string Workload::RandomJamId(Slot& slot) {
  const int jams = prepopulate_ > 0 ? prepopulate_ : 1000;
  return PrepopulatedJamId(absl::Uniform(slot.random, 0, jams));
}

void Workload::StartRefresh(Slot& slot) {
  slot.refresh_request.Clear();
  slot.refresh_request.set_jam_id(RandomJamId(slot));
  const uint32_t users =
      absl::Uniform(absl::IntervalClosed, slot.random, uint32_t{1}, max_users_);
  for (uint32_t u = 0; u < users; ++u) {
    slot.refresh_request.add_user_ids(
        absl::StrCat(slot.refresh_request.jam_id(), "-u", u));
  }
  slot.refresh_response.Clear();
  slot.stub->async()->Refresh(
      slot.context.get(), &slot.refresh_request, &slot.refresh_response,
      [this, &slot](grpc::Status status) { done_(slot, status, Outcome()); });
}

void Workload::StartHasCapacity(Slot& slot) {
  slot.has_capacity_request.Clear();
  slot.has_capacity_request.set_jam_id(RandomJamId(slot));
  slot.has_capacity_response.Clear();
  slot.stub->async()->HasCapacity(
      slot.context.get(), &slot.has_capacity_request,
      &slot.has_capacity_response,
      [this, &slot](grpc::Status status) { done_(slot, status, Outcome()); });
}

// AddUser for the users the previous batch answered, RemoveUser for the
// members beyond the slot's share, CurrentJam for new users in the rest.
void Workload::StartBatch(Slot& slot) {
  v1::BatchRequest& request = slot.batch_request;
  request.Clear();
  if (!slot.pool.empty()) request.set_pool(slot.pool);
  const int size = batch_size_;
  int joins = 0;
  for (const auto& [jam_id, user_id] : slot.answered) {
    if (joins == size) break;
    v1::AddUserRequest* add = request.add_operations()->mutable_add_user();
    add->set_jam_id(jam_id);
    add->set_user_id(user_id);
    ++joins;
  }
  slot.answered.erase(slot.answered.begin(), slot.answered.begin() + joins);
  // Those joins will (almost always) add members: depart to make room.
  int departures = 0;
  while (request.operations_size() < size &&
         static_cast<int>(slot.members.size()) + joins - departures > share_ &&
         departures < static_cast<int>(slot.members.size())) {
    const auto& [jam_id, user_id] = slot.members[departures];
    v1::RemoveUserRequest* remove =
        request.add_operations()->mutable_remove_user();
    remove->set_jam_id(jam_id);
    remove->set_user_id(user_id);
    ++departures;
  }
  slot.members.erase(slot.members.begin(), slot.members.begin() + departures);
  while (request.operations_size() < size) {
    request.add_operations()->mutable_current_jam()->set_user_id(
        slot.NewUserId());
  }
  slot.batch_response.Clear();
  slot.stub->async()->Batch(
      slot.context.get(), &slot.batch_request, &slot.batch_response,
      [this, &slot](grpc::Status status) {
        Outcome outcome;
        outcome.ops = slot.batch_request.operations_size();
        if (status.ok()) CollectBatch(slot, &outcome);
        done_(slot, status, outcome);
      });
}

void Workload::CollectBatch(Slot& slot, Outcome* outcome) {
  const v1::BatchRequest& request = slot.batch_request;
  const v1::BatchResponse& response = slot.batch_response;
  if (response.results_size() != request.operations_size()) {
    outcome->bad_response = true;
    return;
  }
  for (int i = 0; i < request.operations_size(); ++i) {
    const v1::BatchOperation& operation = request.operations(i);
    const v1::BatchResult& result = response.results(i);
    if (static_cast<int>(result.result_case()) !=
        static_cast<int>(operation.operation_case())) {
      outcome->bad_response = true;
      return;
    }
    switch (operation.operation_case()) {
      case v1::BatchOperation::kCurrentJam:
        if (result.current_jam().jam_id().empty()) {
          outcome->bad_response = true;
        } else {
          slot.answered.emplace_back(result.current_jam().jam_id(),
                                     operation.current_jam().user_id());
        }
        break;
      case v1::BatchOperation::kAddUser:
        if (result.add_user().added()) {
          ++outcome->arrivals;
          slot.members.emplace_back(operation.add_user().jam_id(),
                                    operation.add_user().user_id());
        } else {
          ++outcome->redirects;
        }
        break;
      default:
        break;
    }
  }
}

}  // namespace bench
}  // namespace jambalancer
