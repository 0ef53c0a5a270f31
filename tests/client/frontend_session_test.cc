// FrontEndSession against a real server on loopback: the lease kept alive,
// and the front end's truth restored when the balancer restarts (a new
// server on the same port, which knows nothing).

#include "client/frontend_session.h"

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/rpc/balancer_server.h"
#include "server/rpc/server_options.h"
#include "tests/testing/test_server.h"

namespace jambalancer {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;

constexpr char kFrontEnd[] = "fe-1";
// Bound of every wait for something the session does by itself.
constexpr absl::Duration kPatience = absl::Seconds(30);

// The front end's truth: who is connected to which of its jams. Thread-safe,
// as FrontEndSession requires of it.
class Presence {
 public:
  explicit Presence(std::map<std::string, std::vector<std::string>> jams)
      : jams_(std::move(jams)) {}

  void Join(const std::string& jam_id, const std::string& user_id) {
    absl::MutexLock lock(&mu_);
    jams_[jam_id].push_back(user_id);
  }

  std::vector<BalancerClient::JamUsers> Truth() const {
    absl::MutexLock lock(&mu_);
    ++asked_;
    std::vector<BalancerClient::JamUsers> truth;
    for (const auto& [jam_id, user_ids] : jams_) {
      truth.push_back({jam_id, user_ids});
    }
    return truth;
  }

  // How many times Truth() was asked.
  int asked() const {
    absl::MutexLock lock(&mu_);
    return asked_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<std::string>> jams_ ABSL_GUARDED_BY(mu_);
  mutable int asked_ ABSL_GUARDED_BY(mu_) = 0;
};

// A jam's id and members as ListJams answers them.
using JamMembers = std::pair<std::string, std::vector<std::string>>;

// Matches the jams of the fixture's presence_ as it starts.
auto PresenceAtFirst() {
  return ElementsAre(Pair("j1", ElementsAre("ann", "bob")),
                     Pair("j2", ElementsAre("cat")));
}

// Waits until `done()` holds, polling; returns whether it did within
// kPatience.
template <typename Predicate>
bool Eventually(Predicate done) {
  const absl::Time deadline = absl::Now() + kPatience;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

class FrontEndSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = test::StartServer(Options());
    ASSERT_NE(server_, nullptr);
    // A channel of our own, to wait until it reconnects after a restart.
    channel_ = grpc::CreateChannel(test::TargetOf(*server_),
                                   grpc::InsecureChannelCredentials());
    BalancerClient::Options options;
    options.frontend_id = kFrontEnd;
    client_ = std::make_unique<BalancerClient>(channel_, options);
  }

  // No resync window after a start (a window tested in tests/core): a new
  // user joins the restarted balancer's jams at once.
  static ServerOptions Options() {
    ServerOptions options = test::LoopbackOptions();
    options.resync_grace = absl::ZeroDuration();
    return options;
  }

  // Stops the server and starts an empty one on the same port.
  void RestartServer() {
    const int port = server_->port();
    StopServer();
    StartServerOn(port);
  }

  void StopServer() {
    server_->Shutdown(absl::ZeroDuration());
    server_.reset();
  }

  // Rebinding the port may fail for a moment after the old server closed
  // it: retried for up to kPatience.
  void StartServerOn(int port) {
    ServerOptions options = Options();
    options.listen = absl::StrCat("127.0.0.1:", port);
    const absl::Time deadline = absl::Now() + kPatience;
    absl::Status last;
    while (server_ == nullptr && absl::Now() < deadline) {
      absl::StatusOr<std::unique_ptr<BalancerServer>> started =
          BalancerServer::Start(options);
      if (started.ok()) {
        server_ = *std::move(started);
      } else {
        last = started.status();
        absl::SleepFor(absl::Milliseconds(50));
      }
    }
    ASSERT_NE(server_, nullptr)
        << "cannot listen on port " << port << " again: " << last;
  }

  // Waits until the front end's channel is connected to the server.
  void WaitForChannel() {
    ASSERT_TRUE(
        channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + kPatience)))
        << "the client did not reconnect";
  }

  // Every jam of the server with its members (fewer than a page here).
  std::vector<JamMembers> Jams() {
    absl::StatusOr<v1::ListJamsResponse> listed =
        test::NewClient(*server_)->ListJams(1000, "");
    EXPECT_TRUE(listed.ok()) << listed.status();
    std::vector<JamMembers> jams;
    if (!listed.ok()) return jams;
    for (const v1::Jam& jam : listed->jams()) {
      jams.emplace_back(jam.jam_id(),
                        std::vector<std::string>(jam.user_ids().begin(),
                                                 jam.user_ids().end()));
    }
    return jams;
  }

  // The server's sessions.
  std::vector<v1::Session> Sessions() {
    absl::StatusOr<v1::ListSessionsResponse> listed =
        test::NewClient(*server_)->ListSessions();
    EXPECT_TRUE(listed.ok()) << listed.status();
    if (!listed.ok()) return {};
    return {listed->sessions().begin(), listed->sessions().end()};
  }

  FrontEndSession::Truth TruthOf(const Presence& presence) {
    return [&presence] { return presence.Truth(); };
  }

  std::unique_ptr<BalancerServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<BalancerClient> client_;
  Presence presence_{{{"j1", {"ann", "bob"}}, {"j2", {"cat"}}}};
};

