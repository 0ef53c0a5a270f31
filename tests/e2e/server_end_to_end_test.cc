// Starts the real server on 127.0.0.1 (OS-chosen port) and drives it with the
// real client library over loopback.

#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/barrier.h"
#include "client/balancer_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/rpc/balancer_server.h"
#include "tests/testing/status_expectations.h"
#include "tests/testing/test_server.h"

namespace jambalancer {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;

constexpr char kUuidV4[] =
    "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

class ServerEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(7); }

  void StartServer(uint32_t max_users) {
    ServerOptions options = test::LoopbackOptions();
    options.max_users = max_users;
    server_ = test::StartServer(options);
    ASSERT_NE(server_, nullptr);
    client_ = NewClient();
  }

  std::string Target() const { return test::TargetOf(*server_); }
  std::unique_ptr<BalancerClient> NewClient() const {
    return test::NewClient(*server_);
  }

  // The unique_ptr destructor shuts the server down even if a test fails.
  std::unique_ptr<BalancerServer> server_;
  std::unique_ptr<BalancerClient> client_;
};

using test::ExpectInvalidArgument;

TEST_F(ServerEndToEndTest, CurrentJamOnEmptyServerGivesFreshIds) {
  auto first = client_->CurrentJam();
  auto second = client_->CurrentJam();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(first->new_jam());
  EXPECT_EQ(first->user_count(), 0u);
  EXPECT_THAT(first->jam_id(), MatchesRegex(kUuidV4));
  EXPECT_NE(first->jam_id(), second->jam_id());
}

TEST_F(ServerEndToEndTest, EveryRpcRoundTrips) {
  auto refreshed = client_->Refresh("jam-a", {"u1", "u2", "u3", "u2"});
  ASSERT_TRUE(refreshed.ok()) << refreshed.status();
  EXPECT_EQ(refreshed->user_count(), 3u);

  auto current = client_->CurrentJam();
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->jam_id(), "jam-a");
  EXPECT_EQ(current->user_count(), 3u);
  EXPECT_FALSE(current->new_jam());

  auto added = client_->AddUser("jam-a", "u4");
  ASSERT_TRUE(added.ok());
  EXPECT_TRUE(added->added());
  EXPECT_EQ(added->user_count(), 4u);
  EXPECT_THAT(added->redirect_jam_id(), IsEmpty());

  auto capacity = client_->HasCapacity("jam-a");
  ASSERT_TRUE(capacity.ok());
  EXPECT_TRUE(capacity->has_capacity());
  EXPECT_EQ(capacity->user_count(), 4u);
  EXPECT_EQ(capacity->max_users(), 7u);

  auto removed = client_->RemoveUser("jam-a", "u1");
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(removed->removed());
  EXPECT_EQ(removed->user_count(), 3u);

  auto not_removed = client_->RemoveUser("no-such-jam", "u1");
  ASSERT_TRUE(not_removed.ok());
  EXPECT_FALSE(not_removed->removed());

  ASSERT_TRUE(
      client_->Refresh("jam-b", {"x", "y", "z", "w", "v", "s", "t"}).ok());
  auto stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->jam_count(), 2u);
  EXPECT_EQ(stats->user_count(), 10u);
  EXPECT_EQ(stats->max_users(), 7u);
  EXPECT_EQ(stats->full_jam_count(), 1u);

  auto full = client_->AddUser("jam-b", "late");
  ASSERT_TRUE(full.ok());
  EXPECT_FALSE(full->added());
  EXPECT_EQ(full->user_count(), 7u);
  EXPECT_EQ(full->redirect_jam_id(), "jam-a");

  auto list = client_->ListJams(0, "");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->jams_size(), 2);
  EXPECT_EQ(list->jams(0).jam_id(), "jam-a");
  EXPECT_THAT(list->jams(0).user_ids(),
              ::testing::ElementsAre("u2", "u3", "u4"));
  EXPECT_EQ(list->jams(1).jam_id(), "jam-b");
  EXPECT_THAT(list->next_page_token(), IsEmpty());

  ASSERT_TRUE(client_->Refresh("jam-b", {}).ok());
  auto after_delete = client_->GetStats();
  ASSERT_TRUE(after_delete.ok());
  EXPECT_EQ(after_delete->jam_count(), 1u);
}

