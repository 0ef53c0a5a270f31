#include "server/ha/leadership.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/status_expectations.h"

namespace jambalancer {
namespace {

using test::WaitUntil;

// A Leadership and every view its on_change reported.
class Process {
 public:
  Process(const test::EtcdCluster& cluster, std::string address,
          absl::Duration ttl = absl::Seconds(2))
      : Process(cluster.endpoints(), std::move(address), ttl) {}
  // One that reaches etcd only through `endpoints`.
  Process(std::vector<std::string> endpoints, std::string address,
          absl::Duration ttl)
      : address_(std::move(address)) {
    LeadershipOptions options;
    options.etcd_endpoints = std::move(endpoints);
    options.election_name = "leadership-test";
    options.ttl = ttl;
    options.advertise_address = address_;
    absl::StatusOr<std::unique_ptr<Leadership>> started =
        Leadership::Start(options, [this](const LeaderView& view) {
          absl::MutexLock lock(&mu_);
          changes_.push_back(view);
        });
    EXPECT_TRUE(started.ok()) << started.status();
    if (started.ok()) leadership_ = *std::move(started);
  }

  Leadership& leadership() { return *leadership_; }
  void Destroy() { leadership_.reset(); }
  const std::string& address() const { return address_; }
  bool MayServe() const { return leadership_->MayServe(absl::Now()); }

  std::vector<LeaderView> changes() {
    absl::MutexLock lock(&mu_);
    return changes_;
  }
  // Whether on_change reports a view matching `match` (since change number
  // `from`) within `timeout`. on_change runs after MayServe and View have
  // changed, so a test waits for it.
  bool Reported(const std::function<bool(const LeaderView&)>& match,
                absl::Duration timeout = absl::Seconds(2), size_t from = 0) {
    return WaitUntil(
        [&] {
          std::vector<LeaderView> all = changes();
          for (size_t i = from; i < all.size(); ++i) {
            if (match(all[i])) return true;
          }
          return false;
        },
        timeout);
  }

