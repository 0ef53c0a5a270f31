#include "client/balancer_client.h"

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
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

// A duration as the whole milliseconds of a uint32 request field: zero or
// less is 0 (which the fields take as "none" or "the server's default"),
// anything else at least 1 and at most what the field holds (the server caps
// it lower).
uint32_t WholeMillis(absl::Duration duration) {
  if (duration <= absl::ZeroDuration()) return 0;
  return static_cast<uint32_t>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(duration), 1,
                          std::numeric_limits<uint32_t>::max()));
}

// Bytes that `value` takes as a length-delimited field with a one-byte tag.
size_t FieldSize(size_t value) {
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(value) +
         value;
}

// Bytes that `jam` takes as an entry of SyncRequest.jams.
size_t EncodedSize(const BalancerClient::JamUsers& jam) {
  size_t size = FieldSize(jam.jam_id.size());
  for (const std::string& user_id : jam.user_ids) {
    size += FieldSize(user_id.size());
  }
  return FieldSize(size);
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
  v1::CurrentJamRequest request;
  request.set_frontend_id(options_.frontend_id);
  return Call(&Stub::CurrentJam, request);
}

absl::StatusOr<v1::CurrentJamResponse> BalancerClient::CurrentJam(
    absl::string_view user_id, absl::Duration ttl) {
  v1::CurrentJamRequest request;
  request.set_user_id(std::string(user_id));
  request.set_reservation_ttl_ms(WholeMillis(ttl));
  request.set_frontend_id(options_.frontend_id);
  return Call(&Stub::CurrentJam, request);
}

absl::StatusOr<v1::RefreshResponse> BalancerClient::Refresh(
    absl::string_view jam_id, absl::Span<const std::string> user_ids) {
  v1::RefreshRequest request;
  request.set_jam_id(std::string(jam_id));
  request.mutable_user_ids()->Add(user_ids.begin(), user_ids.end());
  request.set_frontend_id(options_.frontend_id);
  return Call(&Stub::Refresh, request);
}

absl::StatusOr<v1::RemoveUserResponse> BalancerClient::RemoveUser(
    absl::string_view jam_id, absl::string_view user_id,
    absl::Duration hold_seat) {
  v1::RemoveUserRequest request;
  request.set_jam_id(std::string(jam_id));
  request.set_user_id(std::string(user_id));
  request.set_frontend_id(options_.frontend_id);
  request.set_hold_seat_ms(WholeMillis(hold_seat));
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
  request.set_frontend_id(options_.frontend_id);
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

absl::StatusOr<v1::KeepAliveResponse> BalancerClient::KeepAlive() {
  v1::KeepAliveRequest request;
  request.set_frontend_id(options_.frontend_id);
  return Call(&Stub::KeepAlive, request);
}

absl::StatusOr<v1::EndSessionResponse> BalancerClient::EndSession() {
  v1::EndSessionRequest request;
  request.set_frontend_id(options_.frontend_id);
  return Call(&Stub::EndSession, request);
}

absl::StatusOr<v1::ListSessionsResponse> BalancerClient::ListSessions() {
  return Call(&Stub::ListSessions, v1::ListSessionsRequest());
}

absl::StatusOr<v1::GetJamResponse> BalancerClient::GetJam(
    absl::string_view jam_id) {
  v1::GetJamRequest request;
  request.set_jam_id(std::string(jam_id));
  return Call(&Stub::GetJam, request);
}

absl::StatusOr<v1::SyncResponse> BalancerClient::Sync(
    absl::Duration lease_ttl, absl::Span<const JamUsers> jams) {
  grpc::ClientContext context;
  SetDeadline(context, options_.deadline);
  v1::SyncResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::SyncRequest>> stream =
      stub_->Sync(&context, &response);
  // The first message names the front end and the lease, also when there
  // are no jams; the others carry jams only.
  v1::SyncRequest message;
  message.set_frontend_id(options_.frontend_id);
  message.set_lease_ttl_ms(WholeMillis(lease_ttl));
  size_t next = 0;
  do {
    size_t bytes = message.ByteSizeLong();
    for (; next < jams.size(); ++next) {
      const JamUsers& jam = jams[next];
      const size_t jam_bytes = EncodedSize(jam);
      if (message.jams_size() > 0 &&
          (message.jams_size() == kMaxSyncMessageJams ||
           bytes + jam_bytes > kMaxSyncMessageBytes)) {
        break;
      }
      v1::JamMembers* members = message.add_jams();
      members->set_jam_id(jam.jam_id);
      members->mutable_user_ids()->Add(jam.user_ids.begin(),
                                       jam.user_ids.end());
      bytes += jam_bytes;
    }
    // A failed write means the server already ended the call (a bad
    // message, the deadline): Finish says why.
    if (!stream->Write(message)) break;
    message.Clear();
  } while (next < jams.size());
  stream->WritesDone();
  // Finish fills `response`: it must return before the response is moved.
  const grpc::Status status = stream->Finish();
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
