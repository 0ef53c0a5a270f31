#include "client/balancer_client.h"

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace jambalancer {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// How many leader addresses learned from metadata (not among the targets
// given) keep their channels; an older one's channel is dropped.
constexpr size_t kMaxLearnedTargets = 4;

// With several replicas, the longest a channel waits before it tries to
// connect again to a replica that is down (gRPC's default grows to two
// minutes), so that a replica that comes back, maybe as the new leader, is
// reached within about a second.
constexpr int kInitialReconnectBackoffMs = 100;
constexpr int kMaxReconnectBackoffMs = 1000;

// Every call gets a fresh context: a ClientContext serves one call only.
void SetDeadline(grpc::ClientContext& context, absl::Duration deadline) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
}

// `status` as an absl::Status with the same code and message.
absl::Status ToStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

// The response if the call succeeded, else its status with the same code and
// message.
template <typename Response>
absl::StatusOr<Response> ToStatusOr(const grpc::Status& status,
                                    Response response) {
  if (!status.ok()) return ToStatus(status);
  return response;
}

// What a replicated balancer's answer says in its trailing metadata.
struct Trailers {
  std::optional<int64_t> epoch;  // None: no (readable) epoch.
  std::string leader;            // Empty: none named.
};
Trailers ReadTrailers(const grpc::ClientContext& context) {
  Trailers trailers;
  for (const auto& [key, value] : context.GetServerTrailingMetadata()) {
    const absl::string_view name(key.data(), key.size());
    const absl::string_view text(value.data(), value.size());
    int64_t epoch = 0;
    if (name == BalancerClient::kEpochMetadataKey &&
        absl::SimpleAtoi(text, &epoch)) {
      trailers.epoch = epoch;
    } else if (name == BalancerClient::kLeaderMetadataKey) {
      trailers.leader = std::string(text);
    }
  }
  return trailers;
}

// Whether `target` is a URI with a scheme ("dns:///h:1", "ipv4:1.2.3.4:5",
// "unix:/path"), not host:port: a scheme's characters before the first
// colon, and after it something other than a port number.
bool HasScheme(absl::string_view target) {
  const size_t colon = target.find(':');
  if (colon == 0 || colon == absl::string_view::npos ||
      !absl::ascii_isalpha(static_cast<unsigned char>(target[0]))) {
    return false;
  }
  for (const char c : target.substr(0, colon)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' &&
        c != '-' && c != '.') {
      return false;
    }
  }
  const absl::string_view rest = target.substr(colon + 1);
  return !rest.empty() && !std::all_of(rest.begin(), rest.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

// A channel to one of several replicas.
std::shared_ptr<grpc::Channel> ReplicaChannel(
    const std::string& target, const std::optional<BalancerClient::Tls>& tls) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              kInitialReconnectBackoffMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
  return grpc::CreateCustomChannel(target, BalancerClient::Credentials(tls),
                                   args);
}

// The PEM file `path` says `what` is; INVALID_ARGUMENT naming it if it
// cannot be read or holds no PEM block.
absl::StatusOr<std::string> ReadPem(absl::string_view what,
                                    const std::string& path) {
  errno = 0;
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  if (file) contents << file.rdbuf();
  if (!file || file.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS ", what, " file \"", path, "\": cannot read (",
                     errno != 0 ? std::strerror(errno) : "error", ")"));
  }
  std::string pem = std::move(contents).str();
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS ", what, " file \"", path, "\": not PEM (no \"-----BEGIN \")"));
  }
  return pem;
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

std::shared_ptr<grpc::ChannelCredentials> BalancerClient::Credentials(
    const std::optional<Tls>& tls) {
  if (!tls.has_value()) return grpc::InsecureChannelCredentials();
  return grpc::SslCredentials(
      grpc::SslCredentialsOptions{tls->ca_pem, tls->key_pem, tls->cert_pem});
}

absl::StatusOr<BalancerClient::Tls> BalancerClient::Tls::FromFiles(
    const std::string& ca_file, const std::string& cert_file,
    const std::string& key_file) {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError(
        cert_file.empty() ? absl::StrCat("TLS key file \"", key_file,
                                         "\" given without a certificate file")
                          : absl::StrCat("TLS certificate file \"", cert_file,
                                         "\" given without a key file"));
  }
  Tls tls;
  struct File {
    const char* what;
    const std::string& path;
    std::string& pem;
  };
  for (const File& file : {File{"CA", ca_file, tls.ca_pem},
                           File{"certificate", cert_file, tls.cert_pem},
                           File{"key", key_file, tls.key_pem}}) {
    if (file.path.empty()) continue;
    absl::StatusOr<std::string> pem = ReadPem(file.what, file.path);
    if (!pem.ok()) return pem.status();
    file.pem = *std::move(pem);
  }
  return tls;
}

