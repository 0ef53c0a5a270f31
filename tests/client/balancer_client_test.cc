// The C++ client library against a real server on loopback: what the
// client itself does (arguments into requests, statuses into absl::Status,
// deadlines, health checks). The RPCs' semantics are tested in
// tests/rpc/operations_test.

#include "client/balancer_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "jambalancer/v1/jam_balancer.grpc.pb.h"
#include "server/rpc/balancer_server.h"
#include "tests/testing/test_server.h"

namespace jambalancer {
namespace {

using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;

using Stub = v1::JamBalancerService::Stub;

// A TCP port on 127.0.0.1 that accepts connections (the kernel completes
// them) but never speaks: a gRPC call to it waits until its deadline.
class SilentListener {
 public:
  SilentListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;  // The OS picks.
    socklen_t size = sizeof(address);
    auto* generic = reinterpret_cast<sockaddr*>(&address);
    if (fd_ >= 0 && bind(fd_, generic, size) == 0 && listen(fd_, 16) == 0 &&
        getsockname(fd_, generic, &size) == 0) {
      port_ = ntohs(address.sin_port);
    }
  }
  ~SilentListener() {
    if (fd_ >= 0) close(fd_);
  }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;

  int port() const { return port_; }  // 0 if it could not listen.

 private:
  int fd_ = -1;
  int port_ = 0;
};

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
  std::unique_ptr<BalancerClient> client =
      BalancerClient::Connect(absl::StrCat("127.0.0.1:", silent.port()),
                              BalancerClient::Options{absl::Milliseconds(500)});
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

}  // namespace
}  // namespace jambalancer
