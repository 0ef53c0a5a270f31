#include "server/ha/leadership.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/util/log.h"
#include "server/util/pem_file.h"

namespace jambalancer {
namespace {

constexpr absl::Duration kFirstRetry = absl::Milliseconds(100);
constexpr absl::Duration kMaxRetry = absl::Seconds(2);
constexpr int64_t kNotServing = std::numeric_limits<int64_t>::min();

absl::Duration NextRetry(absl::Duration retry) {
  return std::min(retry * 2, kMaxRetry);
}

// Whether the etcd client speaks TLS: a file given or an https:// endpoint.
bool WantsEtcdTls(const LeadershipOptions& options) {
  return !options.etcd_cacert.empty() || !options.etcd_cert.empty() ||
         !options.etcd_key.empty() ||
         std::any_of(options.etcd_endpoints.begin(),
                     options.etcd_endpoints.end(), [](const std::string& e) {
                       return absl::StartsWith(absl::StripAsciiWhitespace(e),
                                               "https://");
                     });
}

// The TLS options of the etcd client, from the files `options` names.
// None: plaintext.
absl::StatusOr<std::optional<EtcdClient::Tls>> ReadEtcdTls(
    const LeadershipOptions& options) {
  if (!WantsEtcdTls(options)) return std::nullopt;
  if (options.etcd_cert.empty() != options.etcd_key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.etcd_cert.empty() ? "etcd_key" : "etcd_cert", " is set but ",
        options.etcd_cert.empty() ? "etcd_cert" : "etcd_key",
        " is not: a client certificate for etcd needs both"));
  }
  EtcdClient::Tls tls;
  struct File {
    const char* name;
    const std::string& path;
    std::string& pem;
  };
  for (const File& file : {File{"etcd_cacert", options.etcd_cacert, tls.ca_pem},
                           File{"etcd_cert", options.etcd_cert, tls.cert_pem},
                           File{"etcd_key", options.etcd_key, tls.key_pem}}) {
    if (file.path.empty()) continue;
    absl::StatusOr<std::string> pem = ReadPemFile(file.name, file.path);
    if (!pem.ok()) return pem.status();
    file.pem = *std::move(pem);
  }
  return tls;
}

}  // namespace

// One lease and the workers on it. Fields marked (mu_) are guarded by the
// Leadership's mu_; the rest are fixed when the term starts.
struct Leadership::Term {
  EtcdLease lease;
  // The TTL the fence counts with: the smaller of the option and etcd's.
  absl::Duration ttl;
  CallCanceller campaign_cancel;
  CallCanceller observe_cancel;

  // (mu_) When the lease ends at the latest, as far as this process knows:
  // the last acknowledged keepalive's send time (first the grant's) + ttl.
  absl::Time lease_end;
  // (mu_) etcd answered a keepalive with TTL 0.
  bool lease_gone = false;
  // (mu_) The last keepalive failed (so only the first failure is logged).
  bool keepalive_failing = false;
  // (mu_) A won campaign, checked with Leader(), for the loop to take up.
  std::optional<EtcdCampaignResult> won;
  // (mu_) The leader Observe saw last, for the loop to take up.
  std::optional<EtcdKeyValue> observed;
};

absl::StatusOr<std::unique_ptr<EtcdClient>> ConnectEtcd(
    const LeadershipOptions& options) {
  EtcdClient::Options client_options;
  client_options.call_timeout = options.ttl;
  absl::StatusOr<std::optional<EtcdClient::Tls>> tls = ReadEtcdTls(options);
  if (!tls.ok()) return tls.status();
  client_options.tls = *std::move(tls);
  return EtcdClient::Connect(options.etcd_endpoints, client_options);
}

absl::StatusOr<std::unique_ptr<Leadership>> Leadership::Start(
    LeadershipOptions options, OnChange on_change) {
  if (options.ttl < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("leadership ttl ", absl::FormatDuration(options.ttl),
                     ": at least 1s (etcd leases are in whole seconds)"));
  }
  if (options.fence_margin < absl::ZeroDuration() ||
      options.fence_margin >= options.ttl) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leadership fence_margin ", absl::FormatDuration(options.fence_margin),
        ": must be in [0, ttl ", absl::FormatDuration(options.ttl), ")"));
  }
  if (options.election_name.empty()) {
    return absl::InvalidArgumentError("leadership election_name: empty");
  }
  if (options.advertise_address.empty()) {
    return absl::InvalidArgumentError("leadership advertise_address: empty");
  }
  absl::StatusOr<std::unique_ptr<EtcdClient>> client = ConnectEtcd(options);
  if (!client.ok()) return client.status();
  return std::unique_ptr<Leadership>(new Leadership(
      std::move(options), std::move(on_change), *std::move(client)));
}