struct BalancerClient::Replica {
  Replica(std::string target_name,
          const std::shared_ptr<grpc::ChannelInterface>& channel)
      : target(std::move(target_name)),
        stub(v1::JamBalancerService::NewStub(channel)),
        health_stub(grpc::health::v1::Health::NewStub(channel)) {}

  const std::string target;
  const std::unique_ptr<Stub> stub;
  const std::unique_ptr<grpc::health::v1::Health::Stub> health_stub;
};

std::vector<std::string> BalancerClient::SplitTargets(
    absl::string_view target) {
  const absl::string_view whole = absl::StripAsciiWhitespace(target);
  const absl::string_view first = whole.substr(0, whole.find(','));
  if (HasScheme(absl::StripAsciiWhitespace(first))) return {std::string(whole)};
  std::vector<std::string> targets;
  for (absl::string_view part : absl::StrSplit(whole, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (!part.empty()) targets.emplace_back(part);
  }
  if (targets.empty()) targets.emplace_back(whole);
  return targets;
}

std::unique_ptr<BalancerClient> BalancerClient::Connect(
    absl::Span<const std::string> targets, Options options) {
  std::vector<std::string> unique;
  for (const std::string& target : targets) {
    if (std::find(unique.begin(), unique.end(), target) == unique.end()) {
      unique.push_back(target);
    }
  }
  if (unique.empty()) unique.emplace_back();
  std::vector<std::shared_ptr<const Replica>> replicas;
  if (unique.size() == 1) {
    // A single balancer: the channel it always had.
    replicas.push_back(std::make_shared<const Replica>(
        unique[0], grpc::CreateChannel(unique[0], Credentials(options.tls))));
  } else {
    for (const std::string& target : unique) {
      replicas.push_back(std::make_shared<const Replica>(
          target, ReplicaChannel(target, options.tls)));
    }
  }
  return std::unique_ptr<BalancerClient>(
      new BalancerClient(std::move(replicas), std::move(options)));
}

std::unique_ptr<BalancerClient> BalancerClient::Connect(
    absl::string_view target, Options options) {
  return Connect(SplitTargets(target), std::move(options));
}

BalancerClient::BalancerClient(std::shared_ptr<grpc::ChannelInterface> channel,
                               Options options)
    : BalancerClient({std::make_shared<const Replica>("", channel)},
                     std::move(options)) {}

BalancerClient::BalancerClient(
    std::vector<std::shared_ptr<const Replica>> replicas, Options options)
    : options_(std::move(options)), follows_leader_(replicas.size() > 1) {
  absl::MutexLock lock(&mu_);
  replicas_ = std::move(replicas);
  listed_ = replicas_.size();
  current_ = replicas_.front();
}

BalancerClient::~BalancerClient() = default;

int64_t BalancerClient::highest_epoch() const { return highest_epoch_.load(); }

std::string BalancerClient::current_target() const { return Current()->target; }

std::shared_ptr<const BalancerClient::Replica> BalancerClient::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

size_t BalancerClient::FollowLeader(const std::string& leader) {
  absl::MutexLock lock(&mu_);
  for (const std::shared_ptr<const Replica>& replica : replicas_) {
    if (replica->target == leader) {
      current_ = replica;
      return replicas_.size();
    }
  }
  // A leader outside the list (e.g. an address it advertises that differs
  // from the one given). Calls in flight on a dropped channel keep it.
  if (replicas_.size() - listed_ >= kMaxLearnedTargets) {
    replicas_.erase(replicas_.begin() + static_cast<ptrdiff_t>(listed_));
  }
  replicas_.push_back(std::make_shared<const Replica>(
      leader, ReplicaChannel(leader, options_.tls)));
  current_ = replicas_.back();
  return replicas_.size();
}

size_t BalancerClient::MoveOnFrom(const Replica* failed) {
  absl::MutexLock lock(&mu_);
  // Another call moved on already.
  if (current_.get() != failed) return replicas_.size();
  size_t next = 0;  // A dropped learned replica: start over at the first.
  for (size_t i = 0; i < replicas_.size(); ++i) {
    if (replicas_[i].get() == failed) next = (i + 1) % replicas_.size();
  }
  current_ = replicas_[next];
  return replicas_.size();
}

bool BalancerClient::Admit(std::optional<int64_t> epoch, bool ok,
                           int64_t* highest) {
  *highest = highest_epoch_.load();
  // A successful answer without an epoch, once epochs were seen, comes from
  // a balancer outside the election: no more trustworthy. Errors without
  // one are the transport's (or a lone balancer's).
  if (!epoch.has_value()) return !ok || *highest == 0;
  for (;;) {
    if (*epoch < *highest) return false;
    if (*epoch == *highest ||
        highest_epoch_.compare_exchange_weak(*highest, *epoch)) {
      return true;
    }
  }
}

absl::Status BalancerClient::Run(Attempt attempt, Answered* answered) {
  const absl::Time deadline = absl::Now() + options_.deadline;
  absl::Duration backoff = kInitialBackoff;
  // Attempts sent on at once since the last backoff. As many in a row as
  // there are replicas, so that a round reaches each (a dead replica fails
  // fast) but replicas naming each other (their views lag behind etcd) are
  // not asked in a busy loop.
  size_t at_once = 0;
  for (;;) {
    const std::shared_ptr<const Replica> replica = Current();
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    const grpc::Status status = attempt(*replica, context);
    const Trailers trailers = ReadTrailers(context);
    int64_t highest = 0;
    absl::Status result;
    std::string leader;
    if (!Admit(trailers.epoch, status.ok(), &highest)) {
      result = absl::UnavailableError(absl::StrCat(
          "stale replica ", replica->target, ": its answer belongs to epoch ",
          trailers.epoch.value_or(0), ", but epoch ", highest,
          " has been seen"));
    } else {
      result = ToStatus(status);
      // CANCELLED that this client did not ask for comes from a replica
      // shutting down (a call that raced its GOAWAY): like UNAVAILABLE, the
      // call may go to another replica.
      const bool refused =
          status.error_code() == grpc::StatusCode::UNAVAILABLE ||
          (status.error_code() == grpc::StatusCode::CANCELLED &&
           follows_leader_ && absl::Now() < deadline);
      if (!refused) {
        if (status.ok() && answered != nullptr) {
          *answered = {replica->target, trailers.epoch.value_or(0)};
        }
        return result;
      }
      leader = trailers.leader;
    }
    if (!follows_leader_) return result;

    // Refused, stale or unreachable: the call goes to the leader named, or
    // else (also when the replica names itself but refuses) to the next.
    const size_t replicas = leader.empty() || leader == replica->target
                                ? MoveOnFrom(replica.get())
                                : FollowLeader(leader);
    if (at_once < replicas) {
      ++at_once;
      if (absl::Now() >= deadline) return result;
      continue;
    }
    at_once = 0;
    if (deadline - absl::Now() <= backoff) return result;
    absl::SleepFor(backoff);
    backoff = std::min(2 * backoff, kMaxBackoff);
  }
}

template <typename Request, typename Response>
absl::StatusOr<Response> BalancerClient::Call(
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                 Response*),
    const Request& request) {
  Response response;
  const absl::Status status = Run(
      [&](const Replica& replica, grpc::ClientContext& context) {
        response.Clear();
        return (replica.stub.get()->*method)(&context, request, &response);
      },
      nullptr);
  if (!status.ok()) return status;
  return response;
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

absl::StatusOr<v1::ListPoolsResponse> BalancerClient::ListPools() {
  return Call(&Stub::ListPools, v1::ListPoolsRequest());
}

absl::StatusOr<v1::GetRoutingResponse> BalancerClient::GetRouting() {
  return Call(&Stub::GetRouting, v1::GetRoutingRequest());
}

absl::StatusOr<v1::GetJamResponse> BalancerClient::GetJam(
    absl::string_view jam_id) {
  v1::GetJamRequest request;
  request.set_jam_id(std::string(jam_id));
  return Call(&Stub::GetJam, request);
}

absl::StatusOr<v1::SyncResponse> BalancerClient::Sync(
    absl::Duration lease_ttl, absl::Span<const JamUsers> jams) {
  v1::SyncResponse response;
  const absl::Status status = Run(
      [&](const Replica& replica, grpc::ClientContext& context) {
        response.Clear();
        std::unique_ptr<grpc::ClientWriter<v1::SyncRequest>> stream =
            replica.stub->Sync(&context, &response);
        // The first message names the front end and the lease, also when
        // there are no jams; the others carry jams only.
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
          // message, the deadline, a standby's refusal): Finish says why.
          if (!stream->Write(message)) break;
          message.Clear();
        } while (next < jams.size());
        stream->WritesDone();
        // Finish fills `response`: it must return before the response is
        // read.
        return stream->Finish();
      },
      nullptr);
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<bool> BalancerClient::IsServing(absl::string_view service) {
  HealthCheckRequest request;
  request.set_service(std::string(service));
  grpc::ClientContext context;
  SetDeadline(context, options_.deadline);
  HealthCheckResponse response;
  const grpc::Status status =
      Current()->health_stub->Check(&context, request, &response);
  absl::StatusOr<HealthCheckResponse> result =
      ToStatusOr(status, std::move(response));
  if (!result.ok()) return result.status();
  // UNKNOWN (and SERVICE_UNKNOWN, which only Watch sends) is not serving.
  return result->status() == HealthCheckResponse::SERVING;
}

absl::StatusOr<BalancerClient::Leader> BalancerClient::FindLeader() {
  v1::GetStatsResponse response;
  Answered answered;
  const absl::Status status = Run(
      [&](const Replica& replica, grpc::ClientContext& context) {
        response.Clear();
        return replica.stub->GetStats(&context, v1::GetStatsRequest(),
                                      &response);
      },
      &answered);
  if (!status.ok()) return status;
  return Leader{answered.target, answered.epoch};
}

}  // namespace jambalancer
