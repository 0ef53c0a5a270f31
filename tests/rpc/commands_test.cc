#include "server/rpc/commands.h"

#include <deque>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/rpc/id_validation.h"
#include "server/rpc/page_token.h"
#include "tests/testing/status_expectations.h"

namespace jambalancer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using test::ExpectInvalidArgument;

const CommandParser& Parser() {
  static const CommandParser parser(
      ReservationPolicy{absl::Seconds(15), absl::Minutes(2)},
      LeasePolicy{absl::Seconds(10), absl::Minutes(5)});
  return parser;
}

// Whether `request` makes a command.
template <typename Request>
absl::Status Validate(const Request& request) {
  return Parser().Parse(request).status();
}

TEST(ValidateRequestTest, NamesTheBadField) {
  v1::AddUserRequest add;
  add.set_jam_id("j");
  ExpectInvalidArgument(Validate(add), "user_id", "empty");
  add.set_user_id("u");
  EXPECT_TRUE(Validate(add).ok());
  add.set_jam_id("");
  ExpectInvalidArgument(Validate(add), "jam_id", "empty");

  v1::RemoveUserRequest remove;
  remove.set_jam_id("j");
  remove.set_user_id("bad\t");
  ExpectInvalidArgument(Validate(remove), "user_id", "control");

  v1::HasCapacityRequest capacity;
  ExpectInvalidArgument(Validate(capacity), "jam_id", "empty");
}

TEST(ValidateRequestTest, RefreshListRules) {
  v1::RefreshRequest refresh;
  refresh.set_jam_id("j");
  EXPECT_TRUE(Validate(refresh).ok());  // Empty list: deletes the jam.
  refresh.add_user_ids("ok");
  refresh.add_user_ids("");
  ExpectInvalidArgument(Validate(refresh), "user_ids[1]", "empty");

  refresh.clear_user_ids();
  for (size_t i = 0; i < kMaxRefreshUsers; ++i) {
    refresh.add_user_ids("u" + std::to_string(i));
  }
  EXPECT_TRUE(Validate(refresh).ok());
  refresh.add_user_ids("one-too-many");
  ExpectInvalidArgument(Validate(refresh), "user_ids", "at most 1024");
}

TEST(CurrentJamCommandTest, WithoutUserReservesNothing) {
  v1::CurrentJamRequest request;
  request.set_reservation_ttl_ms(5000);  // Ignored without a user.
  absl::StatusOr<CurrentJamCommand> command = Parser().Parse(request);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_THAT(command->user_id, IsEmpty());
  EXPECT_EQ(command->reservation_ttl, absl::ZeroDuration());
}

TEST(CurrentJamCommandTest, ZeroTtlTakesTheDefaultAndLongOnesAreCapped) {
  v1::CurrentJamRequest request;
  request.set_user_id("ann");
  EXPECT_EQ(Parser().Parse(request)->reservation_ttl, absl::Seconds(15));
  request.set_reservation_ttl_ms(1500);
  EXPECT_EQ(Parser().Parse(request)->reservation_ttl, absl::Milliseconds(1500));
  request.set_reservation_ttl_ms(10 * 60 * 1000);
  EXPECT_EQ(Parser().Parse(request)->reservation_ttl, absl::Minutes(2));
  EXPECT_EQ(Parser().Parse(request)->user_id, "ann");
}

TEST(CurrentJamCommandTest, BadUserIsNamed) {
  v1::CurrentJamRequest request;
  request.set_user_id(std::string(kMaxIdBytes + 1, 'u'));
  ExpectInvalidArgument(Validate(request), "user_id", "at most 128 bytes");
}

TEST(CommandTest, CommandsBorrowTheRequestsIds) {
  v1::RefreshRequest refresh;
  refresh.set_jam_id("j");
  refresh.add_user_ids("a");
  refresh.add_user_ids("a");  // Duplicates are the collection's business.
  absl::StatusOr<RefreshCommand> command = Parser().Parse(refresh);
  ASSERT_TRUE(command.ok());
  EXPECT_EQ(command->jam_id.data(), refresh.jam_id().data());
  ASSERT_EQ(command->user_ids.size(), 2u);
  EXPECT_EQ(command->user_ids[1].data(), refresh.user_ids(1).data());

  v1::HasCapacityRequest capacity;
  capacity.set_jam_id("j");
  EXPECT_THAT(Parser().Parse(capacity)->user_id, IsEmpty());
  capacity.set_user_id("u");
  EXPECT_EQ(Parser().Parse(capacity)->user_id, "u");
}

