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
#include <thread>
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
  if (!jam.pool.empty()) size += FieldSize(jam.pool.size());
  return FieldSize(size);
}

// The route table's key of `pool`: its name, the default pool's for "".
std::string PoolKey(absl::string_view pool) {
  return pool.empty() ? BalancerClient::kDefaultPool : std::string(pool);
}

// Whether `status` refuses a call that may go to another replica:
// UNAVAILABLE, or (following leaders, before the deadline) a CANCELLED this
// client did not ask for, from a replica shutting down (a call that raced
// its GOAWAY).
bool Refused(const grpc::Status& status, bool follows_leader,
             absl::Time deadline) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         (status.error_code() == grpc::StatusCode::CANCELLED &&
          follows_leader && absl::Now() < deadline);
}

// The pace of a call's attempts: at once, as many in a row as there are
// replicas (so that a round reaches each, and a dead replica fails fast),
// then a backoff that doubles, so that replicas naming each other (their
// views lag behind etcd) are not asked in a busy loop; all by the deadline.
class Pacer {
 public:
  explicit Pacer(absl::Time deadline) : deadline_(deadline) {}

  absl::Time deadline() const { return deadline_; }

  // Waits until the next attempt is due, given `replicas` known. False if
  // the deadline leaves no time for one.
  bool Next(size_t replicas) {
    if (at_once_ < replicas) {
      ++at_once_;
      return absl::Now() < deadline_;
    }
    at_once_ = 0;
    if (deadline_ - absl::Now() <= backoff_) return false;
    absl::SleepFor(backoff_);
    backoff_ = std::min(2 * backoff_, BalancerClient::kMaxBackoff);
    return true;
  }

 private:
  const absl::Time deadline_;
  absl::Duration backoff_ = BalancerClient::kInitialBackoff;
  size_t at_once_ = 0;
};

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
  routes_[kDefaultPool].replica = replicas_.front();
}

BalancerClient::~BalancerClient() = default;

int64_t BalancerClient::highest_epoch(absl::string_view pool) const {
  absl::MutexLock lock(&mu_);
  const auto route = routes_.find(PoolKey(pool));
  return route == routes_.end() ? 0 : route->second.epoch;
}

std::string BalancerClient::current_target(absl::string_view pool) const {
  return RouteOf(pool)->target;
}

const std::shared_ptr<const BalancerClient::Replica>&
BalancerClient::Leaders::For(absl::string_view pool) const {
  const auto leader = known.find(PoolKey(pool));
  return leader == known.end() ? fallback : leader->second;
}

std::shared_ptr<const BalancerClient::Replica> BalancerClient::RouteOf(
    absl::string_view pool) const {
  absl::MutexLock lock(&mu_);
  const auto route = routes_.find(PoolKey(pool));
  if (route != routes_.end() && route->second.replica != nullptr) {
    return route->second.replica;
  }
  return routes_.at(kDefaultPool).replica;
}

BalancerClient::Leaders BalancerClient::CurrentLeaders() const {
  Leaders leaders;
  absl::MutexLock lock(&mu_);
  leaders.fallback = routes_.at(kDefaultPool).replica;
  leaders.distinct.push_back(leaders.fallback);
  for (const auto& [pool, route] : routes_) {
    if (route.replica == nullptr || !route.named) continue;
    leaders.known.emplace(pool, route.replica);
    if (std::find(leaders.distinct.begin(), leaders.distinct.end(),
                  route.replica) == leaders.distinct.end()) {
      leaders.distinct.push_back(route.replica);
    }
  }
  return leaders;
}

std::shared_ptr<const BalancerClient::Replica> BalancerClient::ReplicaFor(
    const std::string& target) {
  for (const std::shared_ptr<const Replica>& replica : replicas_) {
    if (replica->target == target) return replica;
  }
  // A leader outside the list (e.g. an address it advertises that differs
  // from the one given). Past the limit, the oldest learned replica that no
  // route uses is dropped (calls in flight on it keep its channel).
  if (replicas_.size() - listed_ >= kMaxLearnedTargets) {
    for (size_t i = listed_; i < replicas_.size(); ++i) {
      const bool routed =
          std::any_of(routes_.begin(), routes_.end(), [&](const auto& route) {
            return route.second.replica == replicas_[i];
          });
      if (!routed) {
        replicas_.erase(replicas_.begin() + static_cast<ptrdiff_t>(i));
        break;
      }
    }
  }
  replicas_.push_back(std::make_shared<const Replica>(
      target, ReplicaChannel(target, options_.tls)));
  return replicas_.back();
}

