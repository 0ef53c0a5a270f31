#include "server/etcd/etcd_client.h"

#include <arpa/inet.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace jambalancer {
namespace {

// Round robin over the members; retries of calls that fail UNAVAILABLE (see
// the class comment).
constexpr char kServiceConfig[] = R"json({
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [
      {"service": "etcdserverpb.KV"},
      {"service": "etcdserverpb.Lease"},
      {"service": "v3electionpb.Election"}
    ],
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.05s",
      "maxBackoff": "0.5s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
})json";

// etcd's answers that this client turns into codes of their own: the
// election service reports these as plain errors (gRPC UNKNOWN).
constexpr absl::string_view kNoLeader = "election: no leader";
constexpr absl::string_view kNotLeader = "election: not leader";

absl::Status ToStatus(absl::string_view call, const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(
      static_cast<absl::StatusCode>(status.error_code()),
      absl::StrCat("etcd ", call, ": ", status.error_message()));
}

EtcdKeyValue ToKeyValue(const mvccpb::KeyValue& kv) {
  return EtcdKeyValue{kv.key(),          kv.value(),   kv.create_revision(),
                      kv.mod_revision(), kv.version(), kv.lease()};
}

void ToProto(const EtcdLeaderKey& leader, v3electionpb::LeaderKey* proto) {
  proto->set_name(leader.name);
  proto->set_key(leader.key);
  proto->set_rev(leader.rev);
  proto->set_lease(leader.lease);
}

enum class Family { kIpv4, kIpv6, kName };

// The address family of `host` (an IPv6 address without its brackets).
Family FamilyOf(absl::string_view host) {
  const std::string text(host);
  unsigned char address[16];
  if (inet_pton(AF_INET, text.c_str(), address) == 1) return Family::kIpv4;
  if (inet_pton(AF_INET6, text.c_str(), address) == 1) return Family::kIpv6;
  return Family::kName;
}

// Splits "host:port" or "[v6]:port"; false if malformed.
bool SplitHostPort(absl::string_view endpoint, absl::string_view* host,
                   int* port) {
  const size_t colon = endpoint.rfind(':');
  if (colon == absl::string_view::npos) return false;
  *host = endpoint.substr(0, colon);
  if (absl::ConsumePrefix(host, "[") && !absl::ConsumeSuffix(host, "]")) {
    return false;
  }
  return !host->empty() && absl::SimpleAtoi(endpoint.substr(colon + 1), port) &&
         *port > 0 && *port <= 65535;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> EtcdClient::ParseEndpoints(
    absl::string_view list) {
  std::vector<std::string> endpoints;
  for (absl::string_view entry :
       absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    if (!absl::ConsumePrefix(&entry, "http://")) {
      absl::ConsumePrefix(&entry, "https://");
    }
    absl::string_view host;
    int port = 0;
    if (!SplitHostPort(entry, &host, &port)) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd endpoint \"", entry,
                       "\": want host:port with a port in [1, 65535]"));
    }
    endpoints.emplace_back(entry);
  }
  if (endpoints.empty()) {
    return absl::InvalidArgumentError("etcd endpoints: none given");
  }
  return endpoints;
}

absl::StatusOr<std::string> EtcdClient::ChannelTarget(
    absl::Span<const std::string> endpoints) {
  // Whatever ParseEndpoints accepts (http://, spaces), checked the same way.
  absl::StatusOr<std::vector<std::string>> parsed =
      ParseEndpoints(absl::StrJoin(endpoints, ","));
  if (!parsed.ok()) return parsed.status();
  std::vector<Family> families;
  for (const std::string& endpoint : *parsed) {
    absl::string_view host;
    int port = 0;
    SplitHostPort(endpoint, &host, &port);
    families.push_back(FamilyOf(host));
  }
  if (parsed->size() == 1 && families[0] == Family::kName) {
    return absl::StrCat("dns:///", (*parsed)[0]);
  }
  const Family family = families[0];
  if (family == Family::kName ||
      !std::all_of(families.begin(), families.end(),
                   [family](Family f) { return f == family; })) {
    return absl::InvalidArgumentError(absl::StrCat(
        "etcd endpoints \"", absl::StrJoin(*parsed, ","),
        "\": several endpoints must all be IPv4 or all IPv6 addresses; or "
        "give one DNS name that resolves to every member"));
  }
  return absl::StrCat(family == Family::kIpv4 ? "ipv4:" : "ipv6:",
                      absl::StrJoin(*parsed, ","));
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Connect(
    absl::Span<const std::string> endpoints, Options options) {
  absl::StatusOr<std::string> target = ChannelTarget(endpoints);
  if (!target.ok()) return target.status();
  for (const std::string& endpoint : endpoints) {
    const absl::string_view entry = absl::StripAsciiWhitespace(endpoint);
    if (absl::StartsWith(entry, "https://") && !options.tls.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "etcd endpoint \"", entry,
          "\": https:// needs TLS options (a CA, e.g. --etcd_cacert)"));
    }
    if (absl::StartsWith(entry, "http://") && options.tls.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd endpoint \"", entry,
                       "\": http:// is plaintext, but TLS options are given"));
    }
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (options.tls.has_value()) {
    const Tls& tls = *options.tls;
    if (tls.cert_pem.empty() != tls.key_pem.empty()) {
      return absl::InvalidArgumentError(
          "etcd TLS: a client certificate needs its key, and a key its "
          "certificate");
    }
    credentials = grpc::SslCredentials(
        grpc::SslCredentialsOptions{tls.ca_pem, tls.key_pem, tls.cert_pem});
    // gRPC checks a member's certificate against the channel's authority,
    // which for a list of addresses is the whole list: check the first
    // endpoint's host instead (see Options::tls).
    if (!absl::StartsWith(*target, "dns:///")) {
      absl::StatusOr<std::vector<std::string>> parsed =
          ParseEndpoints(absl::StrJoin(endpoints, ","));
      absl::string_view host;
      int port = 0;
      SplitHostPort(parsed->front(), &host, &port);
      args.SetSslTargetNameOverride(std::string(host));
    }
  }
  args.SetServiceConfigJSON(kServiceConfig);
  // A member that comes back is reconnected to within a second (gRPC's
  // default backoff grows to two minutes).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  // Keep pinging a connection whose only call is a quiet stream (Observe,
  // Campaign); gRPC stops after two pings without data otherwise.
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  return std::unique_ptr<EtcdClient>(new EtcdClient(
      grpc::CreateCustomChannel(*target, credentials, args), options));
}