 private:
  const std::string address_;
  absl::Mutex mu_;
  std::vector<LeaderView> changes_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Leadership> leadership_;
};

std::unique_ptr<test::EtcdCluster> StartCluster() {
  absl::StatusOr<std::unique_ptr<test::EtcdCluster>> cluster =
      test::EtcdCluster::Start();
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? *std::move(cluster) : nullptr;
}

// Waits until one of `a` and `b` serves; returns it, or nullptr.
Process* WaitForLeader(Process& a, Process& b, absl::Duration timeout) {
  Process* leader = nullptr;
  WaitUntil(
      [&] {
        leader = a.MayServe() ? &a : b.MayServe() ? &b : nullptr;
        return leader != nullptr;
      },
      timeout);
  return leader;
}

// Expects that, over `period`, never both serve.
void ExpectNeverBothServe(Process& a, Process& b, absl::Duration period) {
  const absl::Time end = absl::Now() + period;
  while (absl::Now() < end) {
    ASSERT_FALSE(a.MayServe() && b.MayServe());
    absl::SleepFor(absl::Milliseconds(2));
  }
}

TEST(LeadershipOptionsTest, RejectsBadOptions) {
  LeadershipOptions options;
  options.etcd_endpoints = {"127.0.0.1:2379"};
  options.advertise_address = "10.0.0.1:50051";
  auto ignore = [](const LeaderView&) {};

  LeadershipOptions short_ttl = options;
  short_ttl.ttl = absl::Milliseconds(500);
  test::ExpectInvalidArgument(Leadership::Start(short_ttl, ignore).status(),
                              "ttl", "at least 1s");
  LeadershipOptions margin = options;
  margin.fence_margin = options.ttl;
  test::ExpectInvalidArgument(Leadership::Start(margin, ignore).status(),
                              "fence_margin", "[0, ttl");
  LeadershipOptions no_address = options;
  no_address.advertise_address = "";
  test::ExpectInvalidArgument(Leadership::Start(no_address, ignore).status(),
                              "advertise_address");
  LeadershipOptions no_endpoints = options;
  no_endpoints.etcd_endpoints.clear();
  test::ExpectInvalidArgument(Leadership::Start(no_endpoints, ignore).status(),
                              "etcd endpoints");
}

TEST(LeadershipTest, OneLeadsAndResigningHandsOver) {
  std::unique_ptr<test::EtcdCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  Process a(*cluster, "10.0.0.1:50051");
  Process b(*cluster, "10.0.0.2:50051");

  Process* leader = WaitForLeader(a, b, absl::Seconds(10));
  ASSERT_NE(leader, nullptr);
  Process* follower = leader == &a ? &b : &a;
  const LeaderView led = leader->leadership().View();
  EXPECT_TRUE(led.leading);
  EXPECT_GT(led.epoch, 0);
  EXPECT_EQ(led.leader_address, leader->address());
  EXPECT_TRUE(leader->Reported([&](const LeaderView& view) {
    return view.leading && view.epoch == led.epoch &&
           view.leader_address == leader->address();
  }));

  // The follower learns who leads, and does not serve.
  ASSERT_TRUE(WaitUntil(
      [&] {
        const LeaderView seen = follower->leadership().View();
        return seen.epoch == led.epoch &&
               seen.leader_address == leader->address();
      },
      absl::Seconds(5)));
  EXPECT_FALSE(follower->leadership().View().leading);
  EXPECT_TRUE(follower->Reported([&](const LeaderView& view) {
    return !view.leading && view.leader_address == leader->address();
  }));
  ExpectNeverBothServe(a, b, absl::Seconds(1));

  // Resigning: the leader stops serving before Resign returns; the follower
  // leads at once, at a higher epoch.
  const absl::Time resigned = absl::Now();
  leader->leadership().Resign(absl::Seconds(2));
  EXPECT_FALSE(leader->MayServe());
  ASSERT_TRUE(
      WaitUntil([&] { return follower->MayServe(); }, absl::Seconds(2)));
  const absl::Duration handover = absl::Now() - resigned;
  std::printf("handover after Resign: %s\n",
              absl::FormatDuration(handover).c_str());
  const LeaderView next = follower->leadership().View();
  EXPECT_GT(next.epoch, led.epoch);
  EXPECT_EQ(next.leader_address, follower->address());
  EXPECT_TRUE(leader->Reported([](const LeaderView& view) {
    return !view.leading && view.epoch == 0 && view.leader_address.empty();
  }));
  // A resigned process campaigns no more.
  ExpectNeverBothServe(a, b, absl::Seconds(1));
  EXPECT_TRUE(follower->MayServe());
}

TEST(LeadershipTest, DestroyingTheLeaderFailsOver) {
  std::unique_ptr<test::EtcdCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  Process a(*cluster, "10.0.0.1:50051");
  Process b(*cluster, "10.0.0.2:50051");
  Process* leader = WaitForLeader(a, b, absl::Seconds(10));
  ASSERT_NE(leader, nullptr);
  Process* follower = leader == &a ? &b : &a;
  const int64_t epoch = leader->leadership().View().epoch;
  // Let the follower's campaign reach etcd: it then waits behind the leader.
  ASSERT_TRUE(
      WaitUntil([&] { return follower->leadership().View().epoch == epoch; },
                absl::Seconds(5)));

  const absl::Time destroyed = absl::Now();
  leader->Destroy();
  const absl::Duration destruction = absl::Now() - destroyed;
  ASSERT_TRUE(
      WaitUntil([&] { return follower->MayServe(); }, absl::Seconds(2)));
  std::printf("failover after destroying the leader: %s (destructor %s)\n",
              absl::FormatDuration(absl::Now() - destroyed).c_str(),
              absl::FormatDuration(destruction).c_str());
  EXPECT_GT(follower->leadership().View().epoch, epoch);
  EXPECT_TRUE(follower->Reported([&](const LeaderView& view) {
    return view.leading && view.epoch > epoch &&
           view.leader_address == follower->address();
  }));
}

// The leases of the campaigners' keys in the test's election, oldest key
// (the leader's) first.
std::vector<int64_t> CampaignLeases(EtcdClient& client) {
  const std::string prefix = "leadership-test/";
  absl::StatusOr<std::vector<EtcdKeyValue>> kvs =
      client.Range(prefix, EtcdClient::PrefixEnd(prefix));
  if (!kvs.ok()) return {};
  std::sort(kvs->begin(), kvs->end(),
            [](const EtcdKeyValue& a, const EtcdKeyValue& b) {
              return a.create_revision < b.create_revision;
            });
  std::vector<int64_t> leases;
  for (const EtcdKeyValue& kv : *kvs) leases.push_back(kv.lease);
  return leases;
}

TEST(LeadershipTest, ALostLeaseStartsOver) {
  std::unique_ptr<test::EtcdCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  absl::StatusOr<std::unique_ptr<EtcdClient>> etcd =
      EtcdClient::Connect(cluster->endpoints());
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  Process a(*cluster, "10.0.0.1:50051");
  Process b(*cluster, "10.0.0.2:50051");
  Process* leader = WaitForLeader(a, b, absl::Seconds(10));
  ASSERT_NE(leader, nullptr);
  Process* follower = leader == &a ? &b : &a;
  const int64_t epoch = leader->leadership().View().epoch;
  std::vector<int64_t> leases;
  ASSERT_TRUE(WaitUntil(
      [&] {
        leases = CampaignLeases(**etcd);
        return leases.size() == 2;
      },
      absl::Seconds(5)));
  const int64_t leader_lease = leases[0];
  const int64_t follower_lease = leases[1];

  // The follower's lease ends (revoked behind its back): its campaign on it
  // is cancelled and it campaigns again on a new lease.
  ASSERT_TRUE((*etcd)->RevokeLease(follower_lease).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        leases = CampaignLeases(**etcd);
        return leases.size() == 2 && leases[1] != follower_lease;
      },
      absl::Seconds(5)));
  EXPECT_EQ(leases[0], leader_lease);
  EXPECT_FALSE(follower->MayServe());
  EXPECT_TRUE(leader->MayServe());

