#include "server/etcd/etcd_client.h"

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
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
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

std::unique_ptr<EtcdClient> ConnectTo(const test::EtcdCluster& cluster) {
  EtcdClient::Options options;
  options.call_timeout = absl::Seconds(3);
  absl::StatusOr<std::unique_ptr<EtcdClient>> client =
      EtcdClient::Connect(cluster.endpoints(), options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

// A blocking call run on a thread of its own, its result read once done.
template <typename T>
class Background {
 public:
  explicit Background(std::function<T()> call)
      : thread_([this, call = std::move(call)] {
          T result = call();
          absl::MutexLock lock(&mu_);
          result_ = std::move(result);
        }) {}
  ~Background() { thread_.join(); }

  bool done() {
    absl::MutexLock lock(&mu_);
    return result_.has_value();
  }
  // Waits at most `timeout`; nullopt if still running.
  std::optional<T> Wait(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto has = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return result_.has_value();
    };
    mu_.AwaitWithTimeout(absl::Condition(&has), timeout);
    return result_;
  }

 private:
  absl::Mutex mu_;
  std::optional<T> result_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// What a keepalive reported, read from the test's thread.
class KeepAliveLog {
 public:
  void Ack(const LeaseKeepAlive::Ack& ack) {
    absl::MutexLock lock(&mu_);
    acks_.push_back(ack);
  }
  void Error(const absl::Status& error) {
    absl::MutexLock lock(&mu_);
    errors_.push_back(error);
  }
  std::vector<LeaseKeepAlive::Ack> acks() {
    absl::MutexLock lock(&mu_);
    return acks_;
  }

 private:
  absl::Mutex mu_;
  std::vector<LeaseKeepAlive::Ack> acks_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> errors_ ABSL_GUARDED_BY(mu_);
};

TEST(EtcdEndpointsTest, ParsesAListOfHostPorts) {
  absl::StatusOr<std::vector<std::string>> endpoints =
      EtcdClient::ParseEndpoints(" 127.0.0.1:2379, http://127.0.0.2:2380 ");
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();
  EXPECT_THAT(*endpoints, ElementsAre("127.0.0.1:2379", "127.0.0.2:2380"));

  test::ExpectInvalidArgument(EtcdClient::ParseEndpoints("").status(),
                              "etcd endpoints", "none");
  test::ExpectInvalidArgument(EtcdClient::ParseEndpoints("a:1,b").status(),
                              "\"b\"", "host:port");
  test::ExpectInvalidArgument(EtcdClient::ParseEndpoints("a:70000").status(),
                              "\"a:70000\"", "[1, 65535]");
  EXPECT_THAT(*EtcdClient::ParseEndpoints("https://a:1"), ElementsAre("a:1"));
}

TEST(EtcdEndpointsTest, ConnectChecksTheSchemesAgainstTheTlsOptions) {
  test::ExpectInvalidArgument(
      EtcdClient::Connect({"https://127.0.0.1:1"}).status(),
      "https://127.0.0.1:1", "TLS");
  EtcdClient::Options tls;
  tls.tls = EtcdClient::Tls{};
  test::ExpectInvalidArgument(
      EtcdClient::Connect({"http://127.0.0.1:1"}, tls).status(),
      "http://127.0.0.1:1", "plaintext");
  tls.tls->cert_pem = "-----BEGIN CERTIFICATE-----";
  test::ExpectInvalidArgument(
      EtcdClient::Connect({"127.0.0.1:1"}, tls).status(), "certificate", "key");
  tls.tls->key_pem = "-----BEGIN PRIVATE KEY-----";
  EXPECT_TRUE(EtcdClient::Connect({"https://127.0.0.1:1"}, tls).ok());
}

TEST(EtcdEndpointsTest, ChannelTargetFailsOverBetweenAddresses) {
  EXPECT_EQ(*EtcdClient::ChannelTarget({"127.0.0.1:1", "127.0.0.1:2"}),
            "ipv4:127.0.0.1:1,127.0.0.1:2");
  EXPECT_EQ(*EtcdClient::ChannelTarget({"[::1]:1", "[::1]:2"}),
            "ipv6:[::1]:1,[::1]:2");
  EXPECT_EQ(*EtcdClient::ChannelTarget({"etcd.example:2379"}),
            "dns:///etcd.example:2379");
  EXPECT_EQ(*EtcdClient::ChannelTarget({"http://127.0.0.1:1", " 127.0.0.1:2"}),
            "ipv4:127.0.0.1:1,127.0.0.1:2");
  test::ExpectInvalidArgument(EtcdClient::ChannelTarget({}).status(),
                              "etcd endpoints", "none");
  test::ExpectInvalidArgument(EtcdClient::ChannelTarget({"127.0.0.1"}).status(),
                              "127.0.0.1", "host:port");
  test::ExpectInvalidArgument(
      EtcdClient::ChannelTarget({"a.example:1", "b.example:1"}).status(),
      "a.example:1,b.example:1", "one DNS name");
  test::ExpectInvalidArgument(
      EtcdClient::ChannelTarget({"127.0.0.1:1", "[::1]:1"}).status(),
      "etcd endpoints", "all be IPv4");
}

TEST(EtcdEndpointsTest, PrefixEndIsTheFirstKeyPastThePrefix) {
  EXPECT_EQ(EtcdClient::PrefixEnd("abc"), "abd");
  EXPECT_EQ(EtcdClient::PrefixEnd("a\xff"), "b");
  EXPECT_EQ(EtcdClient::PrefixEnd("\xff"), std::string(1, '\0'));
}

// One cluster for the tests below, each on keys and elections of its own.
class EtcdClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<test::EtcdCluster>> started =
        test::EtcdCluster::Start();
    if (started.ok()) {
      cluster_ = started->release();
    } else {
      start_error_ = new absl::Status(started.status());
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr) << *start_error_;
    client_ = ConnectTo(*cluster_);
    ASSERT_NE(client_, nullptr);
  }

  static test::EtcdCluster* cluster_;
  static absl::Status* start_error_;
  std::unique_ptr<EtcdClient> client_;
};