TEST_F(ServerEndToEndTest, InvalidRequestsNameTheFieldAndChangeNothing) {
  ASSERT_TRUE(client_->AddUser("jam", "alice").ok());

  ExpectInvalidArgument(client_->AddUser("", "bob").status(), "jam_id");
  ExpectInvalidArgument(client_->AddUser("jam", "").status(), "user_id");
  ExpectInvalidArgument(client_->AddUser("jam", "bad\nid").status(), "user_id");
  ExpectInvalidArgument(client_->AddUser(std::string(129, 'j'), "bob").status(),
                        "jam_id");
  ExpectInvalidArgument(client_->RemoveUser("jam", "\xff").status(), "user_id");
  ExpectInvalidArgument(client_->HasCapacity("").status(), "jam_id");
  ExpectInvalidArgument(client_->Refresh("jam", {"ok", ""}).status(),
                        "user_ids[1]");
  std::vector<std::string> too_many(1025);
  for (size_t i = 0; i < too_many.size(); ++i) {
    too_many[i] = absl::StrCat("u", i);
  }
  ExpectInvalidArgument(client_->Refresh("jam", too_many).status(), "user_ids");
  ExpectInvalidArgument(client_->ListJams(10, "garbage").status(),
                        "page_token");

  // Nothing changed, and the server still serves.
  auto list = client_->ListJams(0, "");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->jams_size(), 1);
  EXPECT_THAT(list->jams(0).user_ids(), ::testing::ElementsAre("alice"));
}

TEST_F(ServerEndToEndTest, RefreshAcceptsTheMaximumList) {
  std::vector<std::string> users(1024);
  for (size_t i = 0; i < users.size(); ++i) users[i] = absl::StrCat("u", i);
  auto refreshed = client_->Refresh("crowd", users);
  ASSERT_TRUE(refreshed.ok()) << refreshed.status();
  EXPECT_EQ(refreshed->user_count(), 1024u);
  auto capacity = client_->HasCapacity("crowd");
  ASSERT_TRUE(capacity.ok());
  EXPECT_FALSE(capacity->has_capacity());
}

TEST_F(ServerEndToEndTest, ListJamsPagesThroughEverything) {
  constexpr int kJams = 1234;
  for (int i = 0; i < kJams; ++i) {
    const std::string jam = absl::StrCat("jam-", 10000 + i);
    ASSERT_TRUE(client_->AddUser(jam, jam).ok());
  }
  auto first = client_->ListJams(0, "");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->jams_size(), 100);  // The default page size.

  auto capped = client_->ListJams(5000, "");
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->jams_size(), 1000);  // At most 1000 a page.

  std::vector<std::string> seen;
  std::string token;
  for (int page = 0; page < 100; ++page) {
    auto response = client_->ListJams(500, token);
    ASSERT_TRUE(response.ok()) << response.status();
    for (const v1::Jam& jam : response->jams()) seen.push_back(jam.jam_id());
    token = response->next_page_token();
    if (token.empty()) break;
  }
  ASSERT_EQ(seen.size(), static_cast<size_t>(kJams));
  for (int i = 0; i < kJams; ++i) {
    EXPECT_EQ(seen[i], absl::StrCat("jam-", 10000 + i));
  }
}

