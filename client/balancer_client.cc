#include "client/balancer_client.h"

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

absl::StatusOr<v1::CurrentJamResponse> BalancerClient::CurrentJam() {
  grpc::ClientContext context;
  SetDeadline(context, options_.deadline);
  v1::CurrentJamResponse response;
  const grpc::Status status =
      stub_->CurrentJam(&context, v1::CurrentJamRequest(), &response);
  return ToStatusOr(status, std::move(response));
}

absl::StatusOr<v1::RefreshResponse> BalancerClient::Refresh(
    absl::string_view jam_id, absl::Span<const std::string> user_ids) {
  v1::RefreshRequest request;
  request.set_jam_id(std::string(jam_id));
  request.mutable_user_ids()->Add(user_ids.begin(), user_ids.end());
  grpc::ClientContext context;
  SetDeadline(context, options_.deadline);
  v1::RefreshResponse response;
  const grpc::Status status = stub_->Refresh(&context, request, &response);
  return ToStatusOr(status, std::move(response));
}

absl::StatusOr<v1::RemoveUserResponse> BalancerClient::RemoveUser(
    absl::string_view jam_id, absl::string_view user_id) {
  v1::RemoveUserRequest request;
  request.set_jam_id(std::string(jam_id));
  request.set_user_id(std::string(user_id));
  grpc::ClientContext context;
  SetDeadline(context, options_.deadline);
  v1::RemoveUserResponse response;
  const grpc::Status status = stub_->RemoveUser(&context, request, &response);
  return ToStatusOr(status, std::move(response));
}

absl::StatusOr<v1::HasCapacityResponse> BalancerClient::HasCapacity(
    absl::string_view jam_id) {
  v1::HasCapacityRequest request;
  request.set_jam_id(std::string(jam_id));
  grpc::ClientContext context;
  SetDeadline(context, options_.deadline);
  v1::HasCapacityResponse response;
  const grpc::Status status = stub_->HasCapacity(&context, request, &response);
  return ToStatusOr(status, std::move(response));
}

absl::StatusOr<v1::AddUserResponse> BalancerClient::AddUser(
    absl::string_view jam_id, absl::string_view user_id) {
  v1::AddUserRequest request;
  request.set_jam_id(std::string(jam_id));
  request.set_user_id(std::string(user_id));
  grpc::ClientContext context;
  SetDeadline(context, options_.deadline);
  v1::AddUserResponse response;
  const grpc::Status status = stub_->AddUser(&context, request, &response);
  return ToStatusOr(status, std::move(response));
}

absl::StatusOr<v1::GetStatsResponse> BalancerClient::GetStats() {
  grpc::ClientContext context;
  SetDeadline(context, options_.deadline);
  v1::GetStatsResponse response;
  const grpc::Status status =
      stub_->GetStats(&context, v1::GetStatsRequest(), &response);
  return ToStatusOr(status, std::move(response));
}

absl::StatusOr<v1::ListJamsResponse> BalancerClient::ListJams(
    uint32_t page_size, absl::string_view page_token) {
  v1::ListJamsRequest request;
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  grpc::ClientContext context;
  SetDeadline(context, options_.deadline);
  v1::ListJamsResponse response;
  const grpc::Status status = stub_->ListJams(&context, request, &response);
  return ToStatusOr(status, std::move(response));
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