test::EtcdCluster* EtcdClientTest::cluster_ = nullptr;
absl::Status* EtcdClientTest::start_error_ = nullptr;

TEST_F(EtcdClientTest, KeepAliveHoldsALeaseUntilRevoked) {
  absl::StatusOr<EtcdLease> lease = client_->GrantLease(absl::Seconds(1));
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->ttl, absl::Seconds(1));

  KeepAliveLog log;
  const absl::Time started = absl::Now();
  std::unique_ptr<LeaseKeepAlive> keepalive = client_->StartKeepAlive(
      lease->id, absl::Milliseconds(300),
      [&log](const LeaseKeepAlive::Ack& ack) { log.Ack(ack); },
      [&log](const absl::Status& error) { log.Error(error); });
  // Three TTLs: the lease lives only because of the keepalives. (What is
  // left of it is whole seconds, rounded down: 0 here.)
  absl::SleepFor(absl::Seconds(3));
  absl::StatusOr<absl::Duration> left = client_->LeaseTimeToLive(lease->id);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_LE(*left, absl::Seconds(1));

  std::vector<LeaseKeepAlive::Ack> acks = log.acks();
  ASSERT_GE(acks.size(), 5u);
  absl::Time previous = started;
  for (const LeaseKeepAlive::Ack& ack : acks) {
    EXPECT_EQ(ack.ttl, absl::Seconds(1));
    EXPECT_GE(ack.sent, previous);  // in order, each sent after the last
    previous = ack.sent;
  }

  ASSERT_TRUE(client_->RevokeLease(lease->id).ok());
  // The next keepalive is answered TTL 0: the lease is gone.
  ASSERT_TRUE(WaitUntil(
      [&log] {
        std::vector<LeaseKeepAlive::Ack> all = log.acks();
        return !all.empty() && all.back().ttl == absl::ZeroDuration();
      },
      absl::Seconds(3)));
  EXPECT_TRUE(absl::IsNotFound(client_->LeaseTimeToLive(lease->id).status()));
  EXPECT_TRUE(absl::IsNotFound(client_->RevokeLease(lease->id)));
  keepalive->Stop();
}

