// The C++ client library against a real server on loopback: what the
// client itself does (arguments into requests, statuses into absl::Status,
// deadlines, health checks). The RPCs' semantics are tested in
// tests/rpc/operations_test.

#include "client/balancer_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"
#include "server/rpc/balancer_server.h"
#include "server/rpc/pool_config.h"
#include "server/rpc/server_options.h"
#include "tests/testing/silent_listener.h"
#include "tests/testing/test_server.h"

namespace jambalancer {
namespace {

using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

using Stub = v1::JamBalancerService::Stub;

using test::SilentListener;

// One call of each method of the client, with valid arguments.
struct Method {
  std::string name;
  std::function<absl::Status(BalancerClient&)> call;
};
std::vector<Method> EveryMethod() {
  return {
      {"CurrentJam", [](BalancerClient& c) { return c.CurrentJam().status(); }},
      {"CurrentJam(user)",
       [](BalancerClient& c) {
         return c.CurrentJam("ann", absl::Seconds(1)).status();
       }},
      {"Refresh",
       [](BalancerClient& c) { return c.Refresh("jam", {"ann"}).status(); }},
      {"RemoveUser",
       [](BalancerClient& c) { return c.RemoveUser("jam", "ann").status(); }},
      {"HasCapacity",
       [](BalancerClient& c) { return c.HasCapacity("jam").status(); }},
      {"AddUser",
       [](BalancerClient& c) { return c.AddUser("jam", "ann").status(); }},
      {"GetStats", [](BalancerClient& c) { return c.GetStats().status(); }},
      {"ListJams",
       [](BalancerClient& c) { return c.ListJams(0, "").status(); }},
      {"Batch",
       [](BalancerClient& c) { return c.Batch(v1::BatchRequest()).status(); }},
      {"IsServing", [](BalancerClient& c) { return c.IsServing().status(); }},
      {"KeepAlive", [](BalancerClient& c) { return c.KeepAlive().status(); }},
      {"EndSession", [](BalancerClient& c) { return c.EndSession().status(); }},
      {"ListSessions",
       [](BalancerClient& c) { return c.ListSessions().status(); }},
      {"GetJam", [](BalancerClient& c) { return c.GetJam("jam").status(); }},
      {"Sync",
       [](BalancerClient& c) {
         return c.Sync(absl::ZeroDuration(), {{"jam", {"ann"}}}).status();
       }},
  };
}

// `text` (protobuf text format) as a Message.
template <typename Message>
Message Proto(const std::string& text) {
  Message message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message))
      << text;
  return message;
}

// Expects `got` to be the error `want` as an absl::Status.
void ExpectSameError(const absl::Status& got, const grpc::Status& want) {
  EXPECT_FALSE(want.ok());
  EXPECT_EQ(static_cast<int>(got.code()), static_cast<int>(want.error_code()))
      << got;
  EXPECT_EQ(got.message(), want.error_message());
}

class BalancerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = test::StartServer();
    ASSERT_NE(server_, nullptr);
    client_ = test::NewClient(*server_);
    stub_ = v1::JamBalancerService::NewStub(grpc::CreateChannel(
        test::TargetOf(*server_), grpc::InsecureChannelCredentials()));
  }

  // The status the server answers `request` with, called with the generated
  // stub rather than the client library.
  template <typename Request, typename Response>
  grpc::Status Direct(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                   const Request&, Response*),
                      const Request& request) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    Response response;
    return (stub_.get()->*method)(&context, request, &response);
  }

  std::unique_ptr<BalancerServer> server_;
  std::unique_ptr<BalancerClient> client_;
  std::unique_ptr<Stub> stub_;
};