EtcdClient::EtcdClient(std::shared_ptr<grpc::Channel> channel, Options options)
    : options_(options),
      channel_(std::move(channel)),
      kv_(etcdserverpb::KV::NewStub(channel_)),
      lease_(etcdserverpb::Lease::NewStub(channel_)),
      election_(v3electionpb::Election::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> EtcdClient::NewUnaryContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(
      absl::ToChronoTime(absl::Now() + options_.call_timeout));
  return context;
}

absl::StatusOr<EtcdLease> EtcdClient::GrantLease(absl::Duration ttl) {
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(std::max<int64_t>(
      1, absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1)))));
  etcdserverpb::LeaseGrantResponse response;
  absl::Status status =
      ToStatus("LeaseGrant",
               lease_->LeaseGrant(NewUnaryContext().get(), request, &response));
  if (!status.ok()) return status;
  if (!response.error().empty()) {
    return absl::InternalError(
        absl::StrCat("etcd LeaseGrant: ", response.error()));
  }
  return EtcdLease{response.id(), absl::Seconds(response.ttl())};
}

absl::Status EtcdClient::RevokeLease(int64_t lease_id) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease_id);
  etcdserverpb::LeaseRevokeResponse response;
  return ToStatus("LeaseRevoke", lease_->LeaseRevoke(NewUnaryContext().get(),
                                                     request, &response));
}

absl::StatusOr<absl::Duration> EtcdClient::LeaseTimeToLive(int64_t lease_id) {
  etcdserverpb::LeaseTimeToLiveRequest request;
  request.set_id(lease_id);
  etcdserverpb::LeaseTimeToLiveResponse response;
  absl::Status status = ToStatus(
      "LeaseTimeToLive",
      lease_->LeaseTimeToLive(NewUnaryContext().get(), request, &response));
  if (!status.ok()) return status;
  if (response.ttl() < 0) {
    return absl::NotFoundError(absl::StrCat("etcd LeaseTimeToLive: lease ",
                                            lease_id, " does not exist"));
  }
  return absl::Seconds(response.ttl());
}

std::unique_ptr<LeaseKeepAlive> EtcdClient::StartKeepAlive(
    int64_t lease_id, absl::Duration interval, LeaseKeepAlive::OnAck on_ack,
    LeaseKeepAlive::OnError on_error) {
  return std::unique_ptr<LeaseKeepAlive>(
      new LeaseKeepAlive(lease_.get(), lease_id, interval, std::move(on_ack),
                         std::move(on_error)));
}

absl::StatusOr<EtcdCampaignResult> EtcdClient::Campaign(absl::string_view name,
                                                        int64_t lease,
                                                        absl::string_view value,
                                                        CallCanceller* cancel) {
  v3electionpb::CampaignRequest request;
  request.set_name(std::string(name));
  request.set_lease(lease);
  request.set_value(std::string(value));
  v3electionpb::CampaignResponse response;
  grpc::ClientContext context;
  if (cancel != nullptr && !cancel->Bind(&context)) {
    return absl::CancelledError("etcd Campaign: cancelled");
  }
  const grpc::Status status = election_->Campaign(&context, request, &response);
  if (cancel != nullptr) cancel->Unbind();
  if (!status.ok() && cancel != nullptr && cancel->cancelled()) {
    return absl::CancelledError("etcd Campaign: cancelled");
  }
  if (!status.ok()) return ToStatus("Campaign", status);
  const v3electionpb::LeaderKey& leader = response.leader();
  return EtcdCampaignResult{
      EtcdLeaderKey{leader.name(), leader.key(), leader.rev(), leader.lease()},
      response.header().revision()};
}