TEST_F(EtcdClientTest, LeaseWithoutKeepAliveEnds) {
  absl::StatusOr<EtcdLease> lease = client_->GrantLease(absl::Seconds(1));
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(client_->Put("expiring/key", "v", lease->id).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return absl::IsNotFound(client_->LeaseTimeToLive(lease->id).status());
      },
      absl::Seconds(5)));
  absl::StatusOr<std::vector<EtcdKeyValue>> kvs =
      client_->Range("expiring/key");
  ASSERT_TRUE(kvs.ok()) << kvs.status();
  EXPECT_THAT(*kvs, SizeIs(0));
}

TEST_F(EtcdClientTest, CampaignLeaderResign) {
  const std::string election = "campaign-leader-resign";
  EXPECT_TRUE(absl::IsNotFound(client_->Leader(election).status()));

  absl::StatusOr<EtcdLease> a = client_->GrantLease(absl::Seconds(10));
  absl::StatusOr<EtcdLease> b = client_->GrantLease(absl::Seconds(10));
  ASSERT_TRUE(a.ok() && b.ok());
  absl::StatusOr<EtcdCampaignResult> won_a =
      client_->Campaign(election, a->id, "a:1");
  ASSERT_TRUE(won_a.ok()) << won_a.status();
  EXPECT_EQ(won_a->leader.name, election);
  EXPECT_EQ(won_a->leader.lease, a->id);
  EXPECT_GE(won_a->revision, won_a->leader.rev);

  absl::StatusOr<EtcdKeyValue> leader = client_->Leader(election);
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->key, won_a->leader.key);
  EXPECT_EQ(leader->value, "a:1");
  EXPECT_EQ(leader->create_revision, won_a->leader.rev);
  EXPECT_EQ(leader->lease, a->id);

  // b waits behind a until a resigns.
  Background<absl::StatusOr<EtcdCampaignResult>> campaign_b(
      [&] { return client_->Campaign(election, b->id, "b:1"); });
  EXPECT_FALSE(campaign_b.Wait(absl::Milliseconds(500)).has_value());
  const absl::Time resigned = absl::Now();
  ASSERT_TRUE(client_->Resign(won_a->leader).ok());
  std::optional<absl::StatusOr<EtcdCampaignResult>> won_b =
      campaign_b.Wait(absl::Seconds(5));
  ASSERT_TRUE(won_b.has_value());
  ASSERT_TRUE(won_b->ok()) << won_b->status();
  std::printf("campaign answered %s after the leader resigned\n",
              absl::FormatDuration(absl::Now() - resigned).c_str());
  EXPECT_GT((*won_b)->leader.rev, won_a->leader.rev);
  leader = client_->Leader(election);
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->value, "b:1");

  // Proclaim changes the leader's value; a stale leader key cannot.
  ASSERT_TRUE(client_->Proclaim((*won_b)->leader, "b:2").ok());
  EXPECT_EQ(client_->Leader(election)->value, "b:2");
  EXPECT_EQ(client_->Proclaim(won_a->leader, "a:2").code(),
            absl::StatusCode::kFailedPrecondition);

  // Revoking the leader's lease ends its leadership too.
  ASSERT_TRUE(client_->RevokeLease(b->id).ok());
  EXPECT_TRUE(absl::IsNotFound(client_->Leader(election).status()));
  ASSERT_TRUE(client_->RevokeLease(a->id).ok());
}

