// The gRPC edge of JamBalancerService over loopback: what only the edge
// does (parsing raw request bytes, serving every RPC of the list, refusing
// calls once the pool is down, naming bad Batch operations, counting calls).
// What each RPC computes is tested in operations_test.

#include "server/rpc/jam_balancer_service_impl.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/balancer_client.h"
#include "gmock/gmock.h"
#include "google/protobuf/unknown_field_set.h"
#include "gtest/gtest.h"
#include "jambalancer/v1/jam_balancer.pb.h"
#include "jambalancer/v1/rpc_list.h"
#include "server/metrics/rpc_metrics.h"
#include "server/rpc/balancer_server.h"
#include "server/runtime/jam_pool.h"
#include "tests/testing/status_expectations.h"
#include "tests/testing/test_server.h"

namespace jambalancer {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

// The path of `method` of the service, e.g.
// "/jambalancer.v1.JamBalancerService/AddUser".
std::string PathOf(std::string_view method) {
  return "/" + std::string(v1::JamBalancerService::service_full_name()) + "/" +
         std::string(method);
}

// The bytes of a message whose fields are `fields` (number, bytes), each
// length-delimited (a string or a message) and written as given: nothing
// checks that a string is UTF-8, as with a careless client.
std::string Encoded(std::initializer_list<std::pair<int, std::string>> fields) {
  google::protobuf::UnknownFieldSet set;
  for (const auto& [number, bytes] : fields) {
    set.AddLengthDelimited(number, bytes);
  }
  std::string out;
  EXPECT_TRUE(set.SerializeToString(&out));
  return out;
}

// An AddUserRequest (or RemoveUserRequest) with these ids' bytes.
std::string JamAndUser(const std::string& jam_id, const std::string& user_id) {
  return Encoded({{1, jam_id}, {2, user_id}});
}

// Appends an add_user operation to `batch`.
void AddUserOperation(v1::BatchRequest& batch, const std::string& jam_id,
                      const std::string& user_id) {
  v1::AddUserRequest* add = batch.add_operations()->mutable_add_user();
  add->set_jam_id(jam_id);
  add->set_user_id(user_id);
}

struct RawReply {
  grpc::Status status;
  std::string bytes;  // The response's bytes when status is OK.
};

// Calls `method` on `channel` with `request` as the request's bytes, exactly
// as given (nothing checks that they are a message), with a 10 s deadline.
RawReply CallRaw(const std::shared_ptr<grpc::Channel>& channel,
                 std::string_view method, const std::string& request) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::Slice slice(request);
  const grpc::ByteBuffer request_bytes(&slice, 1);
  grpc::ByteBuffer response_bytes;
  RawReply reply;
  absl::Notification done;
  stub.UnaryCall(&context, PathOf(method), grpc::StubOptions(), &request_bytes,
                 &response_bytes, [&](grpc::Status status) {
                   reply.status = std::move(status);
                   done.Notify();
                 });
  done.WaitForNotification();  // Bounded by the call's deadline.
  std::vector<grpc::Slice> slices;
  if (reply.status.ok() && response_bytes.Dump(&slices).ok()) {
    for (const grpc::Slice& part : slices) {
      reply.bytes.append(reinterpret_cast<const char*>(part.begin()),
                         part.size());
    }
  }
  return reply;
}

// Expects INVALID_ARGUMENT whose message names `field` and states `rule`.
void ExpectInvalidArgument(const RawReply& reply, absl::string_view field,
                           absl::string_view rule = "") {
  test::ExpectInvalidArgument(
      absl::Status(static_cast<absl::StatusCode>(reply.status.error_code()),
                   reply.status.error_message()),
      field, rule);
}