TEST_F(FrontEndSessionTest, StartSyncsTheTruth) {
  FrontEndSession session(*client_, absl::Seconds(60), TruthOf(presence_));
  const absl::Time before = absl::Now();
  ASSERT_TRUE(session.Start().ok());
  EXPECT_EQ(session.sync_count(), 1);
  EXPECT_EQ(presence_.asked(), 1);
  EXPECT_GE(
      session.lease_expires(),
      absl::FromUnixMillis(absl::ToUnixMillis(before + absl::Seconds(60))));
  EXPECT_THAT(Jams(), PresenceAtFirst());
  const std::vector<v1::Session> sessions = Sessions();
  ASSERT_THAT(sessions, SizeIs(1));
  EXPECT_EQ(sessions[0].frontend_id(), kFrontEnd);
  EXPECT_EQ(sessions[0].member_count(), 3u);
}

TEST_F(FrontEndSessionTest, KeepAlivesHoldAShortLease) {
  constexpr absl::Duration kLease = absl::Milliseconds(600);
  FrontEndSession session(*client_, kLease, TruthOf(presence_));
  ASSERT_TRUE(session.Start().ok());
  const absl::Time first_lease = session.lease_expires();
  // Every 200 ms: 10 of them span more than 3 leases.
  ASSERT_TRUE(Eventually([&] { return session.keep_alive_count() >= 10; }))
      << session.keep_alive_count() << " keep-alives";
  EXPECT_GT(session.lease_expires(), first_lease + 2 * kLease);
  // The lease never ran out: no resync was needed, and the users stayed.
  EXPECT_EQ(session.sync_count(), 1);
  const std::vector<v1::Session> sessions = Sessions();
  ASSERT_THAT(sessions, SizeIs(1));
  EXPECT_GT(absl::FromUnixMillis(
                static_cast<int64_t>(sessions[0].lease_expires_unix_ms())),
            first_lease + 2 * kLease);
  EXPECT_THAT(Jams(), PresenceAtFirst());
}

TEST_F(FrontEndSessionTest, ACallAfterARestartResyncsAndIsRetriedOnce) {
  // A long lease: no keep-alive comes first to notice the restart.
  FrontEndSession session(*client_, absl::Seconds(60), TruthOf(presence_));
  ASSERT_TRUE(session.Start().ok());
  RestartServer();
  WaitForChannel();
  ASSERT_THAT(Jams(), IsEmpty());

  // dan joins: present for the front end before its AddUser.
  presence_.Join("j1", "dan");
  std::vector<absl::StatusCode> attempts;
  absl::StatusOr<v1::AddUserResponse> added =
      session.Call([&](BalancerClient& client) {
        absl::StatusOr<v1::AddUserResponse> result =
            client.AddUser("j1", "dan");
        attempts.push_back(result.status().code());
        return result;
      });
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_TRUE(added->added());
  EXPECT_THAT(attempts, ElementsAre(absl::StatusCode::kFailedPrecondition,
                                    absl::StatusCode::kOk));
  EXPECT_EQ(session.sync_count(), 2);
  EXPECT_THAT(Jams(), ElementsAre(Pair("j1", ElementsAre("ann", "bob", "dan")),
                                  Pair("j2", ElementsAre("cat"))));
  const std::vector<v1::Session> sessions = Sessions();
  ASSERT_THAT(sessions, SizeIs(1));
  EXPECT_EQ(sessions[0].member_count(), 4u);

  // Back to normal: the next call goes through at once.
  attempts.clear();
  ASSERT_TRUE(session
                  .Call([&](BalancerClient& client) {
                    absl::Status status =
                        client.RemoveUser("j2", "cat").status();
                    attempts.push_back(status.code());
                    return status;
                  })
                  .ok());
  EXPECT_THAT(attempts, ElementsAre(absl::StatusCode::kOk));
  EXPECT_EQ(session.sync_count(), 2);
}

TEST_F(FrontEndSessionTest, KeepAliveNoticesARestartAndResyncs) {
  FrontEndSession session(*client_, absl::Milliseconds(600),
                          TruthOf(presence_));
  ASSERT_TRUE(session.Start().ok());
  RestartServer();
  ASSERT_TRUE(Eventually([&] { return session.sync_count() >= 2; }))
      << "no resync after the restart";
  EXPECT_THAT(Jams(), PresenceAtFirst());
}