TEST_F(EtcdClientTest, CampaignIsCancelled) {
  const std::string election = "campaign-cancelled";
  absl::StatusOr<EtcdLease> a = client_->GrantLease(absl::Seconds(10));
  absl::StatusOr<EtcdLease> b = client_->GrantLease(absl::Seconds(10));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(client_->Campaign(election, a->id, "a").ok());

  CallCanceller cancel;
  Background<absl::StatusOr<EtcdCampaignResult>> campaign_b(
      [&] { return client_->Campaign(election, b->id, "b", &cancel); });
  // b's key is there, behind a's.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto kvs = client_->Range(election, EtcdClient::PrefixEnd(election));
        return kvs.ok() && kvs->size() == 2;
      },
      absl::Seconds(5)));
  EXPECT_FALSE(campaign_b.done());
  const absl::Time cancelled = absl::Now();
  cancel.Cancel();
  std::optional<absl::StatusOr<EtcdCampaignResult>> result =
      campaign_b.Wait(absl::Seconds(2));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), absl::StatusCode::kCancelled)
      << result->status();
  EXPECT_LT(absl::Now() - cancelled, absl::Seconds(1));
  // etcd deletes the key of a campaign cancelled while it waits, but not of
  // one cancelled while etcd was still writing the key (seen under load):
  // revoking the lease deletes it in any case.
  ASSERT_TRUE(client_->RevokeLease(b->id).ok());
  absl::StatusOr<std::vector<EtcdKeyValue>> kvs =
      client_->Range(election, EtcdClient::PrefixEnd(election));
  ASSERT_TRUE(kvs.ok()) << kvs.status();
  ASSERT_THAT(*kvs, SizeIs(1));
  EXPECT_EQ((*kvs)[0].lease, a->id);

  // A cancelled canceller ends the next call at once.
  EXPECT_EQ(client_->Campaign(election, b->id, "b", &cancel).status().code(),
            absl::StatusCode::kCancelled);
  ASSERT_TRUE(client_->RevokeLease(a->id).ok());
}

TEST_F(EtcdClientTest, ObserveSeesEveryLeader) {
  const std::string election = "observed";
  absl::StatusOr<EtcdLease> a = client_->GrantLease(absl::Seconds(10));
  absl::StatusOr<EtcdLease> b = client_->GrantLease(absl::Seconds(10));
  ASSERT_TRUE(a.ok() && b.ok());
  absl::StatusOr<EtcdCampaignResult> won_a =
      client_->Campaign(election, a->id, "a");
  ASSERT_TRUE(won_a.ok()) << won_a.status();

  absl::Mutex mu;
  std::vector<std::string> seen;
  auto seen_count = [&] {
    absl::MutexLock lock(&mu);
    return seen.size();
  };
  CallCanceller cancel;
  Background<absl::Status> observe([&] {
    return client_->Observe(
        election,
        [&](const EtcdKeyValue& leader) {
          absl::MutexLock lock(&mu);
          seen.push_back(
              absl::StrCat(leader.value, "@", leader.create_revision));
        },
        &cancel);
  });
  // The current leader first.
  ASSERT_TRUE(WaitUntil([&] { return seen_count() == 1; }, absl::Seconds(3)));
  ASSERT_TRUE(client_->Proclaim(won_a->leader, "a2").ok());
  ASSERT_TRUE(WaitUntil([&] { return seen_count() == 2; }, absl::Seconds(3)));
  Background<absl::StatusOr<EtcdCampaignResult>> campaign_b(
      [&] { return client_->Campaign(election, b->id, "b"); });
  ASSERT_TRUE(client_->Resign(won_a->leader).ok());
  std::optional<absl::StatusOr<EtcdCampaignResult>> won_b =
      campaign_b.Wait(absl::Seconds(5));
  ASSERT_TRUE(won_b.has_value() && won_b->ok());
  ASSERT_TRUE(WaitUntil([&] { return seen_count() == 3; }, absl::Seconds(3)));
  {
    absl::MutexLock lock(&mu);
    const std::string rev_a = absl::StrCat(won_a->leader.rev);
    EXPECT_THAT(seen, ElementsAre("a@" + rev_a, "a2@" + rev_a,
                                  absl::StrCat("b@", (*won_b)->leader.rev)));
  }
  cancel.Cancel();
  std::optional<absl::Status> ended = observe.Wait(absl::Seconds(2));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->code(), absl::StatusCode::kCancelled) << *ended;
  ASSERT_TRUE(client_->RevokeLease(a->id).ok());
  ASSERT_TRUE(client_->RevokeLease(b->id).ok());
}