// A real server on loopback, a channel to it for raw calls, and a client.
class JamBalancerServiceImplTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = test::StartServer();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel(test::TargetOf(*server_),
                                   grpc::InsecureChannelCredentials());
    client_ = test::NewClient(*server_);
  }

  RawReply Call(std::string_view method, const std::string& request) {
    return CallRaw(channel_, method, request);
  }

  // Expects that the server holds no jam, member or reservation.
  void ExpectEmpty() {
    absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->jam_count(), 0u);
    EXPECT_EQ(stats->user_count(), 0u);
    EXPECT_EQ(stats->reservation_count(), 0u);
  }

  std::unique_ptr<BalancerServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<BalancerClient> client_;
};

TEST_F(JamBalancerServiceImplTest, ServesWellFormedRawRequests) {
  const RawReply reply = Call("AddUser", JamAndUser("jam", "ann"));
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  v1::AddUserResponse response;
  ASSERT_TRUE(response.ParseFromString(reply.bytes));
  EXPECT_TRUE(response.added());
  EXPECT_EQ(response.user_count(), 1u);
}

TEST_F(JamBalancerServiceImplTest, BytesThatAreNoMessageAreInvalidArgument) {
  // A string field whose length runs past the end.
  ExpectInvalidArgument(Call("AddUser",
                             "\x0a\x7f"
                             "abc"),
                        "jambalancer.v1.AddUserRequest", "not a well-formed");
  // A field number of 0.
  ExpectInvalidArgument(Call("Refresh", std::string("\x00\x01", 2)),
                        "jambalancer.v1.RefreshRequest", "not a well-formed");
  ExpectEmpty();
}

TEST_F(JamBalancerServiceImplTest, InvalidUtf8NamesTheField) {
  ExpectInvalidArgument(Call("AddUser", JamAndUser("jam", "bad\xff")),
                        "user_id", "valid UTF-8");
  ExpectInvalidArgument(Call("AddUser", JamAndUser("\xc0\xaf", "ann")),
                        "jam_id", "valid UTF-8");
  ExpectInvalidArgument(
      Call("Refresh", Encoded({{1, "jam"}, {2, "ok"}, {2, "\xe2\x82"}})),
      "user_ids[1]", "valid UTF-8");
  ExpectInvalidArgument(Call("CurrentJam", Encoded({{1, "\x80"}})), "user_id",
                        "valid UTF-8");
  ExpectEmpty();
}