void BalancerClient::Confirm(const std::string& pool,
                             const std::shared_ptr<const Replica>& replica) {
  absl::MutexLock lock(&mu_);
  Route& route = routes_[pool];
  // Unless another call moved the route on meanwhile.
  if (route.replica == nullptr || route.replica == replica) {
    route.replica = replica;
    route.named = true;
  }
}

size_t BalancerClient::FollowLeader(const std::string& pool,
                                    const std::string& leader) {
  absl::MutexLock lock(&mu_);
  routes_[pool] = {ReplicaFor(leader), routes_[pool].epoch, true};
  return replicas_.size();
}

size_t BalancerClient::MoveOnFrom(const std::string& pool,
                                  const Replica* failed) {
  absl::MutexLock lock(&mu_);
  Route& route = routes_[pool];
  const Replica* current = route.replica != nullptr
                               ? route.replica.get()
                               : routes_.at(kDefaultPool).replica.get();
  // Another call moved on already.
  if (current != failed) return replicas_.size();
  size_t next = 0;  // A dropped learned replica: start over at the first.
  for (size_t i = 0; i < replicas_.size(); ++i) {
    if (replicas_[i].get() == failed) next = (i + 1) % replicas_.size();
  }
  route.replica = replicas_[next];
  route.named = false;
  return replicas_.size();
}

void BalancerClient::LearnRoutes(const v1::GetRoutingResponse& routing) {
  absl::MutexLock lock(&mu_);
  for (const v1::PoolRoute& learned : routing.routes()) {
    // A server running alone names no leaders (epoch 0): nothing to learn.
    if (learned.epoch() <= 0) continue;
    Route& route = routes_[learned.pool()];
    if (learned.epoch() < route.epoch) continue;  // An older view.
    route.epoch = learned.epoch();
    if (!learned.leader_address().empty()) {
      route.replica = ReplicaFor(learned.leader_address());
      route.named = true;
    } else if (learned.pool() != kDefaultPool) {
      // No leader at the latest epoch (it left): none to prefer.
      route.replica = nullptr;
      route.named = false;
    }
  }
}

bool BalancerClient::RefreshRoutes(std::shared_ptr<const Replica> first,
                                   absl::Time deadline) {
  std::vector<std::shared_ptr<const Replica>> ask;
  {
    absl::MutexLock lock(&mu_);
    ask.push_back(first != nullptr ? std::move(first)
                                   : routes_.at(kDefaultPool).replica);
    for (const std::shared_ptr<const Replica>& replica : replicas_) {
      if (replica != ask.front()) ask.push_back(replica);
    }
  }
  for (const std::shared_ptr<const Replica>& replica : ask) {
    if (absl::Now() >= deadline) return false;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    v1::GetRoutingResponse routing;
    if (replica->stub->GetRouting(&context, v1::GetRoutingRequest(), &routing)
            .ok()) {
      LearnRoutes(routing);
      return true;
    }
  }
  return false;
}

bool BalancerClient::Admit(const std::string& pool, EpochCheck check,
                           std::optional<int64_t> epoch, bool ok,
                           int64_t* highest) {
  *highest = 0;
  if (check == EpochCheck::kNone) return true;
  absl::MutexLock lock(&mu_);
  const auto route = routes_.find(pool);
  if (route != routes_.end()) *highest = route->second.epoch;
  // A successful answer without an epoch, once epochs were seen, comes from
  // a balancer outside the election: no more trustworthy. Errors without
  // one are the transport's (or a lone balancer's).
  if (!epoch.has_value()) {
    return !ok || *highest == 0 || check == EpochCheck::kIfPresent;
  }
  if (*epoch < *highest) return false;
  if (*epoch > *highest) routes_[pool].epoch = *epoch;
  return true;
}