Leadership::Leadership(LeadershipOptions options, OnChange on_change,
                       std::unique_ptr<EtcdClient> client)
    : options_(std::move(options)),
      on_change_(std::move(on_change)),
      client_(std::move(client)),
      serve_until_ns_(kNotServing),
      thread_([this] { Run(); }) {}

Leadership::~Leadership() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    StopServing();
  }
  thread_.join();
}

bool Leadership::MayServe(absl::Time now) const {
  return absl::ToUnixNanos(now) <
         serve_until_ns_.load(std::memory_order_acquire);
}

LeaderView Leadership::View() const {
  LeaderView view;
  {
    absl::MutexLock lock(&mu_);
    view = view_;
  }
  view.leading = view.leading && MayServe(absl::Now());
  return view;
}

LeadershipStats Leadership::Stats() const {
  LeadershipStats stats;
  {
    absl::MutexLock lock(&mu_);
    stats.elections_won = elections_won_;
    stats.time_leading = time_led_;
    if (leading_since_ != absl::InfiniteFuture()) {
      stats.time_leading += absl::Now() - leading_since_;
    }
  }
  stats.keepalive_round_trip = keepalive_round_trip_.Read();
  stats.keepalive_failures =
      keepalive_failures_.load(std::memory_order_relaxed);
  return stats;
}

void Leadership::Resign(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  resign_ = true;
  StopServing();
  mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
}

void Leadership::Yield() {
  absl::MutexLock lock(&mu_);
  yield_ = true;
  StopServing();
}

void Leadership::StopServing() {
  view_.leading = false;
  serve_until_ns_.store(kNotServing, std::memory_order_release);
}

absl::Time Leadership::Fence(absl::Time lease_end) const {
  return lease_end - options_.fence_margin;
}

bool Leadership::HasWork() const {
  return stop_ || resign_ || yield_ ||
         (term_ != nullptr && (term_->lease_gone || term_->won.has_value() ||
                               term_->observed.has_value()));
}

bool Leadership::WaitInterrupted(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto interrupted = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || resign_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&interrupted), timeout);
  return interrupted();
}

void Leadership::Notify(const LeaderView& view) {
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
  }
  on_change_(view);
}

void Leadership::Run() {
  absl::Duration retry = kFirstRetry;
  while (!WaitInterrupted(absl::ZeroDuration())) {
    const absl::Time granted_at = absl::Now();
    absl::StatusOr<EtcdLease> lease = client_->GrantLease(options_.ttl);
    if (lease.ok()) {
      if (RunTerm(*lease, granted_at)) {
        retry = kFirstRetry;  // Yielded: campaign again at once.
        continue;
      }
      // A term that ended at once (a lease dead on arrival) is retried after
      // a backoff like a failed grant, so the loop never spins.
      if (absl::Now() - granted_at >= options_.ttl) {
        retry = kFirstRetry;
        continue;
      }
    } else {
      // A TLS handshake etcd refuses shows only as UNAVAILABLE ("Endpoint
      // read failed" for a missing client certificate): say where to look.
      Log(LogLevel::kError, "leadership: cannot grant a lease",
          {{"error", lease.status().ToString()},
           {"etcd_tls", WantsEtcdTls(options_)
                            ? "on (check --etcd_cacert against the members' "
                              "certificates, and --etcd_cert against etcd's "
                              "--trusted-ca-file)"
                            : "off"}});
    }
    if (WaitInterrupted(retry)) break;
    retry = NextRetry(retry);
  }
  absl::MutexLock lock(&mu_);
  done_ = true;
}