TEST_F(ServerEndToEndTest, ConcurrentAddUserToOneJamAdmitsExactlyMaxUsers) {
  constexpr int kClients = 48;
  std::vector<std::unique_ptr<BalancerClient>> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(NewClient());
  // Connect every channel first, so the calls really race.
  for (auto& client : clients) ASSERT_TRUE(client->HasCapacity("warm").ok());

  std::vector<absl::StatusOr<v1::AddUserResponse>> results(
      kClients, absl::UnknownError("not run"));
  absl::Barrier* start = new absl::Barrier(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      if (start->Block()) delete start;
      results[i] = clients[i]->AddUser("stage", absl::StrCat("user-", i));
    });
  }
  for (std::thread& t : threads) t.join();

  int added = 0;
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    if (result->added()) {
      ++added;
      EXPECT_LE(result->user_count(), 7u);
    } else {
      EXPECT_EQ(result->user_count(), 7u);
      EXPECT_THAT(result->redirect_jam_id(), Not("stage"));
      EXPECT_THAT(result->redirect_jam_id(), Not(IsEmpty()));
    }
  }
  EXPECT_EQ(added, 7);
  auto capacity = client_->HasCapacity("stage");
  ASSERT_TRUE(capacity.ok());
  EXPECT_EQ(capacity->user_count(), 7u);
  EXPECT_FALSE(capacity->has_capacity());
}

TEST_F(ServerEndToEndTest, ReservationRoundTrip) {
  const int64_t before_ms = absl::ToUnixMillis(absl::Now());
  auto seat = client_->CurrentJam("ann", absl::Seconds(30));
  ASSERT_TRUE(seat.ok()) << seat.status();
  EXPECT_TRUE(seat->new_jam());
  EXPECT_GE(seat->reservation_expires_unix_ms(), before_ms + 30'000);
  EXPECT_LE(seat->reservation_expires_unix_ms(),
            absl::ToUnixMillis(absl::Now()) + 30'000);

  // The fresh jam was recorded: the next arrival packs into it.
  auto next = client_->CurrentJam("bob");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->jam_id(), seat->jam_id());
  EXPECT_FALSE(next->new_jam());

  auto list = client_->ListJams(0, "");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->jams_size(), 1);
  EXPECT_EQ(list->jams(0).reserved_count(), 2u);
  auto stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->reservation_count(), 2u);
  EXPECT_EQ(stats->jam_count(), 1u);

  auto capacity = client_->HasCapacity(seat->jam_id(), "ann");
  ASSERT_TRUE(capacity.ok());
  EXPECT_TRUE(capacity->has_capacity());
  auto added = client_->AddUser(seat->jam_id(), "ann");
  ASSERT_TRUE(added.ok());
  EXPECT_TRUE(added->added());
  auto after = client_->GetStats();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->reservation_count(), 1u);
  EXPECT_EQ(after->user_count(), 1u);
}

TEST_F(ServerEndToEndTest, ReservationTimeIsDefaultedAndCapped) {
  // The fixture's server runs with the defaults: 15 s, capped at 2 min.
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  auto defaulted = client_->CurrentJam("ann");
  ASSERT_TRUE(defaulted.ok());
  EXPECT_NEAR(defaulted->reservation_expires_unix_ms(), now_ms + 15'000, 5'000);
  auto capped = client_->CurrentJam("bob", absl::Hours(5));
  ASSERT_TRUE(capped.ok());
  EXPECT_NEAR(capped->reservation_expires_unix_ms(), now_ms + 120'000, 5'000);
  // Without a user id nothing is reserved.
  auto plain = client_->CurrentJam();
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->reservation_expires_unix_ms(), 0u);
}

// (That the strand's timer expires seats with no call at all is shown in
// jam_balancer_test, where looking does not itself expire anything.)
TEST_F(ServerEndToEndTest, ReservationLapsesAfterItsTtl) {
  ASSERT_TRUE(client_->CurrentJam("ann", absl::Milliseconds(200)).ok());
  // Poll (bounded) until the seat is gone and the recorded jam with it.
  absl::StatusOr<v1::GetStatsResponse> stats;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  do {
    stats = client_->GetStats();
    ASSERT_TRUE(stats.ok());
  } while (stats->reservation_count() != 0 && absl::Now() < give_up &&
           (absl::SleepFor(absl::Milliseconds(20)), true));
  EXPECT_EQ(stats->reservation_count(), 0u);
  EXPECT_EQ(stats->jam_count(), 0u);
}

