#include "client/frontend_session.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"

namespace jambalancer {
namespace {

// The shortest lease there is (SyncRequest.lease_ttl_ms: at least 500), so
// keep-alives never come more often than every third of it, whatever the
// clocks say.
constexpr absl::Duration kShortestLease = absl::Milliseconds(500);

}  // namespace

FrontEndSession::FrontEndSession(BalancerClient& client,
                                 absl::Duration lease_ttl, Truth truth)
    : client_(client), lease_ttl_(lease_ttl), truth_(std::move(truth)) {}

FrontEndSession::~FrontEndSession() { Stop(); }

absl::Status FrontEndSession::Start() {
  absl::MutexLock control(&control_mu_);
  if (absl::Status synced =
          ResyncAfter(syncs_started(), /*only_if_started=*/false);
      !synced.ok()) {
    return synced;
  }
  {
    absl::MutexLock lock(&mu_);
    started_ = true;
  }
  if (!keep_alive_thread_.joinable()) {
    keep_alive_thread_ = std::thread([this] { KeepAliveLoop(); });
  }
  return absl::OkStatus();
}

void FrontEndSession::Stop() {
  absl::MutexLock control(&control_mu_);
  {
    absl::MutexLock lock(&mu_);
    started_ = false;
    stopping_ = true;
  }
  if (keep_alive_thread_.joinable()) keep_alive_thread_.join();
  // A Sync that Call began before started_ fell ends first; later ones see
  // started_ false.
  absl::MutexLock sync(&sync_mu_);
  absl::MutexLock lock(&mu_);
  stopping_ = false;
}

absl::StatusOr<v1::EndSessionResponse> FrontEndSession::End() {
  Stop();
  return client_.EndSession();
}

absl::Status FrontEndSession::Resync() {
  return ResyncAfter(syncs_started(), /*only_if_started=*/false);
}

int64_t FrontEndSession::sync_count() const {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

int64_t FrontEndSession::keep_alive_count() const {
  absl::MutexLock lock(&mu_);
  return keep_alives_;
}

absl::Time FrontEndSession::lease_expires() const {
  absl::MutexLock lock(&mu_);
  return lease_expires_;
}

bool FrontEndSession::NeedsResync(const absl::Status& status) {
  // The only FAILED_PRECONDITION of the API: "front end F has no live
  // session ...: Sync it, then retry".
  return status.code() == absl::StatusCode::kFailedPrecondition;
}

int64_t FrontEndSession::syncs_started() const {
  absl::MutexLock lock(&mu_);
  return syncs_started_;
}

absl::Status FrontEndSession::ResyncAfter(int64_t seen, bool only_if_started) {
  absl::MutexLock sync(&sync_mu_);
  int64_t number;
  {
    absl::MutexLock lock(&mu_);
    if (only_if_started && !started_) {
      return absl::FailedPreconditionError("the front-end session is stopped");
    }
    if (last_synced_ > seen) return absl::OkStatus();
    number = ++syncs_started_;
  }
  const std::vector<BalancerClient::JamUsers> jams = truth_();
  const absl::Time sent = absl::Now();
  absl::StatusOr<v1::SyncResponse> synced = client_.Sync(lease_ttl_, jams);
  if (!synced.ok()) return synced.status();
  absl::MutexLock lock(&mu_);
  last_synced_ = number;
  ++syncs_;
  Granted(sent, synced->lease_expires_unix_ms());
  return absl::OkStatus();
}

void FrontEndSession::Granted(absl::Time sent, uint64_t expires_unix_ms) {
  lease_expires_ = absl::FromUnixMillis(static_cast<int64_t>(expires_unix_ms));
  // The lease actually granted (the server applies its default and caps long
  // leases), but never longer than asked: a clock behind the balancer's
  // would stretch it.
  absl::Duration lease = std::max(lease_expires_ - sent, kShortestLease);
  if (lease_ttl_ > absl::ZeroDuration()) lease = std::min(lease, lease_ttl_);
  keep_alive_period_ = lease / 3;
}

void FrontEndSession::KeepAliveLoop() {
  absl::Time next;
  {
    absl::MutexLock lock(&mu_);
    next = absl::Now() + keep_alive_period_;
  }
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithDeadline(absl::Condition(&stopping_), next)) return;
    }
    const int64_t asked = syncs_started();
    const absl::Time sent = absl::Now();
    absl::StatusOr<v1::KeepAliveResponse> renewed = client_.KeepAlive();
    if (renewed.ok()) {
      absl::MutexLock lock(&mu_);
      ++keep_alives_;
      Granted(sent, renewed->lease_expires_unix_ms());
    } else if (NeedsResync(renewed.status())) {
      // A failed resync is tried again at the next period.
      ResyncAfter(asked, /*only_if_started=*/true).IgnoreError();
    }
    absl::MutexLock lock(&mu_);
    next = sent + keep_alive_period_;
  }
}

}  // namespace jambalancer