absl::Status BalancerClient::Run(absl::string_view pool_name, EpochCheck check,
                                 Attempt attempt, Answered* answered) {
  const std::string pool = PoolKey(pool_name);
  Pacer pacer(absl::Now() + options_.deadline);
  for (;;) {
    const std::shared_ptr<const Replica> replica = RouteOf(pool);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(pacer.deadline()));
    const grpc::Status status = attempt(*replica, context);
    const Trailers trailers = ReadTrailers(context);
    int64_t highest = 0;
    absl::Status result;
    std::string leader;
    if (!Admit(pool, check, trailers.epoch, status.ok(), &highest)) {
      result = absl::UnavailableError(absl::StrCat(
          "stale replica ", replica->target, ": its answer belongs to epoch ",
          trailers.epoch.value_or(0), " of pool \"", pool, "\", but epoch ",
          highest, " has been seen"));
    } else {
      result = ToStatus(status);
      if (!Refused(status, follows_leader_, pacer.deadline())) {
        if (status.ok() && follows_leader_ && check == EpochCheck::kPool) {
          Confirm(pool, replica);
        }
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
    size_t replicas;
    if (leader.empty() || leader == replica->target) {
      replicas = MoveOnFrom(pool, replica.get());
    } else {
      replicas = FollowLeader(pool, leader);
      // Leadership that moved seldom moves alone: the replica that just
      // answered knows the other pools' leaders too.
      RefreshRoutes(replica, pacer.deadline());
    }
    if (!pacer.Next(replicas)) return result;
  }
}

template <typename Request, typename Response>
absl::StatusOr<Response> BalancerClient::Call(
    absl::string_view pool, EpochCheck check,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                 Response*),
    const Request& request) {
  Response response;
  const absl::Status status = Run(
      pool, check,
      [&](const Replica& replica, grpc::ClientContext& context) {
        response.Clear();
        return (replica.stub.get()->*method)(&context, request, &response);
      },
      nullptr);
  if (!status.ok()) return status;
  return response;
}

template <typename Response>
absl::StatusOr<std::vector<absl::StatusOr<Response>>> BalancerClient::FanOut(
    Redo redo, Leg<Response> leg) {
  Pacer pacer(absl::Now() + options_.deadline);
  // Answers that end a leader's part, by target.
  std::vector<std::pair<std::string, absl::StatusOr<Response>>> answers;
  // Who is asked for the routes first: a replica that refused last round
  // (null: the default pool's). Its view made it refuse; the leader it
  // names may not know better (a replica that leads no pool names the
  // default pool's).
  std::shared_ptr<const Replica> ask_routes;
  for (;;) {
    // Also the first round: a pool that moved to a replica no call has
    // named yet would otherwise miss the call.
    RefreshRoutes(ask_routes, pacer.deadline());
    const Leaders leaders = CurrentLeaders();
    std::vector<std::shared_ptr<const Replica>> targets;
    for (const std::shared_ptr<const Replica>& leader : leaders.distinct) {
      if (std::none_of(answers.begin(), answers.end(), [&](const auto& a) {
            return a.first == leader->target;
          })) {
        targets.push_back(leader);
      }
    }
    std::vector<Response> responses(targets.size());
    std::vector<grpc::Status> statuses(targets.size());
    std::vector<std::string> named(targets.size());
    const auto send = [&](size_t i) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(pacer.deadline()));
      statuses[i] = leg(leaders, *targets[i], context, &responses[i]);
      named[i] = ReadTrailers(context).leader;
    };
    {
      std::vector<std::thread> others;
      for (size_t i = 1; i < targets.size(); ++i) others.emplace_back(send, i);
      if (!targets.empty()) send(0);
      for (std::thread& other : others) other.join();
    }
    absl::Status refused;
    ask_routes = nullptr;
    for (size_t i = 0; i < targets.size(); ++i) {
      const grpc::Status& status = statuses[i];
      if (Refused(status, /*follows_leader=*/true, pacer.deadline())) {
        if (refused.ok()) refused = ToStatus(status);
        // One that named a leader is up.
        if (ask_routes == nullptr || !named[i].empty()) {
          ask_routes = targets[i];
        }
        // The default pool's replica, down or knowing no leader: as its
        // calls would, the next round tries the next replica (unless the
        // routes name the leader).
        if (named[i].empty() && targets[i] == leaders.fallback) {
          MoveOnFrom(kDefaultPool, targets[i].get());
        }
      } else if (status.ok()) {
        answers.emplace_back(targets[i]->target, std::move(responses[i]));
      } else if (redo == Redo::kUnanswered &&
                 status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        answers.emplace_back(targets[i]->target, ToStatus(status));
      } else {
        return ToStatus(status);
      }
    }
    if (refused.ok()) {
      std::vector<absl::StatusOr<Response>> results;
      for (auto& answer : answers) results.push_back(std::move(answer.second));
      return results;
    }
    if (redo == Redo::kAll) answers.clear();
    size_t replicas;
    {
      absl::MutexLock lock(&mu_);
      replicas = replicas_.size();
    }
    if (!pacer.Next(replicas)) return refused;
  }
}