TEST(ListJamsCommandTest, DecodesTheTokenAndBoundsThePageSize) {
  v1::ListJamsRequest request;
  absl::StatusOr<ListJamsCommand> first = Parser().Parse(request);
  ASSERT_TRUE(first.ok());
  EXPECT_THAT(first->after_jam_id, IsEmpty());
  EXPECT_EQ(first->page_size, kDefaultPageSize);

  request.set_page_token(EncodePageToken("jam-7"));
  request.set_page_size(5000);
  absl::StatusOr<ListJamsCommand> next = Parser().Parse(request);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->after_jam_id, "jam-7");
  EXPECT_EQ(next->page_size, kMaxPageSize);

  request.set_page_size(3);
  EXPECT_EQ(Parser().Parse(request)->page_size, 3u);

  request.set_page_token("not a token");
  ExpectInvalidArgument(Validate(request), "page_token");
}

TEST(BatchCommandTest, TypesEachOperationInOrder) {
  v1::BatchRequest request;
  request.add_operations()->mutable_current_jam()->set_user_id("ann");
  request.add_operations()->mutable_get_stats();
  v1::AddUserRequest* add = request.add_operations()->mutable_add_user();
  add->set_jam_id("j");
  add->set_user_id("bob");
  absl::StatusOr<BatchCommand> command = Parser().Parse(request);
  ASSERT_TRUE(command.ok()) << command.status();
  ASSERT_EQ(command->operations.size(), 3u);
  const auto* current = std::get_if<CurrentJamCommand>(&command->operations[0]);
  ASSERT_NE(current, nullptr);
  EXPECT_EQ(current->reservation_ttl, absl::Seconds(15));  // Defaults too.
  EXPECT_TRUE(std::holds_alternative<GetStatsCommand>(command->operations[1]));
  const auto* added = std::get_if<AddUserCommand>(&command->operations[2]);
  ASSERT_NE(added, nullptr);
  EXPECT_EQ(added->user_id, "bob");
}

TEST(BatchCommandTest, NamesTheFailingOperation) {
  v1::BatchRequest request;
  request.add_operations()->mutable_get_stats();
  request.add_operations()->mutable_get_stats();
  request.add_operations()->mutable_add_user()->set_jam_id("j");
  ExpectInvalidArgument(Validate(request), "operations[2].add_user.user_id",
                        "empty");

  request.mutable_operations(2)->mutable_add_user()->set_user_id("u");
  request.add_operations();  // Sets nothing.
  ExpectInvalidArgument(Validate(request), "operations[3]",
                        "must set one operation");
}

TEST(BatchCommandTest, HoldsAtMostTheLimit) {
  v1::BatchRequest request;
  for (int i = 0; i < kMaxBatchOperations; ++i) {
    request.add_operations()->mutable_get_stats();
  }
  EXPECT_TRUE(Validate(request).ok());
  request.add_operations()->mutable_get_stats();
  const absl::Status status = Validate(request);
  ExpectInvalidArgument(status, "operations", "at most 1000");
  EXPECT_THAT(status.message(), HasSubstr("got 1001"));
}

// --- Front ends ---

TEST(FrontEndCommandTest, FrontEndIdIsOptionalButFollowsTheIdRules) {
  v1::AddUserRequest add;
  add.set_jam_id("j");
  add.set_user_id("u");
  EXPECT_THAT(Parser().Parse(add)->frontend_id, IsEmpty());
  add.set_frontend_id("fe-1");
  EXPECT_EQ(Parser().Parse(add)->frontend_id, "fe-1");
  add.set_frontend_id("bad\n");
  ExpectInvalidArgument(Validate(add), "frontend_id", "control");

  v1::CurrentJamRequest current;
  current.set_frontend_id(std::string(kMaxIdBytes + 1, 'f'));
  ExpectInvalidArgument(Validate(current), "frontend_id", "at most 128");
  v1::RefreshRequest refresh;
  refresh.set_jam_id("j");
  refresh.set_frontend_id("fe");
  EXPECT_EQ(Parser().Parse(refresh)->frontend_id, "fe");
}

TEST(FrontEndCommandTest, HeldSeatsAreCappedLikeReservations) {
  v1::RemoveUserRequest remove;
  remove.set_jam_id("j");
  remove.set_user_id("u");
  EXPECT_EQ(Parser().Parse(remove)->hold_seat, absl::ZeroDuration());
  remove.set_hold_seat_ms(3000);
  EXPECT_EQ(Parser().Parse(remove)->hold_seat, absl::Seconds(3));
  remove.set_hold_seat_ms(3600 * 1000);
  EXPECT_EQ(Parser().Parse(remove)->hold_seat, absl::Minutes(2));
}