TEST_F(EtcdClientTest, PutIfLeaderWritesOnlyForTheLeader) {
  const std::string election = "guarded";
  absl::StatusOr<EtcdLease> a = client_->GrantLease(absl::Seconds(10));
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<EtcdCampaignResult> won =
      client_->Campaign(election, a->id, "a");
  ASSERT_TRUE(won.ok()) << won.status();

  absl::StatusOr<int64_t> written =
      client_->PutIfLeader(won->leader, "guarded/state", "one");
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_GT(*written, won->leader.rev);
  absl::StatusOr<std::vector<EtcdKeyValue>> kvs =
      client_->Range("guarded/state");
  ASSERT_TRUE(kvs.ok()) << kvs.status();
  ASSERT_THAT(*kvs, SizeIs(1));
  EXPECT_EQ((*kvs)[0].value, "one");
  EXPECT_EQ((*kvs)[0].mod_revision, *written);

  ASSERT_TRUE(client_->Resign(won->leader).ok());
  absl::StatusOr<int64_t> refused =
      client_->PutIfLeader(won->leader, "guarded/state", "two");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr(won->leader.key));
  EXPECT_EQ(client_->Range("guarded/state")->at(0).value, "one");
  ASSERT_TRUE(client_->RevokeLease(a->id).ok());
}

TEST_F(EtcdClientTest, PutAndRangeAPrefix) {
  ASSERT_TRUE(client_->Put("prefix/b", "2").ok());
  ASSERT_TRUE(client_->Put("prefix/a", "1").ok());
  ASSERT_TRUE(client_->Put("prefiy", "outside").ok());
  absl::StatusOr<std::vector<EtcdKeyValue>> kvs =
      client_->Range("prefix/", EtcdClient::PrefixEnd("prefix/"));
  ASSERT_TRUE(kvs.ok()) << kvs.status();
  ASSERT_THAT(*kvs, SizeIs(2));
  EXPECT_EQ((*kvs)[0].key, "prefix/a");
  EXPECT_EQ((*kvs)[1].value, "2");
  EXPECT_EQ((*kvs)[1].version, 1);
}

TEST(EtcdClientFailoverTest, WorksWhileAMemberIsDown) {
  absl::StatusOr<std::unique_ptr<test::EtcdCluster>> cluster =
      test::EtcdCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  std::unique_ptr<EtcdClient> client = ConnectTo(**cluster);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<EtcdLease> lease = client->GrantLease(absl::Seconds(1));
  ASSERT_TRUE(lease.ok()) << lease.status();
  KeepAliveLog log;
  std::unique_ptr<LeaseKeepAlive> keepalive = client->StartKeepAlive(
      lease->id, absl::Milliseconds(300),
      [&log](const LeaseKeepAlive::Ack& ack) { log.Ack(ack); },
      [&log](const absl::Status& error) { log.Error(error); });
  ASSERT_TRUE(
      WaitUntil([&log] { return !log.acks().empty(); }, absl::Seconds(3)));

  // Each member in turn; whichever was raft leader, the others elect one.
  for (int member = 0; member < (*cluster)->size(); ++member) {
    ASSERT_TRUE((*cluster)->Kill(member).ok());
    const absl::Time killed = absl::Now();
    ASSERT_TRUE(WaitUntil([&] { return client->Put("failover", "x").ok(); },
                          absl::Seconds(5)));
    const absl::Duration first_put = absl::Now() - killed;
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(client->Put("failover", absl::StrCat(i)).ok());
      ASSERT_TRUE(client->Range("failover").ok());
    }
    const std::string election = absl::StrCat("failover-", member);
    absl::StatusOr<EtcdCampaignResult> won =
        client->Campaign(election, lease->id, "x");
    ASSERT_TRUE(won.ok()) << won.status();
    ASSERT_TRUE(client->Leader(election).ok());
    // The 1 s lease outlived the kill: keepalives went on through others.
    absl::StatusOr<absl::Duration> left = client->LeaseTimeToLive(lease->id);
    ASSERT_TRUE(left.ok()) << left.status();
    std::printf("member %d killed: first put after %s\n", member,
                absl::FormatDuration(first_put).c_str());
    ASSERT_TRUE((*cluster)->Restart(member).ok());
    ASSERT_TRUE((*cluster)->WaitHealthy(absl::Seconds(10)).ok());
  }
  keepalive->Stop();
}

}  // namespace
}  // namespace jambalancer
