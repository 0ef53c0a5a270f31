#include "client/balancer_client.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/clock.h"

namespace jambalancer {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// Every call gets a fresh context: a ClientContext serves one call only.
void SetDeadline(grpc::ClientContext& context, absl::Duration deadline) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
}

// The response if the call succeeded, else its status with the same code and
// message.
template <typename Response>
absl::StatusOr<Response> ToStatusOr(const grpc::Status& status,
                                    Response response) {
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return response;
}

}  // namespace

std::unique_ptr<BalancerClient> BalancerClient::Connect(
    absl::string_view target, Options options) {
  return std::make_unique<BalancerClient>(
      grpc::CreateChannel(std::string(target),
                          grpc::InsecureChannelCredentials()),
      options);
}

BalancerClient::BalancerClient(std::shared_ptr<grpc::ChannelInterface> channel,
                               Options options)
    : stub_(v1::JamBalancerService::NewStub(channel)),
      health_stub_(grpc::health::v1::Health::NewStub(channel)),
      options_(options) {}

template <typename Request, typename Response>
absl::StatusOr<Response> BalancerClient::Call(
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                 Response*),
    const Request& request) {
  grpc::ClientContext context;
  SetDeadline(context, options_.deadline);
  Response response;
  const grpc::Status status =
      (stub_.get()->*method)(&context, request, &response);
  return ToStatusOr(status, std::move(response));
}

absl::StatusOr<v1::CurrentJamResponse> BalancerClient::CurrentJam() {
  return Call(&Stub::CurrentJam, v1::CurrentJamRequest());
}

absl::StatusOr<v1::CurrentJamResponse> BalancerClient::CurrentJam(
    absl::string_view user_id, absl::Duration ttl) {
  v1::CurrentJamRequest request;
  request.set_user_id(std::string(user_id));
  // Whole milliseconds, at least 1 unless zero (which means the server's
  // default), at most what the field holds (the server caps it lower).
  const int64_t ms =
      ttl <= absl::ZeroDuration()
          ? 0
          : std::clamp<int64_t>(absl::ToInt64Milliseconds(ttl), 1,
                                std::numeric_limits<uint32_t>::max());
  request.set_reservation_ttl_ms(static_cast<uint32_t>(ms));
  return Call(&Stub::CurrentJam, request);
}

absl::StatusOr<v1::RefreshResponse> BalancerClient::Refresh(
    absl::string_view jam_id, absl::Span<const std::string> user_ids) {
  v1::RefreshRequest request;
  request.set_jam_id(std::string(jam_id));
  request.mutable_user_ids()->Add(user_ids.begin(), user_ids.end());
  return Call(&Stub::Refresh, request);
}

absl::StatusOr<v1::RemoveUserResponse> BalancerClient::RemoveUser(
    absl::string_view jam_id, absl::string_view user_id) {
  v1::RemoveUserRequest request;
  request.set_jam_id(std::string(jam_id));
  request.set_user_id(std::string(user_id));
  return Call(&Stub::RemoveUser, request);
}

absl::StatusOr<v1::HasCapacityResponse> BalancerClient::HasCapacity(
    absl::string_view jam_id, absl::string_view user_id) {
  v1::HasCapacityRequest request;
  request.set_jam_id(std::string(jam_id));
  request.set_user_id(std::string(user_id));
  return Call(&Stub::HasCapacity, request);
}

absl::StatusOr<v1::AddUserResponse> BalancerClient::AddUser(
    absl::string_view jam_id, absl::string_view user_id) {
  v1::AddUserRequest request;
  request.set_jam_id(std::string(jam_id));
  request.set_user_id(std::string(user_id));
  return Call(&Stub::AddUser, request);
}

absl::StatusOr<v1::GetStatsResponse> BalancerClient::GetStats() {
  return Call(&Stub::GetStats, v1::GetStatsRequest());
}

absl::StatusOr<v1::ListJamsResponse> BalancerClient::ListJams(
    uint32_t page_size, absl::string_view page_token) {
  v1::ListJamsRequest request;
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  return Call(&Stub::ListJams, request);
}

absl::StatusOr<v1::BatchResponse> BalancerClient::Batch(
    const v1::BatchRequest& request) {
  return Call(&Stub::Batch, request);
}

absl::StatusOr<bool> BalancerClient::IsServing(absl::string_view service) {
  HealthCheckRequest request;
  request.set_service(std::string(service));
  grpc::ClientContext context;
  SetDeadline(context, options_.deadline);
  HealthCheckResponse response;
  const grpc::Status status = health_stub_->Check(&context, request, &response);
  absl::StatusOr<HealthCheckResponse> result =
      ToStatusOr(status, std::move(response));
  if (!result.ok()) return result.status();
  // UNKNOWN (and SERVICE_UNKNOWN, which only Watch sends) is not serving.
  return result->status() == HealthCheckResponse::SERVING;
}

}  // namespace jambalancer