  // The leader's lease ends: it steps down, the follower leads on its new
  // lease, and the old leader stands by behind it.
  const absl::Time revoked = absl::Now();
  ASSERT_TRUE((*etcd)->RevokeLease(leader_lease).ok());
  EXPECT_TRUE(
      leader->Reported([](const LeaderView& view) { return !view.leading; }));
  ASSERT_TRUE(
      WaitUntil([&] { return follower->MayServe(); }, absl::Seconds(2)));
  std::printf("leader's lease revoked: follower leads after %s\n",
              absl::FormatDuration(absl::Now() - revoked).c_str());
  const int64_t next_epoch = follower->leadership().View().epoch;
  EXPECT_GT(next_epoch, epoch);
  EXPECT_FALSE(leader->MayServe());
  EXPECT_TRUE(WaitUntil(
      [&] {
        const LeaderView seen = leader->leadership().View();
        return seen.epoch == next_epoch &&
               seen.leader_address == follower->address();
      },
      absl::Seconds(5)));
}

TEST(LeadershipTest, ALeaderCutOffFromEtcdStopsBeforeTheStandbyTakesOver) {
  std::unique_ptr<test::EtcdCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  const absl::Duration ttl = absl::Seconds(1);
  // a reaches etcd only through one member, b only through the others; a
  // leads (b starts once it does). a's member is not the raft leader: etcd
  // 3.4.23's raft leader, paused and resumed, revokes the leases its
  // successor renewed meanwhile (etcd issue 15247), b's included, which
  // would make the end of this test a race.
  absl::StatusOr<int> raft_leader = cluster->RaftLeader();
  ASSERT_TRUE(raft_leader.ok()) << raft_leader.status();
  const int cut = (*raft_leader + 1) % cluster->size();
  std::vector<std::string> others;
  for (int i = 0; i < cluster->size(); ++i) {
    if (i != cut) others.push_back(cluster->endpoints()[i]);
  }
  Process a({cluster->endpoints()[cut]}, "10.0.0.1:50051", ttl);
  ASSERT_TRUE(WaitUntil([&] { return a.MayServe(); }, absl::Seconds(10)));
  Process b(others, "10.0.0.2:50051", ttl);
  ASSERT_TRUE(WaitUntil(
      [&] { return b.leadership().View().leader_address == a.address(); },
      absl::Seconds(5)));
  const int64_t epoch = a.leadership().View().epoch;

  // Pausing a's member cuts a off, like a crashed or partitioned leader: a
  // stops serving at its fence; b wins once etcd ends a's lease, later.
  ASSERT_TRUE(cluster->Pause(cut).ok());
  const absl::Time paused = absl::Now();
  absl::Duration a_stopped = absl::InfiniteDuration();
  absl::Duration b_started = absl::InfiniteDuration();
  while (absl::Now() - paused < absl::Seconds(10) &&
         b_started == absl::InfiniteDuration()) {
    const bool a_serves = a.MayServe();
    const bool b_serves = b.MayServe();
    ASSERT_FALSE(a_serves && b_serves);
    if (!a_serves && a_stopped == absl::InfiniteDuration()) {
      a_stopped = absl::Now() - paused;
    }
    if (b_serves) b_started = absl::Now() - paused;
    absl::SleepFor(absl::Milliseconds(1));
  }
  std::printf(
      "leader cut off from etcd: it stopped serving after %s, the standby "
      "served after %s (ttl %s)\n",
      absl::FormatDuration(a_stopped).c_str(),
      absl::FormatDuration(b_started).c_str(),
      absl::FormatDuration(ttl).c_str());
  EXPECT_LE(a_stopped, ttl);
  ASSERT_LT(b_started, absl::Seconds(10));
  EXPECT_LT(a_stopped, b_started);
  EXPECT_GT(b.leadership().View().epoch, epoch);

  // Back in touch, a stands by behind b.
  ASSERT_TRUE(cluster->Resume(cut).ok());
  EXPECT_TRUE(WaitUntil(
      [&] { return a.leadership().View().leader_address == b.address(); },
      absl::Seconds(10)));
  EXPECT_FALSE(a.MayServe());
  EXPECT_TRUE(b.MayServe());
}