bool Leadership::RunTerm(const EtcdLease& lease, absl::Time granted_at) {
  Term term;
  term.lease = lease;
  term.ttl = std::min(options_.ttl, lease.ttl);
  {
    absl::MutexLock lock(&mu_);
    term.lease_end = granted_at + term.ttl;
    term_ = &term;
  }
  std::unique_ptr<LeaseKeepAlive> keepalive = client_->StartKeepAlive(
      lease.id, term.ttl / 3,
      [this, &term](const LeaseKeepAlive::Ack& ack) { OnAck(&term, ack); },
      [this, &term](const absl::Status& error) {
        keepalive_failures_.fetch_add(1, std::memory_order_relaxed);
        {
          absl::MutexLock lock(&mu_);
          if (std::exchange(term.keepalive_failing, true)) return;
        }
        Log(LogLevel::kError, "leadership: keepalive failing",
            {{"lease", absl::StrCat(term.lease.id)},
             {"error", error.ToString()}});
      });
  std::thread campaign([this, &term] { Campaign(&term); });
  std::thread observe([this, &term] { Observe(&term); });

  // The leadership this term holds, if it leads.
  std::optional<EtcdLeaderKey> leader;
  // Why the term ends (empty while it goes on).
  std::string end;
  while (end.empty()) {
    bool stop, resign, yield, lease_gone;
    absl::Time lease_end;
    std::optional<EtcdCampaignResult> won;
    std::optional<EtcdKeyValue> observed;
    {
      absl::MutexLock lock(&mu_);
      // Wake at the fence while leading, else when the lease would end.
      const absl::Time wake = leader.has_value()
                                  ? absl::FromUnixNanos(serve_until_ns_.load(
                                        std::memory_order_relaxed))
                                  : term.lease_end;
      mu_.AwaitWithDeadline(absl::Condition(this, &Leadership::HasWork), wake);
      stop = stop_;
      resign = resign_;
      yield = std::exchange(yield_, false);
      lease_gone = term.lease_gone;
      lease_end = term.lease_end;
      won = std::exchange(term.won, std::nullopt);
      observed = std::exchange(term.observed, std::nullopt);
    }
    const absl::Time now = absl::Now();
    if (stop) {
      end = "stopping";
    } else if (resign) {
      end = "resigned";
    } else if (yield) {
      end = "yielded";
    } else if (lease_gone) {
      end = "lease gone (keepalive answered TTL 0)";
    } else if (now >= lease_end) {
      end = "lease lost (no keepalive answered within its TTL)";
    } else if (leader.has_value() && !MayServe(now)) {
      end = "fenced (no keepalive answered in time)";
    } else if (observed.has_value() && leader.has_value() &&
               observed->create_revision > leader->rev) {
      // etcd's Observe moves on only once the older key is gone.
      end = "a newer leader appeared (our key is gone)";
    }
    if (!end.empty()) break;

    if (observed.has_value() && !leader.has_value() &&
        observed->lease != term.lease.id) {
      const LeaderView seen{false, observed->create_revision, observed->value};
      bool changed;
      {
        absl::MutexLock lock(&mu_);
        changed = view_ != seen;
        view_ = seen;
      }
      if (changed) {
        Log(LogLevel::kInfo, "leadership: standing by",
            {{"election", options_.election_name},
             {"leader", seen.leader_address},
             {"epoch", absl::StrCat(seen.epoch)}});
        Notify(seen);
      }
    }
    if (won.has_value()) {
      const absl::Time fence = Fence(lease_end);
      const LeaderView leading{true, won->leader.rev,
                               options_.advertise_address};
      bool leads = false;
      {
        absl::MutexLock lock(&mu_);
        // Not once asked to stop or resign: the next round ends the term.
        if (!stop_ && !resign_ && now < fence) {
          leads = true;
          view_ = leading;
          ++elections_won_;
          leading_since_ = now;
          serve_until_ns_.store(absl::ToUnixNanos(fence),
                                std::memory_order_release);
        }
      }
      if (!leads) {
        if (now >= fence) end = "won too late (the fence had passed)";
        continue;
      }
      leader = won->leader;
      Log(LogLevel::kInfo, "leadership: leading",
          {{"election", options_.election_name},
           {"epoch", absl::StrCat(leader->rev)},
           {"address", options_.advertise_address},
           {"lease", absl::StrCat(term.lease.id)}});
      Notify(leading);
    }
  }

  // Stop serving before anything else, then end the workers.
  {
    absl::MutexLock lock(&mu_);
    StopServing();
    // Who leads now is unknown until the next term observes it.
    if (leader.has_value()) view_ = LeaderView{};
    if (leading_since_ != absl::InfiniteFuture()) {
      time_led_ += absl::Now() - leading_since_;
      leading_since_ = absl::InfiniteFuture();
    }
  }
  if (leader.has_value()) {
    Log(LogLevel::kInfo, "leadership: stepped down",
        {{"election", options_.election_name},
         {"reason", end},
         {"epoch", absl::StrCat(leader->rev)}});
    Notify(LeaderView{});
  } else if (end != "stopping" && end != "resigned" && end != "yielded") {
    Log(LogLevel::kInfo, "leadership: starting over",
        {{"election", options_.election_name}, {"reason", end}});
  }
  term.campaign_cancel.Cancel();
  term.observe_cancel.Cancel();
  keepalive->Stop();
  campaign.join();
  observe.join();
  bool lease_gone;
  {
    absl::MutexLock lock(&mu_);
    term_ = nullptr;
    lease_gone = term.lease_gone;
  }
  // Resigning hands over at once even if the revoke below fails; the revoke
  // deletes every key of the lease (a campaign won too late included).
  if (leader.has_value() && (end == "resigned" || end == "yielded")) {
    absl::Status resigned = client_->Resign(*leader);
    if (!resigned.ok()) {
      Log(LogLevel::kError, "leadership: resign failed",
          {{"error", resigned.ToString()}});
    }
  }
  if (!lease_gone) {
    absl::Status revoked = client_->RevokeLease(term.lease.id);
    if (!revoked.ok() && !absl::IsNotFound(revoked)) {
      Log(LogLevel::kError, "leadership: cannot revoke the lease",
          {{"lease", absl::StrCat(term.lease.id)},
           {"error", revoked.ToString()}});
    }
  }
  return end == "yielded";
}