absl::StatusOr<v1::CurrentJamResponse> BalancerClient::CurrentJam() {
  v1::CurrentJamRequest request;
  request.set_frontend_id(options_.frontend_id);
  return Call("", EpochCheck::kPool, &Stub::CurrentJam, request);
}

absl::StatusOr<v1::CurrentJamResponse> BalancerClient::CurrentJam(
    absl::string_view user_id, absl::Duration ttl, absl::string_view pool) {
  v1::CurrentJamRequest request;
  request.set_user_id(std::string(user_id));
  request.set_reservation_ttl_ms(WholeMillis(ttl));
  request.set_frontend_id(options_.frontend_id);
  request.set_pool(std::string(pool));
  return Call(pool, EpochCheck::kPool, &Stub::CurrentJam, request);
}

absl::StatusOr<v1::RefreshResponse> BalancerClient::Refresh(
    absl::string_view jam_id, absl::Span<const std::string> user_ids,
    absl::string_view pool) {
  v1::RefreshRequest request;
  request.set_jam_id(std::string(jam_id));
  request.mutable_user_ids()->Add(user_ids.begin(), user_ids.end());
  request.set_frontend_id(options_.frontend_id);
  request.set_pool(std::string(pool));
  return Call(pool, EpochCheck::kPool, &Stub::Refresh, request);
}

absl::StatusOr<v1::RemoveUserResponse> BalancerClient::RemoveUser(
    absl::string_view jam_id, absl::string_view user_id,
    absl::Duration hold_seat, absl::string_view pool) {
  v1::RemoveUserRequest request;
  request.set_jam_id(std::string(jam_id));
  request.set_user_id(std::string(user_id));
  request.set_frontend_id(options_.frontend_id);
  request.set_hold_seat_ms(WholeMillis(hold_seat));
  request.set_pool(std::string(pool));
  return Call(pool, EpochCheck::kPool, &Stub::RemoveUser, request);
}

absl::StatusOr<v1::HasCapacityResponse> BalancerClient::HasCapacity(
    absl::string_view jam_id, absl::string_view user_id,
    absl::string_view pool) {
  v1::HasCapacityRequest request;
  request.set_jam_id(std::string(jam_id));
  request.set_user_id(std::string(user_id));
  request.set_pool(std::string(pool));
  return Call(pool, EpochCheck::kPool, &Stub::HasCapacity, request);
}

absl::StatusOr<v1::AddUserResponse> BalancerClient::AddUser(
    absl::string_view jam_id, absl::string_view user_id,
    absl::string_view pool) {
  v1::AddUserRequest request;
  request.set_jam_id(std::string(jam_id));
  request.set_user_id(std::string(user_id));
  request.set_frontend_id(options_.frontend_id);
  request.set_pool(std::string(pool));
  return Call(pool, EpochCheck::kPool, &Stub::AddUser, request);
}

absl::StatusOr<v1::GetStatsResponse> BalancerClient::GetStats(
    absl::string_view pool) {
  v1::GetStatsRequest request;
  request.set_pool(std::string(pool));
  return Call(pool, EpochCheck::kPool, &Stub::GetStats, request);
}