TEST_F(ServerEndToEndTest, InvalidOptionalUserIdsAreRejected) {
  ExpectInvalidArgument(client_->CurrentJam("bad\x01id").status(), "user_id");
  ExpectInvalidArgument(client_->CurrentJam(std::string(129, 'u')).status(),
                        "user_id");
  ExpectInvalidArgument(client_->HasCapacity("jam", "\n").status(), "user_id");
  auto stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->reservation_count(), 0u);
}

TEST_F(ServerEndToEndTest, BatchRunsOperationsInOrderAndAnswersEach) {
  v1::BatchRequest batch;
  auto add = [&](absl::string_view jam, absl::string_view user) {
    v1::AddUserRequest* op = batch.add_operations()->mutable_add_user();
    op->set_jam_id(std::string(jam));
    op->set_user_id(std::string(user));
  };
  batch.add_operations()->mutable_current_jam()->set_user_id("ann");
  for (int i = 0; i < 8; ++i) add("stage", absl::StrCat("u", i));
  batch.add_operations()->mutable_has_capacity()->set_jam_id("stage");
  batch.add_operations()->mutable_get_stats();
  auto response = client_->Batch(batch);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->results_size(), 11);
  EXPECT_TRUE(response->results(0).current_jam().new_jam());
  EXPECT_NE(response->results(0).current_jam().reservation_expires_unix_ms(),
            0u);
  // ann's seat is in a recorded jam, not "stage": 7 of 8 get in.
  for (int i = 0; i < 7; ++i) {
    EXPECT_TRUE(response->results(1 + i).add_user().added()) << i;
  }
  EXPECT_FALSE(response->results(8).add_user().added());
  EXPECT_EQ(response->results(8).add_user().redirect_jam_id(),
            response->results(0).current_jam().jam_id());
  EXPECT_FALSE(response->results(9).has_capacity().has_capacity());
  EXPECT_EQ(response->results(10).get_stats().user_count(), 7u);
  EXPECT_EQ(response->results(10).get_stats().reservation_count(), 1u);
}

TEST_F(ServerEndToEndTest, InvalidBatchNamesTheOperationAndRunsNothing) {
  v1::BatchRequest batch;
  v1::AddUserRequest* ok = batch.add_operations()->mutable_add_user();
  ok->set_jam_id("j");
  ok->set_user_id("ann");
  v1::RefreshRequest* bad = batch.add_operations()->mutable_refresh();
  bad->set_jam_id("j");
  bad->add_user_ids("bob");
  bad->add_user_ids("");
  ExpectInvalidArgument(client_->Batch(batch).status(),
                        "operations[1].refresh.user_ids[1]");
  batch.add_operations();  // No operation set.
  batch.mutable_operations()->DeleteSubrange(1, 1);
  ExpectInvalidArgument(client_->Batch(batch).status(), "operations[1]");
  auto stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->user_count(), 0u);  // Not even the valid first one ran.
}

TEST_F(ServerEndToEndTest, HealthIsServingUntilShutdown) {
  auto overall = client_->IsServing("");
  ASSERT_TRUE(overall.ok()) << overall.status();
  EXPECT_TRUE(*overall);
  auto service =
      client_->IsServing(v1::JamBalancerService::service_full_name());
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_TRUE(*service);
}

TEST_F(ServerEndToEndTest, CallsAfterShutdownFailUnavailable) {
  server_->Shutdown(absl::Seconds(1));
  BalancerClient::Options options;
  options.deadline = absl::Seconds(2);
  auto client = BalancerClient::Connect(Target(), options);
  EXPECT_EQ(client->CurrentJam().status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(ServerEndToEndTest, MaxUsersFlagIsHonoured) {
  StartServer(2);
  ASSERT_TRUE(client_->AddUser("j", "a").ok());
  ASSERT_TRUE(client_->AddUser("j", "b").ok());
  auto third = client_->AddUser("j", "c");
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->added());
  auto stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->max_users(), 2u);
}

}  // namespace
}  // namespace jambalancer