TEST_F(JamBalancerServiceImplTest, EveryRpcOfTheListIsServed) {
  for (std::string_view method : kRpcNames) {
    const RawReply reply = Call(method, "");  // The empty request.
    EXPECT_THAT(reply.status.error_code(),
                AnyOf(grpc::StatusCode::OK, grpc::StatusCode::INVALID_ARGUMENT))
        << method << ": " << reply.status.error_message();
  }
  // What an unserved method would answer.
  EXPECT_EQ(Call("NoSuchMethod", "").status.error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(JamBalancerServiceImplTest, CallsAfterShutdownAreUnavailable) {
  ASSERT_TRUE(Call("GetStats", "").status.ok());  // The channel is up.
  server_->Shutdown(absl::Seconds(1));
  for (std::string_view method : kRpcNames) {
    EXPECT_EQ(Call(method, "").status.error_code(),
              grpc::StatusCode::UNAVAILABLE)
        << method;
  }
}

TEST_F(JamBalancerServiceImplTest, BatchErrorsNameTheOperation) {
  v1::BatchRequest batch;
  AddUserOperation(batch, "jam", "ann");
  AddUserOperation(batch, "jam", "");
  v1::AddUserRequest* second = batch.mutable_operations(1)->mutable_add_user();
  test::ExpectInvalidArgument(client_->Batch(batch).status(),
                              "operations[1].add_user.user_id", "empty");
  second->set_user_id("bad\x01");
  test::ExpectInvalidArgument(client_->Batch(batch).status(),
                              "operations[1].add_user.user_id", "control");
  batch.add_operations()->mutable_has_capacity();
  second->set_user_id("bob");
  test::ExpectInvalidArgument(client_->Batch(batch).status(),
                              "operations[2].has_capacity.jam_id", "empty");
  ExpectEmpty();  // Not even the valid operations ran.
}

// Raw bytes of a Batch whose operations[1] is an AddUser with a user_id of
// invalid UTF-8 (its operations[0] is valid).
std::string BatchWithInvalidUtf8() {
  return Encoded({{1, Encoded({{5, JamAndUser("jam", "ann")}})},
                  {1, Encoded({{5, JamAndUser("jam", "bad\xff")}})}});
}

TEST_F(JamBalancerServiceImplTest, BatchWithInvalidUtf8RunsNothing) {
  EXPECT_EQ(Call("Batch", BatchWithInvalidUtf8()).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ExpectEmpty();
}

// README: bad input is refused "with a message naming the field", and a bad
// Batch operation is named "e.g. operations[3].add_user.user_id": invalid
// UTF-8 in a nested message too.
TEST_F(JamBalancerServiceImplTest, BatchInvalidUtf8NamesTheOperation) {
  ExpectInvalidArgument(Call("Batch", BatchWithInvalidUtf8()),
                        "operations[1].add_user.user_id", "valid UTF-8");
}

// --- Sync: a client stream ---

// One jam of `count` users named PREFIX0.. in a SyncRequest.
void AddJam(v1::SyncRequest& message, const std::string& jam,
            const std::string& prefix, int count) {
  v1::JamMembers* members = message.add_jams();
  members->set_jam_id(jam);
  for (int i = 0; i < count; ++i) {
    members->add_user_ids(absl::StrCat(prefix, i));
  }
}

class SyncTest : public JamBalancerServiceImplTest {
 protected:
  // Sends `messages` on one Sync stream and half-closes it.
  grpc::Status Sync(const std::vector<v1::SyncRequest>& messages,
                    v1::SyncResponse* response) {
    auto stub = v1::JamBalancerService::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    std::unique_ptr<grpc::ClientWriter<v1::SyncRequest>> writer =
        stub->Sync(&context, response);
    for (const v1::SyncRequest& message : messages) {
      if (!writer->Write(message)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }
};

TEST_F(SyncTest, JamsSpreadOverMessagesBeyondFourMegabytesAreApplied) {
  // 300 jams of 1000 users of about 20 bytes: over 6 MB in 30 messages.
  std::vector<v1::SyncRequest> messages(30);
  messages[0].set_frontend_id("fe");
  messages[0].set_lease_ttl_ms(60'000);
  for (int m = 0; m < 30; ++m) {
    for (int j = 0; j < 10; ++j) {
      const int jam = m * 10 + j;
      AddJam(messages[m], absl::StrCat("jam-", jam),
             absl::StrCat("user-of-jam-", jam, "-"), 1000);
    }
  }
  size_t bytes = 0;
  for (const v1::SyncRequest& message : messages)
    bytes += message.ByteSizeLong();
  ASSERT_GT(bytes, 4u << 20);
  v1::SyncResponse response;
  const grpc::Status status = Sync(messages, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.jam_count(), 300u);
  EXPECT_EQ(response.user_count(), 300'000u);
  EXPECT_GT(response.lease_expires_unix_ms(),
            static_cast<uint64_t>(absl::ToUnixMillis(absl::Now())));
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->user_count(), 300'000u);
  EXPECT_EQ(stats->session_count(), 1u);
}

TEST_F(SyncTest, ABadMessageIsNamedAndNothingChanges) {
  std::vector<v1::SyncRequest> messages(2);
  messages[0].set_frontend_id("fe");
  AddJam(messages[0], "j", "u", 3);
  AddJam(messages[1], "k", "v", 2);
  messages[1].mutable_jams(0)->add_user_ids("");
  v1::SyncResponse response;
  const grpc::Status status = Sync(messages, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("messages[1].jams[0].user_ids[2]"));
  ExpectEmpty();
}

TEST_F(SyncTest, AStreamThatBreaksBeforeItEndsChangesNothing) {
  auto stub = v1::JamBalancerService::NewStub(channel_);
  v1::SyncResponse response;
  {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientWriter<v1::SyncRequest>> writer =
        stub->Sync(&context, &response);
    v1::SyncRequest message;
    message.set_frontend_id("fe");
    AddJam(message, "j", "u", 5);
    ASSERT_TRUE(writer->Write(message));
    context.TryCancel();  // No half-close.
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  ExpectEmpty();
  absl::StatusOr<v1::GetStatsResponse> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->session_count(), 0u);
}

TEST_F(SyncTest, CallsOfAFrontEndNeedItsSessionAndRenewIt) {
  const std::string add_as_fe = [] {
    v1::AddUserRequest request;
    request.set_jam_id("j");
    request.set_user_id("u");
    request.set_frontend_id("fe");
    return request.SerializeAsString();
  }();
  const RawReply fenced = Call("AddUser", add_as_fe);
  EXPECT_EQ(fenced.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(fenced.status.error_message(), HasSubstr("front end fe"));
  std::vector<v1::SyncRequest> messages(1);
  messages[0].set_frontend_id("fe");
  v1::SyncResponse response;
  ASSERT_TRUE(Sync(messages, &response).ok());
  EXPECT_TRUE(Call("AddUser", add_as_fe).status.ok());
}

// The service over a pool of the test's own, with metrics of its own.
class OwnServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                   grpc::InsecureChannelCredentials());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
    pool_.Shutdown();
  }

  RawReply Call(std::string_view method, const std::string& request) {
    return CallRaw(channel_, method, request);
  }

  // grpc_server_handled_total of `method` with `code` ("OK", ...).
  double Handled(absl::string_view method, absl::string_view code) const {
    for (const prometheus::MetricFamily& family : metrics_.Collect()) {
      if (family.name != "grpc_server_handled_total") continue;
      for (const prometheus::ClientMetric& metric : family.metric) {
        int matches = 0;
        for (const prometheus::ClientMetric::Label& label : metric.label) {
          matches += (label.name == "grpc_method" && label.value == method) ||
                     (label.name == "grpc_code" && label.value == code);
        }
        if (matches == 2) return metric.counter.value;
      }
    }
    return 0;
  }

  PoolDirectory pools_{{PoolConfig{kDefaultPoolName, 7}},
                       /*strand_inline=*/true,
                       PoolLimits{},
                       LeasePolicy{absl::Seconds(10), absl::Minutes(5)},
                       nullptr};
  JamPool& pool_ = pools_.default_pool().pool;
  RpcMetrics metrics_ = JamBalancerServiceImpl::NewRpcMetrics();
  JamBalancerServiceImpl service_{&pools_, &metrics_};
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(OwnServiceTest, CallsAfterItsPoolShutDownAreUnavailable) {
  ASSERT_TRUE(Call("GetStats", "").status.ok());
  pool_.Shutdown();
  const RawReply reply = Call("AddUser", JamAndUser("jam", "ann"));
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(reply.status.error_message(), HasSubstr("shutting down"));
  // A bad request is still answered as such: it never reaches the pool.
  EXPECT_EQ(Call("AddUser", JamAndUser("", "ann")).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(OwnServiceTest, CountsEveryCallUnderItsMethodAndCode) {
  ASSERT_TRUE(Call("AddUser", JamAndUser("jam", "ann")).status.ok());
  ASSERT_TRUE(Call("AddUser", JamAndUser("jam", "bob")).status.ok());
  ASSERT_EQ(Call("AddUser", "\x0a\x7f").status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Call("GetStats", "").status.ok());
  EXPECT_EQ(Handled("AddUser", "OK"), 2);
  EXPECT_EQ(Handled("AddUser", "InvalidArgument"), 1);
  EXPECT_EQ(Handled("GetStats", "OK"), 1);
  EXPECT_EQ(Handled("Refresh", "OK"), 0);

  pool_.Shutdown();
  ASSERT_EQ(Call("Refresh", Encoded({{1, "jam"}})).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Handled("Refresh", "Unavailable"), 1);
}

}  // namespace
}  // namespace jambalancer