TEST_F(FrontEndSessionTest, ConcurrentCallsShareTheResync) {
  FrontEndSession session(*client_, absl::Seconds(60), TruthOf(presence_));
  ASSERT_TRUE(session.Start().ok());
  RestartServer();
  WaitForChannel();

  constexpr int kThreads = 8;
  std::vector<absl::Status> statuses(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    const std::string user = absl::StrCat("user-", i);
    presence_.Join("j3", user);
    threads.emplace_back([&, i, user] {
      statuses[i] = session
                        .Call([&](BalancerClient& client) {
                          return client.AddUser("j3", user);
                        })
                        .status();
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_TRUE(statuses[i].ok()) << i << ": " << statuses[i];
  }
  // Calls that failed while a resync was under way waited for it instead of
  // syncing again; only one that began after a resync had begun may sync
  // once more.
  EXPECT_GE(session.sync_count(), 2);
  EXPECT_LT(session.sync_count(), 1 + kThreads);
  const std::vector<JamMembers> jams = Jams();
  ASSERT_THAT(jams, SizeIs(3));
  EXPECT_THAT(jams[2].second, SizeIs(kThreads));
}

TEST_F(FrontEndSessionTest, CallPassesOtherErrorsThroughWithoutRetrying) {
  FrontEndSession session(*client_, absl::Seconds(60), TruthOf(presence_));
  ASSERT_TRUE(session.Start().ok());
  int calls = 0;
  const absl::Status status = session.Call([&](BalancerClient& client) {
    ++calls;
    return client.AddUser("j1", "").status();
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(session.sync_count(), 1);
}

TEST_F(FrontEndSessionTest, StoppedSessionNeitherKeepsAliveNorResyncs) {
  FrontEndSession session(*client_, absl::Milliseconds(600),
                          TruthOf(presence_));
  ASSERT_TRUE(session.Start().ok());
  session.Stop();
  const int64_t keep_alives = session.keep_alive_count();
  // Without keep-alives the lease runs out and the balancer removes the
  // front end's users.
  ASSERT_TRUE(Eventually([&] { return Sessions().empty(); }));
  EXPECT_THAT(Jams(), IsEmpty());
  EXPECT_EQ(session.keep_alive_count(), keep_alives);

  int calls = 0;
  const absl::Status status = session.Call([&](BalancerClient& client) {
    ++calls;
    return client.AddUser("j1", "dan").status();
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(session.sync_count(), 1);

  // Started again, it syncs the truth again.
  ASSERT_TRUE(session.Start().ok());
  EXPECT_EQ(session.sync_count(), 2);
  EXPECT_THAT(Jams(), SizeIs(2));
}

TEST_F(FrontEndSessionTest, EndRemovesTheFrontEndsUsers) {
  FrontEndSession session(*client_, absl::Seconds(60), TruthOf(presence_));
  ASSERT_TRUE(session.Start().ok());
  absl::StatusOr<v1::EndSessionResponse> ended = session.End();
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->removed_user_count(), 3u);
  EXPECT_THAT(Jams(), IsEmpty());
  EXPECT_THAT(Sessions(), IsEmpty());
  // Ended: a call is not turned into a new session.
  EXPECT_EQ(session
                .Call([](BalancerClient& client) {
                  return client.AddUser("j1", "ann").status();
                })
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Sessions(), IsEmpty());
  EXPECT_EQ(session.sync_count(), 1);
}

TEST_F(FrontEndSessionTest, StartFailsWithoutABalancerAndCanBeRetried) {
  const int port = server_->port();
  StopServer();
  FrontEndSession session(*client_, absl::Seconds(60), TruthOf(presence_));
  const absl::Status status = session.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(session.sync_count(), 0);

  StartServerOn(port);
  // The channel may wait a moment before it connects again.
  ASSERT_TRUE(Eventually([&] { return session.Start().ok(); }));
  EXPECT_EQ(session.sync_count(), 1);
  EXPECT_THAT(Jams(), SizeIs(2));
}

TEST_F(FrontEndSessionTest, ResyncSyncsTheTruthNow) {
  FrontEndSession session(*client_, absl::Seconds(60), TruthOf(presence_));
  ASSERT_TRUE(session.Start().ok());
  presence_.Join("j2", "dan");
  ASSERT_TRUE(session.Resync().ok());
  EXPECT_EQ(session.sync_count(), 2);
  EXPECT_THAT(Jams(), ElementsAre(Pair("j1", ElementsAre("ann", "bob")),
                                  Pair("j2", ElementsAre("cat", "dan"))));
}

}  // namespace
}  // namespace jambalancer