TEST_F(BalancerClientTest, ServerErrorsKeepTheirCodeAndMessage) {
  ExpectSameError(client_->CurrentJam("bad\x01").status(),
                  Direct(&Stub::CurrentJam, Proto<v1::CurrentJamRequest>(
                                                R"pb(user_id: "bad\001")pb")));
  ExpectSameError(
      client_->Refresh("jam", {"ok", ""}).status(),
      Direct(&Stub::Refresh,
             Proto<v1::RefreshRequest>(R"pb(jam_id: "jam"
                                            user_ids: [ "ok", "" ])pb")));
  ExpectSameError(client_->RemoveUser("", "ann").status(),
                  Direct(&Stub::RemoveUser, Proto<v1::RemoveUserRequest>(
                                                R"pb(user_id: "ann")pb")));
  ExpectSameError(client_->HasCapacity("jam", "\n").status(),
                  Direct(&Stub::HasCapacity, Proto<v1::HasCapacityRequest>(
                                                 R"pb(jam_id: "jam"
                                                      user_id: "\n")pb")));
  ExpectSameError(client_->ListJams(10, "garbage").status(),
                  Direct(&Stub::ListJams,
                         Proto<v1::ListJamsRequest>(
                             R"pb(page_size: 10 page_token: "garbage")pb")));
  const v1::BatchRequest batch =
      Proto<v1::BatchRequest>("operations {}");  // No operation set.
  ExpectSameError(client_->Batch(batch).status(), Direct(&Stub::Batch, batch));

  // This client speaks for no front end.
  ExpectSameError(client_->KeepAlive().status(),
                  Direct(&Stub::KeepAlive, v1::KeepAliveRequest()));
  ExpectSameError(client_->EndSession().status(),
                  Direct(&Stub::EndSession, v1::EndSessionRequest()));

  const absl::Status add = client_->AddUser("jam", "").status();
  ExpectSameError(add, Direct(&Stub::AddUser, Proto<v1::AddUserRequest>(
                                                  R"pb(jam_id: "jam")pb")));
  EXPECT_EQ(add, absl::InvalidArgumentError("user_id must not be empty"));
}

TEST_F(BalancerClientTest, EveryMethodFailsUnavailableOnceTheServerIsDown) {
  ASSERT_TRUE(client_->GetStats().ok());  // Connected first.
  server_->Shutdown(absl::Seconds(1));
  for (const Method& method : EveryMethod()) {
    const absl::Status status = method.call(*client_);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable)
        << method.name << ": " << status;
    EXPECT_THAT(status.message(), Not(IsEmpty())) << method.name;
  }
}

TEST(BalancerClientDeadlineTest, EveryMethodGivesUpAtTheDeadline) {
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  BalancerClient::Options options;
  options.deadline = absl::Milliseconds(500);
  std::unique_ptr<BalancerClient> client = BalancerClient::Connect(
      absl::StrCat("127.0.0.1:", silent.port()), options);
  for (const Method& method : EveryMethod()) {
    const absl::Time start = absl::Now();
    const absl::Status status = method.call(*client);
    EXPECT_THAT(status.code(), AnyOf(absl::StatusCode::kDeadlineExceeded,
                                     absl::StatusCode::kUnavailable))
        << method.name << ": " << status;
    EXPECT_LT(absl::Now() - start, absl::Seconds(30)) << method.name;
  }
}

TEST(BalancerClientDeadlineTest, DefaultDeadlineIsFiveSeconds) {
  EXPECT_EQ(BalancerClient::Options().deadline, absl::Seconds(5));
}

TEST_F(BalancerClientTest, CurrentJamSendsTheReservationTime) {
  struct Case {
    std::string user;
    absl::Duration ttl;
    int64_t expected_ms;  // The reservation the server grants.
  };
  const std::vector<Case> cases = {
      {"ann", absl::Seconds(45), 45'000},
      {"bob", absl::Milliseconds(1500), 1'500},
      {"cat", absl::ZeroDuration(), 15'000},  // The server's default.
      {"dan", absl::Seconds(-5), 15'000},     // Not positive: the default.
      {"eve", absl::Hours(1), 120'000},       // Capped by the server.
      {"fay", absl::Microseconds(1500), 1},   // Whole milliseconds.
  };
  for (const Case& c : cases) {
    const int64_t before_ms = absl::ToUnixMillis(absl::Now());
    absl::StatusOr<v1::CurrentJamResponse> seat =
        client_->CurrentJam(c.user, c.ttl);
    const int64_t after_ms = absl::ToUnixMillis(absl::Now());
    ASSERT_TRUE(seat.ok()) << c.user << ": " << seat.status();
    const auto expires =
        static_cast<int64_t>(seat->reservation_expires_unix_ms());
    EXPECT_GE(expires, before_ms + c.expected_ms) << c.user;
    EXPECT_LE(expires, after_ms + c.expected_ms) << c.user;
  }
}

TEST_F(BalancerClientTest, IsServingOnALiveServer) {
  absl::StatusOr<bool> server = client_->IsServing("");
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(*server);
  absl::StatusOr<bool> service =
      client_->IsServing(v1::JamBalancerService::service_full_name());
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_TRUE(*service);
  // The health service does not know this one: the check itself fails.
  EXPECT_EQ(client_->IsServing("no.such.Service").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(BalancerClientTest, ArgumentsReachTheServer) {
  auto refreshed = client_->Refresh("a", {"x", "y", "x"});
  ASSERT_TRUE(refreshed.ok()) << refreshed.status();
  EXPECT_EQ(refreshed->user_count(), 2u);
  ASSERT_TRUE(client_->AddUser("b", "z").ok());

  auto first = client_->ListJams(1, "");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->jams_size(), 1);
  EXPECT_EQ(first->jams(0).jam_id(), "a");
  EXPECT_THAT(first->jams(0).user_ids(), ElementsAre("x", "y"));
  auto second = client_->ListJams(1, first->next_page_token());
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->jams_size(), 1);
  EXPECT_EQ(second->jams(0).jam_id(), "b");
  EXPECT_THAT(second->next_page_token(), IsEmpty());

  // With a user id, a member always has capacity.
  ASSERT_TRUE(
      client_->Refresh("full", {"1", "2", "3", "4", "5", "6", "7"}).ok());
  auto anyone = client_->HasCapacity("full");
  ASSERT_TRUE(anyone.ok());
  EXPECT_FALSE(anyone->has_capacity());
  auto member = client_->HasCapacity("full", "7");
  ASSERT_TRUE(member.ok());
  EXPECT_TRUE(member->has_capacity());

  auto removed = client_->RemoveUser("a", "y");
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(removed->removed());
  EXPECT_EQ(removed->user_count(), 1u);
}

TEST_F(BalancerClientTest, BatchRoundTrip) {
  const v1::BatchRequest batch = Proto<v1::BatchRequest>(R"pb(
    operations { refresh { jam_id: "jam" user_ids: "ann" } }
    operations { add_user { jam_id: "jam" user_id: "bob" } }
    operations { current_jam {} }
    operations { get_stats {} }
  )pb");
  absl::StatusOr<v1::BatchResponse> response = client_->Batch(batch);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->results_size(), 4);
  EXPECT_EQ(response->results(0).refresh().user_count(), 1u);
  EXPECT_TRUE(response->results(1).add_user().added());
  EXPECT_EQ(response->results(1).add_user().user_count(), 2u);
  EXPECT_EQ(response->results(2).current_jam().jam_id(), "jam");
  EXPECT_EQ(response->results(2).current_jam().user_count(), 2u);
  EXPECT_EQ(response->results(3).get_stats().user_count(), 2u);
  EXPECT_EQ(response->results(3).get_stats().max_users(), 7u);

  // The same operations ran on the server: it holds what the batch made.
  auto stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->jam_count(), 1u);
  EXPECT_EQ(stats->user_count(), 2u);
}

// Front ends' sessions, with a server whose jams are never closed for a
// resync after its start (a window tested in tests/core), so that AddUser of
// a new user succeeds at once.
class FrontEndClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options = test::LoopbackOptions();
    options.resync_grace = absl::ZeroDuration();
    server_ = test::StartServer(options);
    ASSERT_NE(server_, nullptr);
    anonymous_ = test::NewClient(*server_);
  }

  // A client of the server that speaks for `frontend_id`.
  std::unique_ptr<BalancerClient> FrontEnd(
      const std::string& frontend_id,
      absl::Duration deadline = absl::Seconds(10)) {
    BalancerClient::Options options;
    options.deadline = deadline;
    options.frontend_id = frontend_id;
    return BalancerClient::Connect(test::TargetOf(*server_), options);
  }

  // Every jam of the server, from all pages (of 100 jams: a page of large
  // jams must stay below gRPC's 4 MB message limit).
  std::vector<v1::Jam> AllJams() {
    std::vector<v1::Jam> jams;
    std::string token;
    for (int page = 0; page < 1000; ++page) {  // Bounded: 1e5 jams.
      absl::StatusOr<v1::ListJamsResponse> listed =
          anonymous_->ListJams(100, token);
      EXPECT_TRUE(listed.ok()) << listed.status();
      if (!listed.ok()) break;
      jams.insert(jams.end(), listed->jams().begin(), listed->jams().end());
      token = listed->next_page_token();
      if (token.empty()) break;
    }
    return jams;
  }

  std::unique_ptr<BalancerServer> server_;
  std::unique_ptr<BalancerClient> anonymous_;
};

// (jam id, members) of each jam, for comparing with ElementsAre.
std::vector<std::pair<std::string, std::vector<std::string>>> Members(
    const std::vector<v1::Jam>& jams) {
  std::vector<std::pair<std::string, std::vector<std::string>>> members;
  for (const v1::Jam& jam : jams) {
    members.emplace_back(
        jam.jam_id(),
        std::vector<std::string>(jam.user_ids().begin(), jam.user_ids().end()));
  }
  return members;
}
using JamList = std::vector<std::pair<std::string, std::vector<std::string>>>;

TEST_F(FrontEndClientTest, CallsOfAFrontEndNeedItsSessionUntilSynced) {
  std::unique_ptr<BalancerClient> fe = FrontEnd("fe-1");
  const std::vector<Method> fenced = {
      {"CurrentJam", [](BalancerClient& c) { return c.CurrentJam().status(); }},
      {"CurrentJam(user)",
       [](BalancerClient& c) { return c.CurrentJam("ann").status(); }},
      {"Refresh",
       [](BalancerClient& c) { return c.Refresh("jam", {"ann"}).status(); }},
      {"RemoveUser",
       [](BalancerClient& c) { return c.RemoveUser("jam", "ann").status(); }},
      {"AddUser",
       [](BalancerClient& c) { return c.AddUser("jam", "bob").status(); }},
      {"KeepAlive", [](BalancerClient& c) { return c.KeepAlive().status(); }},
      {"EndSession", [](BalancerClient& c) { return c.EndSession().status(); }},
  };
  for (const Method& method : fenced) {
    const absl::Status status = method.call(*fe);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition)
        << method.name << ": " << status;
    EXPECT_THAT(status.message(),
                HasSubstr("front end fe-1 has no live session"))
        << method.name;
  }
  // Nothing of that reached the jams; anonymous calls are not fenced.
  EXPECT_THAT(AllJams(), IsEmpty());
  ASSERT_TRUE(anonymous_->AddUser("jam", "cat").ok());

  absl::StatusOr<v1::SyncResponse> synced = fe->Sync(absl::ZeroDuration(), {});
  ASSERT_TRUE(synced.ok()) << synced.status();
  for (const Method& method : fenced) {
    if (method.name == "EndSession") continue;  // Below.
    EXPECT_TRUE(method.call(*fe).ok()) << method.name;
  }
  EXPECT_THAT(Members(AllJams()),
              ElementsAre(JamList::value_type{"jam", {"bob", "cat"}}));
  // Another front end still has none.
  EXPECT_EQ(FrontEnd("fe-2")->AddUser("jam", "dan").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(FrontEndClientTest, SyncSendsTheLeaseAndTheJams) {
  std::unique_ptr<BalancerClient> fe = FrontEnd("fe-1");
  struct Case {
    absl::Duration lease;
    int64_t expected_ms;  // The lease the server grants.
  };
  const std::vector<Case> cases = {
      {absl::Milliseconds(1500), 1'500},
      {absl::ZeroDuration(), 10'000},      // The server's default.
      {absl::Seconds(-1), 10'000},         // Not positive: the default.
      {absl::Hours(2), 300'000},           // Capped by the server.
      {absl::Microseconds(900'400), 900},  // Whole milliseconds.
  };
  for (const Case& c : cases) {
    const int64_t before_ms = absl::ToUnixMillis(absl::Now());
    absl::StatusOr<v1::SyncResponse> synced =
        fe->Sync(c.lease, {{"j1", {"ann", "bob"}}, {"j2", {"cat"}}});
    const int64_t after_ms = absl::ToUnixMillis(absl::Now());
    ASSERT_TRUE(synced.ok()) << c.lease << ": " << synced.status();
    const auto expires = static_cast<int64_t>(synced->lease_expires_unix_ms());
    EXPECT_GE(expires, before_ms + c.expected_ms) << c.lease;
    EXPECT_LE(expires, after_ms + c.expected_ms) << c.lease;
    EXPECT_EQ(synced->jam_count(), 2u);
    EXPECT_EQ(synced->user_count(), 3u);
  }
  // The server refuses leases shorter than 500 ms, naming the field.
  EXPECT_EQ(fe->Sync(absl::Milliseconds(499), {}).status(),
            absl::InvalidArgumentError(
                "messages[0].lease_ttl_ms must be 0 (the server's default) "
                "or at least 500, got 499"));
}

TEST_F(FrontEndClientTest, SyncReplacesEverythingTheFrontEndOwns) {
  std::unique_ptr<BalancerClient> fe = FrontEnd("fe-1");
  ASSERT_TRUE(anonymous_->AddUser("j1", "zed").ok());
  ASSERT_TRUE(fe->Sync(absl::ZeroDuration(),
                       {{"j1", {"ann", "bob"}}, {"j2", {"cat"}}, {"j3", {}}})
                  .ok());
  EXPECT_THAT(Members(AllJams()),
              ElementsAre(JamList::value_type{"j1", {"ann", "bob", "zed"}},
                          JamList::value_type{"j2", {"cat"}}));

  absl::StatusOr<v1::SyncResponse> second =
      fe->Sync(absl::ZeroDuration(), {{"j2", {"bob"}}});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->jam_count(), 1u);
  EXPECT_EQ(second->user_count(), 1u);
  // Its users not listed are gone; other owners' users stay.
  EXPECT_THAT(Members(AllJams()),
              ElementsAre(JamList::value_type{"j1", {"zed"}},
                          JamList::value_type{"j2", {"bob"}}));

  // No jams: one message naming the front end, which then hosts nothing.
  absl::StatusOr<v1::SyncResponse> empty = fe->Sync(absl::ZeroDuration(), {});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->user_count(), 0u);
  EXPECT_THAT(Members(AllJams()),
              ElementsAre(JamList::value_type{"j1", {"zed"}}));
}

// 300 jams of 1000 users: more than 4 MB, gRPC's default limit of one
// message, so the client must split it, and the server must put the
// messages back together.
TEST_F(FrontEndClientTest, SyncLargerThanOneMessageArrivesWhole) {
  constexpr int kJams = 300;
  constexpr int kUsersPerJam = 1000;
  std::vector<BalancerClient::JamUsers> jams(kJams);
  v1::SyncRequest as_one_message;
  for (int j = 0; j < kJams; ++j) {
    jams[j].jam_id = absl::StrFormat("jam-%03d", j);
    for (int u = 0; u < kUsersPerJam; ++u) {
      jams[j].user_ids.push_back(absl::StrFormat("user-%03d-%04d-x", j, u));
    }
    v1::JamMembers* members = as_one_message.add_jams();
    members->set_jam_id(jams[j].jam_id);
    members->mutable_user_ids()->Add(jams[j].user_ids.begin(),
                                     jams[j].user_ids.end());
  }
  ASSERT_GT(as_one_message.ByteSizeLong(), 4u << 20);

  std::unique_ptr<BalancerClient> fe = FrontEnd("fe-1", absl::Seconds(60));
  absl::StatusOr<v1::SyncResponse> synced = fe->Sync(absl::Seconds(60), jams);
  ASSERT_TRUE(synced.ok()) << synced.status();
  EXPECT_EQ(synced->jam_count(), static_cast<uint64_t>(kJams));
  EXPECT_EQ(synced->user_count(), static_cast<uint64_t>(kJams) * kUsersPerJam);

  const std::vector<v1::Jam> stored = AllJams();
  ASSERT_THAT(stored, SizeIs(kJams));
  for (int j = 0; j < kJams; ++j) {
    EXPECT_EQ(stored[j].jam_id(), jams[j].jam_id);
    // Both in byte order.
    EXPECT_TRUE(std::equal(stored[j].user_ids().begin(),
                           stored[j].user_ids().end(), jams[j].user_ids.begin(),
                           jams[j].user_ids.end()))
        << jams[j].jam_id;
  }
  absl::StatusOr<v1::ListSessionsResponse> sessions = fe->ListSessions();
  ASSERT_TRUE(sessions.ok()) << sessions.status();
  ASSERT_THAT(sessions->sessions(), SizeIs(1));
  EXPECT_EQ(sessions->sessions(0).member_count(),
            static_cast<uint64_t>(kJams) * kUsersPerJam);
}

// Where the client splits a Sync shows in the server's error for a bad jam:
// it names the message and the jam's place in it.
TEST_F(FrontEndClientTest, SyncSplitsAtTheJamAndByteLimits) {
  std::unique_ptr<BalancerClient> fe = FrontEnd("fe-1");
  const int per_message = BalancerClient::kMaxSyncMessageJams;
  std::vector<BalancerClient::JamUsers> small(per_message + 2);
  for (size_t j = 0; j < small.size(); ++j) {
    small[j] = {absl::StrCat("jam-", j), {absl::StrCat("user-", j)}};
  }
  small[per_message + 1].jam_id = "";
  EXPECT_EQ(fe->Sync(absl::ZeroDuration(), small).status(),
            absl::InvalidArgumentError(
                "messages[1].jams[1].jam_id must not be empty"));

  // 1000 users of 100 bytes: about 102 KB a jam, 10 jams in 1 MB.
  std::vector<BalancerClient::JamUsers> large(25);
  for (size_t j = 0; j < large.size(); ++j) {
    large[j].jam_id = absl::StrCat("jam-", j);
    for (int u = 0; u < 1000; ++u) {
      large[j].user_ids.push_back(
          absl::StrFormat("%03d-%04d-%s", j, u, std::string(91, 'u')));
    }
  }
  large.back().user_ids.back() = "bad\x01";
  const absl::Status status = fe->Sync(absl::ZeroDuration(), large).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  // The first message holds 10 of these jams, the next ones too.
  EXPECT_THAT(status.message(), HasSubstr("messages[2].jams[4].user_ids[999]"));
  // A failed Sync changes nothing, and starts no session.
  EXPECT_THAT(AllJams(), IsEmpty());
  EXPECT_EQ(fe->KeepAlive().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(FrontEndClientTest, KeepAliveRenewsTheLease) {
  std::unique_ptr<BalancerClient> fe = FrontEnd("fe-1");
  ASSERT_TRUE(fe->Sync(absl::Seconds(2), {{"j1", {"ann"}}}).ok());
  for (int i = 0; i < 3; ++i) {
    const int64_t before_ms = absl::ToUnixMillis(absl::Now());
    absl::StatusOr<v1::KeepAliveResponse> renewed = fe->KeepAlive();
    const int64_t after_ms = absl::ToUnixMillis(absl::Now());
    ASSERT_TRUE(renewed.ok()) << renewed.status();
    // The lease of the Sync, counted again from now.
    const auto expires = static_cast<int64_t>(renewed->lease_expires_unix_ms());
    EXPECT_GE(expires, before_ms + 2'000);
    EXPECT_LE(expires, after_ms + 2'000);

    absl::StatusOr<v1::ListSessionsResponse> sessions = fe->ListSessions();
    ASSERT_TRUE(sessions.ok()) << sessions.status();
    ASSERT_THAT(sessions->sessions(), SizeIs(1));
    EXPECT_EQ(sessions->sessions(0).lease_expires_unix_ms(),
              renewed->lease_expires_unix_ms());
  }
}

TEST_F(FrontEndClientTest, EndSessionRemovesTheFrontEndsUsers) {
  std::unique_ptr<BalancerClient> fe = FrontEnd("fe-1");
  ASSERT_TRUE(anonymous_->AddUser("j1", "zed").ok());
  ASSERT_TRUE(
      fe->Sync(absl::ZeroDuration(), {{"j1", {"ann", "bob"}}, {"j2", {"cat"}}})
          .ok());
  ASSERT_TRUE(fe->CurrentJam("dan").ok());  // A reservation it owns.

  absl::StatusOr<v1::EndSessionResponse> ended = fe->EndSession();
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->removed_user_count(), 3u);  // Reservations not counted.
  EXPECT_THAT(Members(AllJams()),
              ElementsAre(JamList::value_type{"j1", {"zed"}}));
  absl::StatusOr<v1::GetStatsResponse> stats = anonymous_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->session_count(), 0u);
  EXPECT_EQ(stats->reservation_count(), 0u);
  // Ended: its calls are fenced again.
  EXPECT_EQ(fe->KeepAlive().status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fe->EndSession().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(FrontEndClientTest, ListSessionsInFrontEndIdOrder) {
  absl::StatusOr<v1::ListSessionsResponse> none = anonymous_->ListSessions();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_THAT(none->sessions(), IsEmpty());

  std::unique_ptr<BalancerClient> b = FrontEnd("fe-b");
  std::unique_ptr<BalancerClient> a = FrontEnd("fe-a");
  ASSERT_TRUE(b->Sync(absl::Seconds(30), {{"j1", {"ann", "bob"}}}).ok());
  ASSERT_TRUE(a->Sync(absl::Seconds(60), {{"j2", {"cat"}}}).ok());
  ASSERT_TRUE(a->CurrentJam("dan").ok());
  ASSERT_TRUE(a->CurrentJam("eve").ok());

  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  absl::StatusOr<v1::ListSessionsResponse> listed = anonymous_->ListSessions();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(listed->sessions(), SizeIs(2));
  const v1::Session& first = listed->sessions(0);
  const v1::Session& second = listed->sessions(1);
  EXPECT_EQ(first.frontend_id(), "fe-a");
  EXPECT_EQ(first.member_count(), 1u);
  EXPECT_EQ(first.reservation_count(), 2u);
  EXPECT_GT(static_cast<int64_t>(first.lease_expires_unix_ms()),
            now_ms + 30'000);
  EXPECT_EQ(second.frontend_id(), "fe-b");
  EXPECT_EQ(second.member_count(), 2u);
  EXPECT_EQ(second.reservation_count(), 0u);
  EXPECT_LE(static_cast<int64_t>(second.lease_expires_unix_ms()),
            now_ms + 30'000);

  absl::StatusOr<v1::GetStatsResponse> stats = anonymous_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->session_count(), 2u);
}

TEST_F(FrontEndClientTest, GetJamShowsEveryFrontEndsMembers) {
  std::unique_ptr<BalancerClient> a = FrontEnd("fe-a");
  std::unique_ptr<BalancerClient> b = FrontEnd("fe-b");
  ASSERT_TRUE(a->Sync(absl::ZeroDuration(), {{"j1", {"ann"}}}).ok());
  ASSERT_TRUE(b->Sync(absl::ZeroDuration(), {{"j1", {"bob"}}}).ok());
  absl::StatusOr<v1::GetJamResponse> jam = anonymous_->GetJam("j1");
  ASSERT_TRUE(jam.ok()) << jam.status();
  EXPECT_EQ(jam->jam_id(), "j1");
  EXPECT_EQ(jam->max_users(), 7u);
  ASSERT_THAT(jam->members(), SizeIs(2));
  EXPECT_EQ(jam->members(0).user_id(), "ann");
  EXPECT_EQ(jam->members(0).frontend_id(), "fe-a");
  EXPECT_EQ(jam->members(1).user_id(), "bob");
  EXPECT_EQ(jam->members(1).frontend_id(), "fe-b");
  EXPECT_EQ(anonymous_->GetJam("").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FrontEndClientTest, RemoveUserCanHoldTheSeat) {
  std::unique_ptr<BalancerClient> fe = FrontEnd("fe-1");
  ASSERT_TRUE(fe->Sync(absl::ZeroDuration(),
                       {{"j1", {"ann", "bob"}}, {"j2", {"cat", "dan"}}})
                  .ok());
  absl::StatusOr<v1::RemoveUserResponse> held =
      fe->RemoveUser("j1", "ann", absl::Seconds(30));
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_TRUE(held->removed());
  EXPECT_EQ(held->user_count(), 1u);
  absl::StatusOr<v1::RemoveUserResponse> released =
      fe->RemoveUser("j2", "cat");  // No hold.
  ASSERT_TRUE(released.ok()) << released.status();

  const std::vector<v1::Jam> jams = AllJams();
  ASSERT_THAT(jams, SizeIs(2));
  EXPECT_EQ(jams[0].reserved_count(), 1u);  // ann's seat in j1.
  EXPECT_EQ(jams[1].reserved_count(), 0u);
  // ann reloads the page: back to j1, though j2 is as full.
  absl::StatusOr<v1::CurrentJamResponse> back = fe->CurrentJam("ann");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->jam_id(), "j1");
}

TEST_F(FrontEndClientTest, AFrontEndRemovesOnlyItsOwnUsers) {
  std::unique_ptr<BalancerClient> fe = FrontEnd("fe-1");
  ASSERT_TRUE(fe->Sync(absl::ZeroDuration(), {{"j1", {"ann"}}}).ok());
  ASSERT_TRUE(anonymous_->AddUser("j1", "zed").ok());
  absl::StatusOr<v1::RemoveUserResponse> other = fe->RemoveUser("j1", "zed");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_FALSE(other->removed());
  absl::StatusOr<v1::AddUserResponse> added = fe->AddUser("j1", "bob");
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_TRUE(added->added());
  absl::StatusOr<v1::RefreshResponse> refreshed = fe->Refresh("j1", {"cat"});
  ASSERT_TRUE(refreshed.ok()) << refreshed.status();
  EXPECT_EQ(refreshed->user_count(), 2u);  // cat, and zed who is not its.
  EXPECT_THAT(Members(AllJams()),
              ElementsAre(JamList::value_type{"j1", {"cat", "zed"}}));
}

// A server with the pools duo (2 users per jam) and rock (4) besides the
// default pool (7).
class PoolsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options = test::LoopbackOptions();
    options.pools = {PoolConfig{.name = "duo", .max_users = 2},
                     PoolConfig{.name = "rock", .max_users = 4}};
    server_ = test::StartServer(options);
    ASSERT_NE(server_, nullptr);
    anonymous_ = test::NewClient(*server_);
    BalancerClient::Options fe;
    fe.frontend_id = "fe";
    fe_ = BalancerClient::Connect(test::TargetOf(*server_), fe);
  }

  // The ids of `pool`'s jams.
  std::vector<std::string> JamIds(absl::string_view pool) {
    absl::StatusOr<v1::ListJamsResponse> listed =
        anonymous_->ListJams(0, "", pool);
    EXPECT_TRUE(listed.ok()) << listed.status();
    std::vector<std::string> ids;
    if (listed.ok()) {
      for (const v1::Jam& jam : listed->jams()) ids.push_back(jam.jam_id());
    }
    return ids;
  }

  std::unique_ptr<BalancerServer> server_;
  std::unique_ptr<BalancerClient> anonymous_;
  std::unique_ptr<BalancerClient> fe_;
};

TEST_F(PoolsClientTest, EveryCallOfAPoolStaysInIt) {
  // The same jam and user ids in two pools are two jams and two members.
  ASSERT_TRUE(anonymous_->AddUser("j", "ann", "duo").ok());
  ASSERT_TRUE(anonymous_->AddUser("j", "bob", "duo").ok());
  absl::StatusOr<v1::AddUserResponse> full =
      anonymous_->AddUser("j", "cat", "duo");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_FALSE(full->added());  // duo's jams hold 2.
  absl::StatusOr<v1::AddUserResponse> rock =
      anonymous_->AddUser("j", "ann", "rock");
  ASSERT_TRUE(rock.ok()) << rock.status();
  EXPECT_TRUE(rock->added());
  EXPECT_EQ(rock->user_count(), 1u);

  absl::StatusOr<v1::HasCapacityResponse> capacity =
      anonymous_->HasCapacity("j", "", "rock");
  ASSERT_TRUE(capacity.ok()) << capacity.status();
  EXPECT_TRUE(capacity->has_capacity());
  EXPECT_EQ(capacity->max_users(), 4u);
  absl::StatusOr<v1::CurrentJamResponse> current =
      anonymous_->CurrentJam("dan", absl::ZeroDuration(), "duo");
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_NE(current->jam_id(), "j");  // Full in duo.
  ASSERT_TRUE(anonymous_->Refresh("r", {"eve", "fay"}, "rock").ok());
  absl::StatusOr<v1::RemoveUserResponse> removed =
      anonymous_->RemoveUser("r", "eve", absl::ZeroDuration(), "rock");
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_TRUE(removed->removed());
  absl::StatusOr<v1::GetJamResponse> jam = anonymous_->GetJam("j", "duo");
  ASSERT_TRUE(jam.ok()) << jam.status();
  EXPECT_EQ(jam->members_size(), 2);
  EXPECT_EQ(jam->max_users(), 2u);

  EXPECT_THAT(JamIds("duo"), UnorderedElementsAre("j", current->jam_id()));
  EXPECT_THAT(JamIds("rock"), ElementsAre("j", "r"));
  EXPECT_THAT(JamIds(""), IsEmpty());
  absl::StatusOr<v1::GetStatsResponse> stats = anonymous_->GetStats("rock");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->user_count(), 2u);
  EXPECT_EQ(stats->max_users(), 4u);
  absl::StatusOr<v1::GetStatsResponse> by_name =
      anonymous_->GetStats(BalancerClient::kDefaultPool);
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(by_name->user_count(), 0u);
  EXPECT_EQ(by_name->max_users(), 7u);
}

TEST_F(PoolsClientTest, AnUnconfiguredPoolIsNotFound) {
  const std::vector<Method> calls = {
      {"CurrentJam",
       [](BalancerClient& c) {
         return c.CurrentJam("ann", absl::ZeroDuration(), "nope").status();
       }},
      {"Refresh",
       [](BalancerClient& c) {
         return c.Refresh("j", {"ann"}, "nope").status();
       }},
      {"RemoveUser",
       [](BalancerClient& c) {
         return c.RemoveUser("j", "ann", absl::ZeroDuration(), "nope").status();
       }},
      {"HasCapacity",
       [](BalancerClient& c) {
         return c.HasCapacity("j", "", "nope").status();
       }},
      {"AddUser",
       [](BalancerClient& c) {
         return c.AddUser("j", "ann", "nope").status();
       }},
      {"GetStats",
       [](BalancerClient& c) { return c.GetStats("nope").status(); }},
      {"ListJams",
       [](BalancerClient& c) { return c.ListJams(0, "", "nope").status(); }},
      {"Batch",
       [](BalancerClient& c) {
         v1::BatchRequest batch;
         batch.set_pool("nope");
         batch.add_operations()->mutable_get_stats();
         return c.Batch(batch).status();
       }},
      {"ListSessions",
       [](BalancerClient& c) { return c.ListSessions("nope").status(); }},
      {"GetJam",
       [](BalancerClient& c) { return c.GetJam("j", "nope").status(); }},
      {"Sync",
       [](BalancerClient& c) {
         return c.Sync(absl::ZeroDuration(), {{"j", {"ann"}, "nope"}}).status();
       }},
  };
  for (const Method& method : calls) {
    const absl::Status status = method.call(*fe_);
    EXPECT_EQ(status.code(), absl::StatusCode::kNotFound)
        << method.name << ": " << status;
    EXPECT_THAT(status.message(), HasSubstr("\"nope\"")) << method.name;
  }
}

TEST_F(PoolsClientTest, BatchRunsInItsPool) {
  const v1::BatchRequest batch = Proto<v1::BatchRequest>(R"pb(
    pool: "duo"
    operations { add_user { jam_id: "j" user_id: "ann" } }
    operations { add_user { jam_id: "j" user_id: "bob" } }
    operations { add_user { jam_id: "j" user_id: "cat" pool: "duo" } }
    operations { get_stats {} }
  )pb");
  absl::StatusOr<v1::BatchResponse> done = anonymous_->Batch(batch);
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->results_size(), 4);
  EXPECT_FALSE(done->results(2).add_user().added());  // duo holds 2.
  EXPECT_EQ(done->results(3).get_stats().max_users(), 2u);
  EXPECT_EQ(done->results(3).get_stats().user_count(), 2u);
  EXPECT_THAT(JamIds("duo"), ElementsAre("j"));
  EXPECT_THAT(JamIds(""), IsEmpty());

  // An operation of another pool: the whole batch is refused.
  v1::BatchRequest mixed = batch;
  mixed.mutable_operations(0)->mutable_add_user()->set_pool("rock");
  EXPECT_EQ(anonymous_->Batch(mixed).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PoolsClientTest, OneSyncCoversEveryPool) {
  absl::StatusOr<v1::SyncResponse> synced = fe_->Sync(
      absl::Seconds(30),
      {{"d", {"ann"}}, {"j", {"ann", "bob"}, "duo"}, {"r", {"cat"}, "rock"}});
  ASSERT_TRUE(synced.ok()) << synced.status();
  EXPECT_EQ(synced->jam_count(), 3u);
  EXPECT_EQ(synced->user_count(), 4u);
  EXPECT_THAT(JamIds(""), ElementsAre("d"));
  EXPECT_THAT(JamIds("duo"), ElementsAre("j"));
  EXPECT_THAT(JamIds("rock"), ElementsAre("r"));
  for (absl::string_view pool : {"", "duo", "rock"}) {
    absl::StatusOr<v1::ListSessionsResponse> sessions =
        anonymous_->ListSessions(pool);
    ASSERT_TRUE(sessions.ok()) << sessions.status();
    ASSERT_EQ(sessions->sessions_size(), 1) << pool;
    EXPECT_EQ(sessions->sessions(0).frontend_id(), "fe");
  }
  // The front end's calls in any pool find the session.
  EXPECT_TRUE(fe_->AddUser("r", "dan", "rock").ok());

  // A pool no jam names is emptied of the front end's users.
  ASSERT_TRUE(fe_->Sync(absl::Seconds(30), {{"r", {"cat"}, "rock"}}).ok());
  EXPECT_THAT(JamIds(""), IsEmpty());
  EXPECT_THAT(JamIds("duo"), IsEmpty());
  EXPECT_THAT(JamIds("rock"), ElementsAre("r"));
}

TEST_F(PoolsClientTest, KeepAliveAndEndSessionSpanThePools) {
  ASSERT_TRUE(fe_->Sync(absl::Seconds(30),
                        {{"j", {"ann", "bob"}, "duo"}, {"r", {"cat"}, "rock"}})
                  .ok());
  absl::StatusOr<v1::KeepAliveResponse> renewed = fe_->KeepAlive();
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  absl::StatusOr<v1::ListSessionsResponse> rock =
      anonymous_->ListSessions("rock");
  ASSERT_TRUE(rock.ok()) << rock.status();
  ASSERT_EQ(rock->sessions_size(), 1);
  EXPECT_LE(renewed->lease_expires_unix_ms(),
            rock->sessions(0).lease_expires_unix_ms());

  absl::StatusOr<v1::EndSessionResponse> ended = fe_->EndSession();
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->removed_user_count(), 3u);  // Both pools together.
  EXPECT_THAT(JamIds("duo"), IsEmpty());
  EXPECT_THAT(JamIds("rock"), IsEmpty());
  EXPECT_EQ(fe_->KeepAlive().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace jambalancer