TEST(FrontEndCommandTest, SessionCallsNeedAFrontEnd) {
  ExpectInvalidArgument(Validate(v1::KeepAliveRequest()), "frontend_id",
                        "empty");
  ExpectInvalidArgument(Validate(v1::EndSessionRequest()), "frontend_id",
                        "empty");
  v1::KeepAliveRequest keep;
  keep.set_frontend_id("fe");
  EXPECT_EQ(Parser().Parse(keep)->frontend_id, "fe");
  EXPECT_TRUE(Validate(v1::ListSessionsRequest()).ok());
}

TEST(GetJamCommandTest, NeedsAValidJamId) {
  ExpectInvalidArgument(Validate(v1::GetJamRequest()), "jam_id", "empty");
  v1::GetJamRequest request;
  request.set_jam_id("j");
  EXPECT_EQ(Parser().Parse(request)->jam_id, "j");
}

// The messages of one Sync stream.
class SyncCommandTest : public ::testing::Test {
 protected:
  v1::SyncRequest& Add() { return messages_.emplace_back(); }
  absl::StatusOr<SyncCommand> Parse() {
    pointers_.clear();
    for (const v1::SyncRequest& message : messages_) {
      pointers_.push_back(&message);
    }
    return Parser().Parse(pointers_);
  }
  static void AddJam(v1::SyncRequest& message, const std::string& jam,
                     std::vector<std::string> users) {
    v1::JamMembers* members = message.add_jams();
    members->set_jam_id(jam);
    for (std::string& user : users) members->add_user_ids(std::move(user));
  }

  std::deque<v1::SyncRequest> messages_;
  std::vector<const v1::SyncRequest*> pointers_;
};

TEST_F(SyncCommandTest, GathersTheJamsOfEveryMessage) {
  v1::SyncRequest& first = Add();
  first.set_frontend_id("fe");
  first.set_lease_ttl_ms(2500);
  AddJam(first, "j1", {"a", "b"});
  AddJam(Add(), "j2", {"c"});
  v1::SyncRequest& third = Add();
  third.set_frontend_id("fe");  // Repeating it is fine.
  AddJam(third, "j1", {"d"});
  absl::StatusOr<SyncCommand> command = Parse();
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->frontend_id, "fe");
  EXPECT_EQ(command->lease_ttl, absl::Milliseconds(2500));
  ASSERT_EQ(command->jams.size(), 3u);
  EXPECT_EQ(command->jams[0].jam_id, "j1");
  EXPECT_THAT(command->jams[0].user_ids, ElementsAre("a", "b"));
  EXPECT_EQ(command->jams[1].jam_id, "j2");
  EXPECT_THAT(command->jams[2].user_ids, ElementsAre("d"));
}

TEST_F(SyncCommandTest, LeaseDefaultsAndIsCappedAndAtLeast500Ms) {
  v1::SyncRequest& first = Add();
  first.set_frontend_id("fe");
  EXPECT_EQ(Parse()->lease_ttl, absl::Seconds(10));
  first.set_lease_ttl_ms(3600 * 1000);
  EXPECT_EQ(Parse()->lease_ttl, absl::Minutes(5));
  first.set_lease_ttl_ms(500);
  EXPECT_EQ(Parse()->lease_ttl, absl::Milliseconds(500));
  first.set_lease_ttl_ms(499);
  ExpectInvalidArgument(Parse().status(), "messages[0].lease_ttl_ms",
                        "at least 500");
}

TEST_F(SyncCommandTest, NamesTheMessageAndFieldThatIsWrong) {
  ExpectInvalidArgument(Parse().status(), "at least one message");
  Add();
  ExpectInvalidArgument(Parse().status(), "messages[0].frontend_id", "empty");
  messages_[0].set_frontend_id("fe");
  Add().set_frontend_id("other");
  ExpectInvalidArgument(Parse().status(), "messages[1].frontend_id",
                        "repeat the first");
  messages_[1].clear_frontend_id();
  messages_[1].set_lease_ttl_ms(1000);
  ExpectInvalidArgument(Parse().status(), "messages[1].lease_ttl_ms");
  messages_[1].clear_lease_ttl_ms();
  AddJam(messages_[1], "j", {"a", ""});
  ExpectInvalidArgument(Parse().status(), "messages[1].jams[0].user_ids[1]",
                        "empty");
  messages_[1].clear_jams();
  std::vector<std::string> many;
  for (size_t i = 0; i <= kMaxRefreshUsers; ++i)
    many.push_back(absl::StrCat(i));
  AddJam(messages_[1], "j", many);
  ExpectInvalidArgument(Parse().status(), "messages[1].jams[0].user_ids",
                        "at most 1024");
}

}  // namespace
}  // namespace jambalancer