absl::StatusOr<v1::ListJamsResponse> BalancerClient::ListJams(
    uint32_t page_size, absl::string_view page_token, absl::string_view pool) {
  v1::ListJamsRequest request;
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  request.set_pool(std::string(pool));
  return Call(pool, EpochCheck::kPool, &Stub::ListJams, request);
}

absl::StatusOr<v1::BatchResponse> BalancerClient::Batch(
    const v1::BatchRequest& request) {
  return Call(request.pool(), EpochCheck::kPool, &Stub::Batch, request);
}

absl::StatusOr<v1::KeepAliveResponse> BalancerClient::KeepAlive() {
  v1::KeepAliveRequest request;
  request.set_frontend_id(options_.frontend_id);
  if (!follows_leader_) {
    return Call("", EpochCheck::kIfPresent, &Stub::KeepAlive, request);
  }
  absl::StatusOr<std::vector<absl::StatusOr<v1::KeepAliveResponse>>> answers =
      FanOut<v1::KeepAliveResponse>(
          Redo::kAll,
          [&](const Leaders&, const Replica& replica,
              grpc::ClientContext& context, v1::KeepAliveResponse* response) {
            response->Clear();
            return replica.stub->KeepAlive(&context, request, response);
          });
  if (!answers.ok()) return answers.status();
  v1::KeepAliveResponse merged;
  for (const absl::StatusOr<v1::KeepAliveResponse>& answer : *answers) {
    const uint64_t expires = answer->lease_expires_unix_ms();
    if (merged.lease_expires_unix_ms() == 0 ||
        expires < merged.lease_expires_unix_ms()) {
      merged.set_lease_expires_unix_ms(expires);
    }
  }
  return merged;
}

absl::StatusOr<v1::EndSessionResponse> BalancerClient::EndSession() {
  v1::EndSessionRequest request;
  request.set_frontend_id(options_.frontend_id);
  if (!follows_leader_) {
    return Call("", EpochCheck::kIfPresent, &Stub::EndSession, request);
  }
  absl::StatusOr<std::vector<absl::StatusOr<v1::EndSessionResponse>>> answers =
      FanOut<v1::EndSessionResponse>(
          Redo::kUnanswered,
          [&](const Leaders&, const Replica& replica,
              grpc::ClientContext& context, v1::EndSessionResponse* response) {
            response->Clear();
            return replica.stub->EndSession(&context, request, response);
          });
  if (!answers.ok()) return answers.status();
  // FAILED_PRECONDITION only if no leader had the session.
  std::optional<absl::Status> none;
  v1::EndSessionResponse merged;
  bool ended = false;
  for (const absl::StatusOr<v1::EndSessionResponse>& answer : *answers) {
    if (!answer.ok()) {
      if (!none.has_value()) none = answer.status();
      continue;
    }
    ended = true;
    merged.set_removed_user_count(merged.removed_user_count() +
                                  answer->removed_user_count());
  }
  if (!ended && none.has_value()) return *none;
  return merged;
}

absl::StatusOr<v1::ListSessionsResponse> BalancerClient::ListSessions(
    absl::string_view pool) {
  v1::ListSessionsRequest request;
  request.set_pool(std::string(pool));
  return Call(pool, EpochCheck::kPool, &Stub::ListSessions, request);
}

absl::StatusOr<v1::ListPoolsResponse> BalancerClient::ListPools() {
  return Call("", EpochCheck::kNone, &Stub::ListPools, v1::ListPoolsRequest());
}

absl::StatusOr<v1::GetRoutingResponse> BalancerClient::GetRouting() {
  absl::StatusOr<v1::GetRoutingResponse> routing =
      Call("", EpochCheck::kNone, &Stub::GetRouting, v1::GetRoutingRequest());
  if (routing.ok() && follows_leader_) LearnRoutes(*routing);
  return routing;
}

absl::StatusOr<v1::GetJamResponse> BalancerClient::GetJam(
    absl::string_view jam_id, absl::string_view pool) {
  v1::GetJamRequest request;
  request.set_jam_id(std::string(jam_id));
  request.set_pool(std::string(pool));
  return Call(pool, EpochCheck::kPool, &Stub::GetJam, request);
}