absl::Status EtcdClient::Proclaim(const EtcdLeaderKey& leader,
                                  absl::string_view value) {
  v3electionpb::ProclaimRequest request;
  ToProto(leader, request.mutable_leader());
  request.set_value(std::string(value));
  v3electionpb::ProclaimResponse response;
  const grpc::Status status =
      election_->Proclaim(NewUnaryContext().get(), request, &response);
  if (absl::StrContains(status.error_message(), kNotLeader)) {
    return absl::FailedPreconditionError(
        absl::StrCat("etcd Proclaim: ", leader.key, " no longer leads"));
  }
  return ToStatus("Proclaim", status);
}

absl::Status EtcdClient::Resign(const EtcdLeaderKey& leader) {
  v3electionpb::ResignRequest request;
  ToProto(leader, request.mutable_leader());
  v3electionpb::ResignResponse response;
  return ToStatus(
      "Resign", election_->Resign(NewUnaryContext().get(), request, &response));
}

absl::StatusOr<EtcdKeyValue> EtcdClient::Leader(absl::string_view name) {
  v3electionpb::LeaderRequest request;
  request.set_name(std::string(name));
  v3electionpb::LeaderResponse response;
  const grpc::Status status =
      election_->Leader(NewUnaryContext().get(), request, &response);
  if (absl::StrContains(status.error_message(), kNoLeader)) {
    return absl::NotFoundError(
        absl::StrCat("etcd Leader: election \"", name, "\" has no leader"));
  }
  if (!status.ok()) return ToStatus("Leader", status);
  return ToKeyValue(response.kv());
}

absl::Status EtcdClient::Observe(
    absl::string_view name,
    const std::function<void(const EtcdKeyValue&)>& on_leader,
    CallCanceller* cancel) {
  v3electionpb::LeaderRequest request;
  request.set_name(std::string(name));
  grpc::ClientContext context;
  if (!cancel->Bind(&context)) {
    return absl::CancelledError("etcd Observe: cancelled");
  }
  std::unique_ptr<grpc::ClientReader<v3electionpb::LeaderResponse>> reader =
      election_->Observe(&context, request);
  v3electionpb::LeaderResponse response;
  while (reader->Read(&response)) on_leader(ToKeyValue(response.kv()));
  const grpc::Status status = reader->Finish();
  cancel->Unbind();
  if (cancel->cancelled()) {
    return absl::CancelledError("etcd Observe: cancelled");
  }
  if (status.ok()) {
    // etcd ends a healthy stream only when its own watch broke.
    return absl::UnavailableError("etcd Observe: stream ended");
  }
  return ToStatus("Observe", status);
}

absl::StatusOr<int64_t> EtcdClient::Put(absl::string_view key,
                                        absl::string_view value,
                                        int64_t lease) {
  etcdserverpb::PutRequest request;
  request.set_key(std::string(key));
  request.set_value(std::string(value));
  request.set_lease(lease);
  etcdserverpb::PutResponse response;
  absl::Status status =
      ToStatus("Put", kv_->Put(NewUnaryContext().get(), request, &response));
  if (!status.ok()) return status;
  return response.header().revision();
}

absl::StatusOr<std::vector<EtcdKeyValue>> EtcdClient::Range(
    absl::string_view key, absl::string_view range_end) {
  etcdserverpb::RangeRequest request;
  request.set_key(std::string(key));
  request.set_range_end(std::string(range_end));
  etcdserverpb::RangeResponse response;
  absl::Status status = ToStatus(
      "Range", kv_->Range(NewUnaryContext().get(), request, &response));
  if (!status.ok()) return status;
  std::vector<EtcdKeyValue> kvs;
  kvs.reserve(response.kvs_size());
  for (const mvccpb::KeyValue& kv : response.kvs()) {
    kvs.push_back(ToKeyValue(kv));
  }
  return kvs;
}

std::string EtcdClient::PrefixEnd(absl::string_view prefix) {
  // The smallest key after every key starting with `prefix`: the prefix
  // with its last byte below 0xff incremented (and what followed it
  // dropped); "\0" (every key) if all its bytes are 0xff.
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

absl::StatusOr<int64_t> EtcdClient::PutIfLeader(const EtcdLeaderKey& leader,
                                                absl::string_view key,
                                                absl::string_view value) {
  etcdserverpb::TxnRequest request;
  etcdserverpb::Compare* compare = request.add_compare();
  compare->set_key(leader.key);
  compare->set_target(etcdserverpb::Compare::CREATE);
  compare->set_result(etcdserverpb::Compare::EQUAL);
  compare->set_create_revision(leader.rev);
  etcdserverpb::PutRequest* put = request.add_success()->mutable_request_put();
  put->set_key(std::string(key));
  put->set_value(std::string(value));
  etcdserverpb::TxnResponse response;
  absl::Status status =
      ToStatus("Txn", kv_->Txn(NewUnaryContext().get(), request, &response));
  if (!status.ok()) return status;
  if (!response.succeeded()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "etcd Txn: not written: ", leader.key, " no longer leads (create ",
        "revision ", leader.rev, " is gone)"));
  }
  return response.header().revision();
}

}  // namespace jambalancer