void Leadership::OnAck(Term* term, const LeaseKeepAlive::Ack& ack) {
  keepalive_round_trip_.Observe(absl::Now() - ack.sent);
  absl::MutexLock lock(&mu_);
  term->keepalive_failing = false;
  if (ack.ttl <= absl::ZeroDuration()) {
    term->lease_gone = true;
    return;
  }
  term->lease_end = ack.sent + std::min(term->ttl, ack.ttl);
  if (view_.leading) {
    serve_until_ns_.store(absl::ToUnixNanos(Fence(term->lease_end)),
                          std::memory_order_release);
  }
}

void Leadership::Campaign(Term* term) {
  absl::Duration retry = kFirstRetry;
  while (true) {
    absl::Status status;
    absl::StatusOr<EtcdCampaignResult> won =
        client_->Campaign(options_.election_name, term->lease.id,
                          options_.advertise_address, &term->campaign_cancel);
    if (won.ok()) {
      // etcd answers a campaign whose lease ended meanwhile too: lead only if
      // the key it won with still leads.
      absl::StatusOr<EtcdKeyValue> current =
          client_->Leader(options_.election_name);
      if (current.ok() && current->key == won->leader.key &&
          current->create_revision == won->leader.rev) {
        // Proclaiming marks the key with the revision the leadership began
        // at (its mod revision), which the rebalancer reads as its age.
        if (absl::Status proclaimed =
                client_->Proclaim(won->leader, options_.advertise_address);
            !proclaimed.ok()) {
          Log(LogLevel::kError, "leadership: cannot proclaim",
              {{"election", options_.election_name},
               {"error", proclaimed.ToString()}});
        }
        absl::MutexLock lock(&mu_);
        term->won = *std::move(won);
        return;
      }
      status = current.ok() ? absl::FailedPreconditionError(absl::StrCat(
                                  "campaign answered, but ", won->leader.key,
                                  " does not lead (its lease ended?)"))
                            : current.status();
    } else {
      status = won.status();
    }
    if (term->campaign_cancel.cancelled()) return;
    Log(LogLevel::kError, "leadership: campaign failed",
        {{"lease", absl::StrCat(term->lease.id)},
         {"error", status.ToString()}});
    if (term->campaign_cancel.WaitCancelled(retry)) return;
    retry = NextRetry(retry);
  }
}

void Leadership::Observe(Term* term) {
  absl::Duration retry = kFirstRetry;
  while (true) {
    const absl::Status status = client_->Observe(
        options_.election_name,
        [this, term](const EtcdKeyValue& leader) {
          absl::MutexLock lock(&mu_);
          term->observed = leader;
        },
        &term->observe_cancel);
    if (term->observe_cancel.cancelled()) return;
    Log(LogLevel::kError, "leadership: observing the leader failed",
        {{"error", status.ToString()}});
    if (term->observe_cancel.WaitCancelled(retry)) return;
    retry = NextRetry(retry);
  }
}

}  // namespace jambalancer