absl::StatusOr<v1::SyncResponse> BalancerClient::Sync(
    absl::Duration lease_ttl, absl::Span<const JamUsers> jams) {
  const uint32_t lease_ttl_ms = WholeMillis(lease_ttl);
  // One stream of `mine` (which may be empty) to `replica`.
  const auto send = [&](const Replica& replica, grpc::ClientContext& context,
                        absl::Span<const JamUsers* const> mine,
                        v1::SyncResponse* response) {
    response->Clear();
    std::unique_ptr<grpc::ClientWriter<v1::SyncRequest>> stream =
        replica.stub->Sync(&context, response);
    // The first message names the front end and the lease, also when there
    // are no jams; the others carry jams only.
    v1::SyncRequest message;
    message.set_frontend_id(options_.frontend_id);
    message.set_lease_ttl_ms(lease_ttl_ms);
    size_t next = 0;
    do {
      size_t bytes = message.ByteSizeLong();
      for (; next < mine.size(); ++next) {
        const JamUsers& jam = *mine[next];
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
        members->set_pool(jam.pool);
        bytes += jam_bytes;
      }
      // A failed write means the server already ended the call (a bad
      // message, the deadline, a standby's refusal): Finish says why.
      if (!stream->Write(message)) break;
      message.Clear();
    } while (next < mine.size());
    stream->WritesDone();
    // Finish fills `response`: it must return before the response is read.
    return stream->Finish();
  };

  if (!follows_leader_) {
    std::vector<const JamUsers*> all;
    all.reserve(jams.size());
    for (const JamUsers& jam : jams) all.push_back(&jam);
    v1::SyncResponse response;
    const absl::Status status = Run(
        "", EpochCheck::kIfPresent,
        [&](const Replica& replica, grpc::ClientContext& context) {
          return send(replica, context, all, &response);
        },
        nullptr);
    if (!status.ok()) return status;
    return response;
  }
  absl::StatusOr<std::vector<absl::StatusOr<v1::SyncResponse>>> answers =
      FanOut<v1::SyncResponse>(
          Redo::kAll,
          [&](const Leaders& leaders, const Replica& replica,
              grpc::ClientContext& context, v1::SyncResponse* response) {
            std::vector<const JamUsers*> mine;
            for (const JamUsers& jam : jams) {
              if (leaders.For(jam.pool).get() == &replica) mine.push_back(&jam);
            }
            return send(replica, context, mine, response);
          });
  if (!answers.ok()) return answers.status();
  v1::SyncResponse merged;
  for (const absl::StatusOr<v1::SyncResponse>& answer : *answers) {
    const uint64_t expires = answer->lease_expires_unix_ms();
    if (merged.lease_expires_unix_ms() == 0 ||
        expires < merged.lease_expires_unix_ms()) {
      merged.set_lease_expires_unix_ms(expires);
    }
    merged.set_jam_count(merged.jam_count() + answer->jam_count());
    merged.set_user_count(merged.user_count() + answer->user_count());
  }
  return merged;
}

absl::StatusOr<bool> BalancerClient::IsServing(absl::string_view service) {
  HealthCheckRequest request;
  request.set_service(std::string(service));
  grpc::ClientContext context;
  SetDeadline(context, options_.deadline);
  HealthCheckResponse response;
  const grpc::Status status =
      RouteOf("")->health_stub->Check(&context, request, &response);
  absl::StatusOr<HealthCheckResponse> result =
      ToStatusOr(status, std::move(response));
  if (!result.ok()) return result.status();
  // UNKNOWN (and SERVICE_UNKNOWN, which only Watch sends) is not serving.
  return result->status() == HealthCheckResponse::SERVING;
}

absl::StatusOr<BalancerClient::Leader> BalancerClient::FindLeader(
    absl::string_view pool) {
  v1::GetStatsRequest request;
  request.set_pool(std::string(pool));
  v1::GetStatsResponse response;
  Answered answered;
  const absl::Status status = Run(
      pool, EpochCheck::kPool,
      [&](const Replica& replica, grpc::ClientContext& context) {
        response.Clear();
        return replica.stub->GetStats(&context, request, &response);
      },
      &answered);
  if (!status.ok()) return status;
  return Leader{answered.target, answered.epoch};
}

}  // namespace jambalancer