TEST(LeadershipTest, FencedWhileEtcdIsPausedThenLeadsAgain) {
  std::unique_ptr<test::EtcdCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  const absl::Duration ttl = absl::Seconds(1);
  Process a(*cluster, "10.0.0.1:50051", ttl);
  Process b(*cluster, "10.0.0.2:50051", ttl);
  Process* leader = WaitForLeader(a, b, absl::Seconds(10));
  ASSERT_NE(leader, nullptr);
  Process* follower = leader == &a ? &b : &a;
  const int64_t epoch = leader->leadership().View().epoch;
  const size_t changes_before = leader->changes().size();

  // No keepalive is answered while etcd is paused: the leader stops serving
  // within its TTL (at the last answered keepalive's send time + ttl -
  // margin), and reports stepping down.
  ASSERT_TRUE(cluster->PauseAll().ok());
  const absl::Time paused = absl::Now();
  ASSERT_TRUE(WaitUntil([&] { return !leader->MayServe(); }, ttl * 2));
  const absl::Duration fenced = absl::Now() - paused;
  EXPECT_LE(fenced, ttl);
  EXPECT_FALSE(follower->MayServe());
  EXPECT_TRUE(
      leader->Reported([](const LeaderView& view) { return !view.leading; },
                       absl::Seconds(2), changes_before));
  const absl::Duration reported = absl::Now() - paused;
  // Nobody serves while etcd is away.
  ExpectNeverBothServe(a, b, absl::Seconds(1));
  EXPECT_FALSE(a.MayServe() || b.MayServe());

  ASSERT_TRUE(cluster->ResumeAll().ok());
  const absl::Time resumed = absl::Now();
  Process* next = WaitForLeader(a, b, absl::Seconds(20));
  ASSERT_NE(next, nullptr);
  const absl::Duration recovered = absl::Now() - resumed;
  std::printf(
      "etcd paused: MayServe false after %s (ttl %s), step-down reported "
      "after %s; after resuming, a leader again after %s\n",
      absl::FormatDuration(fenced).c_str(), absl::FormatDuration(ttl).c_str(),
      absl::FormatDuration(reported).c_str(),
      absl::FormatDuration(recovered).c_str());
  EXPECT_GT(next->leadership().View().epoch, epoch);
  ExpectNeverBothServe(a, b, absl::Seconds(1));
}

}  // namespace
}  // namespace jambalancer
