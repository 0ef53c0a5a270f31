// What every RPC does, without a server: typed commands applied to a
// collection at a fixed time, each response compared whole (every field)
// where no fresh random id is in it.

#include "server/rpc/operations.h"

#include <deque>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "jambalancer/v1/rpc_list.h"
#include "server/core/jam_collection.h"
#include "server/rpc/commands.h"
#include "server/rpc/page_token.h"

namespace jambalancer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);
constexpr absl::Duration kTtl = absl::Seconds(15);
constexpr uint32_t kMaxUsers = 3;

constexpr char kUuidV4[] =
    "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

// The response type of each command: ResponseOf<AddUserCommand> is
// v1::AddUserResponse.
template <typename Command>
struct ResponseFor;
#define JAM_BALANCER_RESPONSE_FOR(Method, field) \
  template <>                                    \
  struct ResponseFor<Method##Command> {          \
    using type = v1::Method##Response;           \
  };
JAM_BALANCER_RPCS(JAM_BALANCER_RESPONSE_FOR)
JAM_BALANCER_CLIENT_STREAMING_RPCS(JAM_BALANCER_RESPONSE_FOR)
#undef JAM_BALANCER_RESPONSE_FOR
template <typename Command>
using ResponseOf = typename ResponseFor<Command>::type;

// Applies `command` to `state` at `now` and returns its response; the
// command must succeed.
template <typename Command>
ResponseOf<Command> Answer(const Command& command, PoolState& state,
                           absl::Time now = kNow) {
  ResponseOf<Command> response;
  const absl::Status status = Apply(command, now, state, &response);
  EXPECT_TRUE(status.ok()) << status;
  return response;
}

// The message equals `text` (protobuf text format) in every field: a field
// left out of `text` must be unset (zero, false or empty).
MATCHER_P(EqualsProto, text, std::string("equals {") + text + "}") {
  std::remove_cv_t<std::remove_reference_t<decltype(arg)>> expected;
  if (!google::protobuf::TextFormat::ParseFromString(text, &expected)) {
    *result_listener << "(the expectation does not parse)";
    return false;
  }
  *result_listener << "is {" << arg.ShortDebugString() << "}";
  return google::protobuf::util::MessageDifferencer::Equals(arg, expected);
}

uint64_t UnixMillis(absl::Time time) {
  return static_cast<uint64_t>(absl::ToUnixMillis(time));
}

class OperationsTest : public ::testing::Test {
 protected:
  v1::GetStatsResponse Stats(absl::Time now = kNow) {
    return Answer(GetStatsCommand{}, jams_, now);
  }
  v1::ListJamsResponse All() {
    return Answer(ListJamsCommand{"", kMaxPageSize}, jams_);
  }

  PoolState jams_{kMaxUsers};
};

// --- CurrentJam ---

TEST_F(OperationsTest, CurrentJamWithoutUserOnEmptyCollectionGivesFreshIds) {
  const v1::CurrentJamResponse first = Answer(CurrentJamCommand{}, jams_);
  const v1::CurrentJamResponse second = Answer(CurrentJamCommand{}, jams_);
  EXPECT_THAT(first.jam_id(), MatchesRegex(kUuidV4));
  EXPECT_THAT(second.jam_id(), MatchesRegex(kUuidV4));
  EXPECT_NE(first.jam_id(), second.jam_id());
  EXPECT_TRUE(first.new_jam());
  EXPECT_EQ(first.user_count(), 0u);
  EXPECT_EQ(first.reservation_expires_unix_ms(), 0u);
  EXPECT_THAT(Stats(), EqualsProto("max_users: 3"));  // Nothing stored.
}

TEST_F(OperationsTest, CurrentJamWithoutUserAnswersFullestJamWithRoom) {
  Answer(RefreshCommand{"full", {"f1", "f2", "f3"}}, jams_);
  Answer(RefreshCommand{"one", {"o1"}}, jams_);
  Answer(RefreshCommand{"two-b", {"b1", "b2"}}, jams_);
  Answer(RefreshCommand{"two-a", {"a1", "a2"}}, jams_);
  // Tie on occupancy: the smallest id.
  EXPECT_THAT(Answer(CurrentJamCommand{}, jams_),
              EqualsProto(R"pb(jam_id: "two-a" user_count: 2)pb"));
  EXPECT_EQ(Stats().reservation_count(), 0u);
}

TEST_F(OperationsTest, CurrentJamWithUserReservesAndRecordsFreshJam) {
  const v1::CurrentJamResponse seat =
      Answer(CurrentJamCommand{"ann", kTtl}, jams_);
  EXPECT_THAT(seat.jam_id(), MatchesRegex(kUuidV4));
  EXPECT_TRUE(seat.new_jam());
  EXPECT_EQ(seat.user_count(), 0u);
  EXPECT_EQ(seat.reservation_expires_unix_ms(), UnixMillis(kNow + kTtl));

  const v1::ListJamsResponse list = All();
  ASSERT_EQ(list.jams_size(), 1);
  EXPECT_EQ(list.jams(0).jam_id(), seat.jam_id());
  EXPECT_THAT(list.jams(0).user_ids(), IsEmpty());
  EXPECT_EQ(list.jams(0).reserved_count(), 1u);

  // The next arrivals pack into the recorded jam.
  const v1::CurrentJamResponse next =
      Answer(CurrentJamCommand{"bob", absl::Seconds(30)}, jams_);
  EXPECT_EQ(next.jam_id(), seat.jam_id());
  EXPECT_FALSE(next.new_jam());
  EXPECT_EQ(next.user_count(), 0u);
  EXPECT_EQ(next.reservation_expires_unix_ms(),
            UnixMillis(kNow + absl::Seconds(30)));
  EXPECT_EQ(Answer(CurrentJamCommand{}, jams_).jam_id(), seat.jam_id());
  EXPECT_THAT(Stats(),
              EqualsProto("jam_count: 1 max_users: 3 reservation_count: 2"));
}

TEST_F(OperationsTest, CurrentJamWithUserAnswersAMemberItsOwnJam) {
  Answer(RefreshCommand{"home", {"ann", "bob", "cat"}}, jams_);
  Answer(RefreshCommand{"other", {"dan"}}, jams_);
  // Nothing reserved: no reservation_expires_unix_ms.
  EXPECT_THAT(Answer(CurrentJamCommand{"ann", kTtl}, jams_),
              EqualsProto(R"pb(jam_id: "home" user_count: 3)pb"));
  EXPECT_EQ(Stats().reservation_count(), 0u);
}

TEST_F(OperationsTest, CurrentJamWithUserAskingAgainRenewsTheOneSeat) {
  const v1::CurrentJamResponse first =
      Answer(CurrentJamCommand{"ann", kTtl}, jams_);
  const absl::Time later = kNow + absl::Seconds(5);
  const v1::CurrentJamResponse again =
      Answer(CurrentJamCommand{"ann", kTtl}, jams_, later);
  EXPECT_EQ(again.jam_id(), first.jam_id());
  EXPECT_EQ(again.reservation_expires_unix_ms(), UnixMillis(later + kTtl));
  EXPECT_THAT(Stats(later),
              EqualsProto("jam_count: 1 max_users: 3 reservation_count: 1"));
}

// --- Refresh ---

TEST_F(OperationsTest, RefreshCountsDuplicatesOnce) {
  EXPECT_THAT(Answer(RefreshCommand{"j", {"b", "a", "b", "a"}}, jams_),
              EqualsProto("user_count: 2"));
  EXPECT_THAT(All(), EqualsProto(R"pb(jams {
                                        jam_id: "j"
                                        user_ids: [ "a", "b" ]
                                      })pb"));
}

TEST_F(OperationsTest, RefreshStoresOverfillBeyondMaxUsers) {
  EXPECT_THAT(Answer(RefreshCommand{"crowd", {"a", "b", "c", "d", "e"}}, jams_),
              EqualsProto("user_count: 5"));
  EXPECT_THAT(Stats(), EqualsProto("jam_count: 1 user_count: 5 max_users: 3 "
                                   "full_jam_count: 1"));
  EXPECT_THAT(Answer(HasCapacityCommand{"crowd", ""}, jams_),
              EqualsProto("user_count: 5 max_users: 3"));
}

TEST_F(OperationsTest, RefreshReplacesTheListAndMovesListedUsers) {
  Answer(RefreshCommand{"a", {"x", "y"}}, jams_);
  EXPECT_THAT(Answer(RefreshCommand{"b", {"x"}}, jams_),
              EqualsProto("user_count: 1"));
  EXPECT_THAT(All(), EqualsProto(R"pb(jams { jam_id: "a" user_ids: "y" }
                                      jams { jam_id: "b" user_ids: "x" })pb"));
  // An empty list deletes the jam.
  EXPECT_THAT(Answer(RefreshCommand{"a", {}}, jams_), EqualsProto(""));
  EXPECT_THAT(All(), EqualsProto(R"pb(jams { jam_id: "b" user_ids: "x" })pb"));
}

// --- RemoveUser ---

TEST_F(OperationsTest, RemoveUserRemovesAMemberOnce) {
  Answer(RefreshCommand{"j", {"a", "b"}}, jams_);
  EXPECT_THAT(Answer(RemoveUserCommand{"j", "a"}, jams_),
              EqualsProto("removed: true user_count: 1"));
  EXPECT_THAT(Answer(RemoveUserCommand{"j", "a"}, jams_),
              EqualsProto("removed: false user_count: 1"));
  EXPECT_THAT(Answer(RemoveUserCommand{"nope", "b"}, jams_),
              EqualsProto("removed: false user_count: 0"));
  // The last member leaving deletes the jam.
  EXPECT_THAT(Answer(RemoveUserCommand{"j", "b"}, jams_),
              EqualsProto("removed: true user_count: 0"));
  EXPECT_EQ(Stats().jam_count(), 0u);
}

TEST_F(OperationsTest, RemoveUserReleasesAReservation) {
  const std::string jam =
      Answer(CurrentJamCommand{"ann", kTtl}, jams_).jam_id();
  EXPECT_THAT(Answer(RemoveUserCommand{jam, "ann"}, jams_),
              EqualsProto("removed: true user_count: 0"));
  EXPECT_THAT(Stats(), EqualsProto("max_users: 3"));
}

// --- HasCapacity ---

TEST_F(OperationsTest, HasCapacityOfUnknownJamIsTrue) {
  EXPECT_THAT(Answer(HasCapacityCommand{"nope", ""}, jams_),
              EqualsProto("has_capacity: true user_count: 0 max_users: 3"));
}

TEST_F(OperationsTest, HasCapacityComparesOccupancyExceptForItsOwnUsers) {
  Answer(RefreshCommand{"j", {"a", "b"}}, jams_);
  EXPECT_THAT(Answer(HasCapacityCommand{"j", ""}, jams_),
              EqualsProto("has_capacity: true user_count: 2 max_users: 3"));

  // A seat reserved for r makes the jam full for everyone else.
  ASSERT_EQ(Answer(CurrentJamCommand{"r", kTtl}, jams_).jam_id(), "j");
  const char kFull[] = "has_capacity: false user_count: 2 max_users: 3";
  const char kRoom[] = "has_capacity: true user_count: 2 max_users: 3";
  EXPECT_THAT(Answer(HasCapacityCommand{"j", ""}, jams_), EqualsProto(kFull));
  EXPECT_THAT(Answer(HasCapacityCommand{"j", "x"}, jams_), EqualsProto(kFull));
  EXPECT_THAT(Answer(HasCapacityCommand{"j", "r"}, jams_), EqualsProto(kRoom));
  EXPECT_THAT(Answer(HasCapacityCommand{"j", "a"}, jams_), EqualsProto(kRoom));
}

TEST_F(OperationsTest, HasCapacityIsTrueForAMemberOfAFullJam) {
  Answer(RefreshCommand{"j", {"a", "b", "c"}}, jams_);
  EXPECT_THAT(Answer(HasCapacityCommand{"j", "a"}, jams_),
              EqualsProto("has_capacity: true user_count: 3 max_users: 3"));
  EXPECT_THAT(Answer(HasCapacityCommand{"j", "d"}, jams_),
              EqualsProto("has_capacity: false user_count: 3 max_users: 3"));
}

// --- AddUser ---

TEST_F(OperationsTest, AddUserAddsOnceAndLeavesThePreviousJam) {
  EXPECT_THAT(Answer(AddUserCommand{"a", "u"}, jams_),
              EqualsProto("added: true user_count: 1"));
  EXPECT_THAT(Answer(AddUserCommand{"a", "u"}, jams_),
              EqualsProto("added: true user_count: 1"));
  EXPECT_THAT(Answer(AddUserCommand{"b", "u"}, jams_),
              EqualsProto("added: true user_count: 1"));
  // "a" was left empty and deleted.
  EXPECT_THAT(All(), EqualsProto(R"pb(jams { jam_id: "b" user_ids: "u" })pb"));
}

TEST_F(OperationsTest, AddUserToFullJamRedirectsToTheJamWithRoom) {
  Answer(RefreshCommand{"full", {"a", "b", "c"}}, jams_);
  Answer(RefreshCommand{"room", {"d"}}, jams_);
  EXPECT_THAT(
      Answer(AddUserCommand{"full", "z"}, jams_),
      EqualsProto(R"pb(added: false user_count: 3 redirect_jam_id: "room")pb"));
  EXPECT_EQ(Stats().user_count(), 4u);  // No change.
}

TEST_F(OperationsTest, AddUserToOnlyJamWhenFullRedirectsToFreshId) {
  Answer(RefreshCommand{"full", {"a", "b", "c"}}, jams_);
  const v1::AddUserResponse refused =
      Answer(AddUserCommand{"full", "z"}, jams_);
  EXPECT_FALSE(refused.added());
  EXPECT_EQ(refused.user_count(), 3u);
  EXPECT_THAT(refused.redirect_jam_id(), MatchesRegex(kUuidV4));
  EXPECT_EQ(Stats().jam_count(), 1u);  // The fresh id is not stored.
}

TEST_F(OperationsTest, AddUserAlwaysAdmitsTheHolderOfASeat) {
  Answer(RefreshCommand{"j", {"a", "b"}}, jams_);
  ASSERT_EQ(Answer(CurrentJamCommand{"r", kTtl}, jams_).jam_id(), "j");
  const v1::AddUserResponse stranger = Answer(AddUserCommand{"j", "x"}, jams_);
  EXPECT_FALSE(stranger.added());
  EXPECT_EQ(stranger.user_count(), 2u);
  EXPECT_THAT(stranger.redirect_jam_id(), MatchesRegex(kUuidV4));  // Not j.

  EXPECT_THAT(Answer(AddUserCommand{"j", "r"}, jams_),
              EqualsProto("added: true user_count: 3"));
  EXPECT_EQ(Stats().reservation_count(), 0u);
}

// --- GetStats ---

TEST_F(OperationsTest, GetStatsFillsEveryFieldAndExpiresSeatsAtNow) {
  Answer(RefreshCommand{"a", {"1", "2", "3"}}, jams_);  // Full.
  Answer(RefreshCommand{"b", {"4", "5"}}, jams_);
  ASSERT_EQ(Answer(CurrentJamCommand{"r", absl::Seconds(10)}, jams_).jam_id(),
            "b");
  ASSERT_TRUE(
      Answer(CurrentJamCommand{"s", absl::Seconds(20)}, jams_).new_jam());

  // "b" is full by occupancy, not by members: full_jam_count is 1.
  EXPECT_THAT(Stats(), EqualsProto("jam_count: 3 user_count: 5 max_users: 3 "
                                   "full_jam_count: 1 reservation_count: 2"));
  const absl::Time r_expires = kNow + absl::Seconds(10);
  EXPECT_EQ(Stats(r_expires - absl::Milliseconds(1)).reservation_count(), 2u);
  // "b" keeps its members.
  EXPECT_THAT(Stats(r_expires),
              EqualsProto("jam_count: 3 user_count: 5 max_users: 3 "
                          "full_jam_count: 1 reservation_count: 1"));
  // The jam recorded for s goes with its seat.
  EXPECT_THAT(Stats(kNow + absl::Seconds(20)),
              EqualsProto("jam_count: 2 user_count: 5 max_users: 3 "
                          "full_jam_count: 1 reservation_count: 0"));
}

// --- ListJams ---

class ListJamsTest : public OperationsTest {
 protected:
  void SetUp() override {
    Answer(RefreshCommand{"a", {"a2", "a1"}}, jams_);
    Answer(RefreshCommand{"b", {"zed", "amy", "Bob"}}, jams_);
    Answer(RefreshCommand{"c", {"c1"}}, jams_);
    Answer(RefreshCommand{"d", {"d3", "d1", "d2"}}, jams_);
    Answer(RefreshCommand{"e", {"e1"}}, jams_);
    ASSERT_EQ(Answer(CurrentJamCommand{"r", kTtl}, jams_).jam_id(), "a");
  }

  // The ids of the jams on the page `after` and `page_size` ask for.
  std::vector<std::string> IdsAfter(const std::string& after,
                                    uint32_t page_size) {
    const v1::ListJamsResponse page =
        Answer(ListJamsCommand{after, page_size}, jams_);
    std::vector<std::string> ids;
    for (const v1::Jam& jam : page.jams()) ids.push_back(jam.jam_id());
    return ids;
  }
};

// The jam id the page token carries (or the decoding error's text).
std::string Decoded(const std::string& token) {
  absl::StatusOr<std::string> last = DecodePageToken(token);
  return last.ok() ? *last : last.status().ToString();
}

TEST_F(ListJamsTest, ListsMembersSortedWithReservedSeats) {
  v1::ListJamsResponse page = Answer(ListJamsCommand{"", 2}, jams_);
  EXPECT_EQ(Decoded(page.next_page_token()), "b");
  page.clear_next_page_token();
  EXPECT_THAT(page, EqualsProto(R"pb(
                jams {
                  jam_id: "a"
                  user_ids: [ "a1", "a2" ]
                  reserved_count: 1
                }
                jams {
                  jam_id: "b"
                  user_ids: [ "Bob", "amy", "zed" ]
                }
              )pb"));
}

TEST_F(ListJamsTest, PagesFollowAfterJamIdAndEndWithoutToken) {
  const v1::ListJamsResponse second = Answer(ListJamsCommand{"b", 2}, jams_);
  EXPECT_EQ(Decoded(second.next_page_token()), "d");
  ASSERT_EQ(second.jams_size(), 2);
  EXPECT_THAT(second.jams(0), EqualsProto(R"pb(jam_id: "c" user_ids: "c1")pb"));
  EXPECT_THAT(second.jams(1),
              EqualsProto(R"pb(jam_id: "d"
                               user_ids: [ "d1", "d2", "d3" ])pb"));

  EXPECT_THAT(Answer(ListJamsCommand{"d", 2}, jams_),
              EqualsProto(R"pb(jams { jam_id: "e" user_ids: "e1" })pb"));
  // An id that is not stored is a position between ids.
  EXPECT_THAT(IdsAfter("bb", 1), ElementsAre("c"));
  EXPECT_THAT(IdsAfter("e", 2), IsEmpty());
}

TEST_F(ListJamsTest, TokenOnlyWhenMoreFollow) {
  const v1::ListJamsResponse exact = Answer(ListJamsCommand{"", 5}, jams_);
  EXPECT_EQ(exact.jams_size(), 5);
  EXPECT_THAT(exact.next_page_token(), IsEmpty());

  const v1::ListJamsResponse one_short = Answer(ListJamsCommand{"", 4}, jams_);
  EXPECT_EQ(one_short.jams_size(), 4);
  EXPECT_EQ(Decoded(one_short.next_page_token()), "d");
}

TEST_F(ListJamsTest, FollowingTokensVisitsEveryJamOnce) {
  std::vector<std::string> seen;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    const v1::ListJamsResponse response =
        Answer(ListJamsCommand{after, 2}, jams_);
    for (const v1::Jam& jam : response.jams()) seen.push_back(jam.jam_id());
    if (response.next_page_token().empty()) break;
    after = Decoded(response.next_page_token());
  }
  EXPECT_THAT(seen, ElementsAre("a", "b", "c", "d", "e"));
}

// --- Batch ---

TEST_F(OperationsTest, BatchAnswersEachOperationInOrderInItsOwnField) {
  const BatchCommand batch{{
      AddUserCommand{"j", "a"},
      AddUserCommand{"j", "b"},
      HasCapacityCommand{"j", ""},
      RefreshCommand{"k", {"c"}},
      CurrentJamCommand{"r", kTtl},
      RemoveUserCommand{"j", "a"},
      GetStatsCommand{},
  }};
  const std::string expected = R"pb(
    results { add_user { added: true user_count: 1 } }
    results { add_user { added: true user_count: 2 } }
    results { has_capacity { has_capacity: true user_count: 2 max_users: 3 } }
    results { refresh { user_count: 1 } }
    results {
      current_jam {
        jam_id: "j"
        user_count: 2
        reservation_expires_unix_ms: 1700000015000
      }
    }
    results { remove_user { removed: true user_count: 1 } }
    results {
      get_stats { jam_count: 2 user_count: 2 max_users: 3 reservation_count: 1 }
    }
  )pb";
  ASSERT_EQ(UnixMillis(kNow + kTtl), 1700000015000u);
  EXPECT_THAT(Answer(batch, jams_), EqualsProto(expected));
}

TEST_F(OperationsTest, BatchOperationsSeeTheEffectsOfEarlierOnes) {
  const BatchCommand batch{{
      AddUserCommand{"j", "a"},
      AddUserCommand{"j", "b"},
      AddUserCommand{"j", "c"},
      AddUserCommand{"j", "d"},
      HasCapacityCommand{"j", ""},
      RemoveUserCommand{"j", "a"},
      AddUserCommand{"j", "d"},
  }};
  v1::BatchResponse response = Answer(batch, jams_);
  ASSERT_EQ(response.results_size(), 7);
  // The full jam redirects to a fresh id.
  EXPECT_THAT(response.results(3).add_user().redirect_jam_id(),
              MatchesRegex(kUuidV4));
  response.mutable_results(3)->mutable_add_user()->clear_redirect_jam_id();
  EXPECT_THAT(
      response, EqualsProto(R"pb(
        results { add_user { added: true user_count: 1 } }
        results { add_user { added: true user_count: 2 } }
        results { add_user { added: true user_count: 3 } }
        results { add_user { added: false user_count: 3 } }
        results {
          has_capacity { has_capacity: false user_count: 3 max_users: 3 }
        }
        results { remove_user { removed: true user_count: 2 } }
        results { add_user { added: true user_count: 3 } }
      )pb"));
  EXPECT_THAT(All().jams(0).user_ids(), ElementsAre("b", "c", "d"));
}

TEST_F(OperationsTest, EmptyBatchAnswersNothing) {
  EXPECT_THAT(Answer(BatchCommand{}, jams_), EqualsProto(""));
  EXPECT_THAT(Stats(), EqualsProto("max_users: 3"));
}

// --- Front-end sessions ---

class SessionOperationsTest : public ::testing::Test {
 protected:
  // Syncs `frontend` with one jam of `users` and a 10 s lease.
  v1::SyncResponse Sync(absl::string_view frontend, absl::string_view jam,
                        std::vector<absl::string_view> users,
                        absl::Time now = kNow) {
    lists_.push_back(std::move(users));
    SyncCommand command;
    command.frontend_id = frontend;
    command.lease_ttl = absl::Seconds(10);
    command.jams.push_back({jam, lists_.back()});
    return Answer(command, state_, now);
  }
  std::vector<std::string> Members(absl::string_view jam) {
    const v1::ListJamsResponse all =
        Answer(ListJamsCommand{"", kMaxPageSize}, state_);
    for (const v1::Jam& listed : all.jams()) {
      if (listed.jam_id() == jam) {
        return {listed.user_ids().begin(), listed.user_ids().end()};
      }
    }
    return {};
  }

  std::deque<std::vector<absl::string_view>> lists_;
  PoolState state_{kMaxUsers};
};

TEST_F(SessionOperationsTest, CallsOfAFrontEndWithoutASessionAreFenced) {
  v1::AddUserResponse response;
  const absl::Status status =
      Apply(AddUserCommand{"j", "u", "fe"}, kNow, state_, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("front end fe"));
  EXPECT_THAT(status.message(), HasSubstr("Sync"));
  EXPECT_THAT(Members("j"), IsEmpty());  // Nothing changed.
  // Anonymous calls need no session.
  EXPECT_TRUE(Apply(AddUserCommand{"j", "u"}, kNow, state_, &response).ok());
}

TEST_F(SessionOperationsTest, SyncStartsTheSessionAndEveryCallRenewsIt) {
  const v1::SyncResponse synced = Sync("fe", "j", {"a", "b", "a"});
  EXPECT_EQ(synced.lease_expires_unix_ms(),
            absl::ToUnixMillis(kNow + absl::Seconds(10)));
  EXPECT_EQ(synced.jam_count(), 1u);
  EXPECT_EQ(synced.user_count(), 2u);
  const absl::Time later = kNow + absl::Seconds(8);
  EXPECT_TRUE(Answer(AddUserCommand{"j", "c", "fe"}, state_, later).added());
  // Renewed at `later`: still live 9 s after it.
  EXPECT_TRUE(state_.sessions.IsLive("fe", later + absl::Seconds(9)));
  EXPECT_EQ(Answer(KeepAliveCommand{"fe"}, state_, later + absl::Seconds(9))
                .lease_expires_unix_ms(),
            absl::ToUnixMillis(later + absl::Seconds(19)));
  // Lapsed: fenced again, also KeepAlive.
  v1::KeepAliveResponse keep;
  EXPECT_EQ(
      Apply(KeepAliveCommand{"fe"}, later + absl::Seconds(19), state_, &keep)
          .code(),
      absl::StatusCode::kFailedPrecondition);
}

TEST_F(SessionOperationsTest, ABatchWithAFencedOperationRunsNothing) {
  Sync("live", "j", {"a"});
  BatchCommand batch;
  batch.operations.emplace_back(AddUserCommand{"j", "b", "live"});
  batch.operations.emplace_back(AddUserCommand{"j", "c", "dead"});
  v1::BatchResponse response;
  const absl::Status status = Apply(batch, kNow, state_, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("operations[1]"));
  EXPECT_THAT(status.message(), HasSubstr("front end dead"));
  EXPECT_THAT(Members("j"), ElementsAre("a"));
  EXPECT_EQ(response.results_size(), 0);
}

// The pool's removal steps (JamPool::RemoveStep), `limit` users at a time:
// true once the first queued removal is done (its `done` called).
bool RemoveStep(PoolState& state, size_t limit) {
  FrontEndRemovalTask& task = state.removals.front();
  const FrontEndRemoval step =
      state.jams.RemoveFrontEnd(task.frontend_id, limit, kNow);
  state.CountRemoved(task, step);
  if (!step.done) return false;
  task.Finish(task.members_removed);
  state.removals.pop_front();
  return true;
}

TEST_F(SessionOperationsTest, EndSessionQueuesTheRemovalAndAnswersWhenDone) {
  Sync("fe", "j", {"a", "b"});
  Answer(AddUserCommand{"j", "x"}, state_);  // Anonymous: stays.
  std::optional<absl::StatusOr<uint64_t>> answer;
  ASSERT_TRUE(Apply(EndSessionCommand{"fe"}, kNow, state_,
                    [&](absl::StatusOr<uint64_t> removed) { answer = removed; })
                  .ok());
  // Ended at once (its calls are fenced from now on); removed in steps.
  EXPECT_FALSE(state_.sessions.IsLive("fe", kNow));
  ASSERT_EQ(state_.removals.size(), 1u);
  EXPECT_FALSE(state_.removals.front().expired);
  EXPECT_FALSE(answer.has_value());
  EXPECT_FALSE(RemoveStep(state_, 1));
  EXPECT_FALSE(answer.has_value());
  EXPECT_TRUE(RemoveStep(state_, 1));
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(**answer, 2u);
  EXPECT_THAT(Members("j"), ElementsAre("x"));
  EXPECT_EQ(state_.members_removed_by_expiry, 0u);  // Not an expiry.
  // No session any more: refused, and `done` is not called.
  bool called = false;
  EXPECT_EQ(Apply(EndSessionCommand{"fe"}, kNow, state_,
                  [&](absl::StatusOr<uint64_t>) { called = true; })
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(state_.removals.empty());
  EXPECT_FALSE(called);
}

TEST_F(SessionOperationsTest, SyncDuringItsEndSessionFinishesTheRemoval) {
  Sync("fe", "old", {"a", "b", "c"});
  std::optional<absl::StatusOr<uint64_t>> answer;
  ASSERT_TRUE(Apply(EndSessionCommand{"fe"}, kNow, state_,
                    [&](absl::StatusOr<uint64_t> removed) { answer = removed; })
                  .ok());
  EXPECT_FALSE(RemoveStep(state_, 1));
  Sync("fe", "new", {"c"});
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(**answer, 3u);
  EXPECT_TRUE(state_.removals.empty());
  EXPECT_THAT(Members("old"), IsEmpty());
  EXPECT_THAT(Members("new"), ElementsAre("c"));
}

TEST_F(SessionOperationsTest, ListSessionsAndStatsCountTheSessions) {
  Sync("b-fe", "j", {"a", "b"});
  Sync("a-fe", "k", {"c"});
  Answer(CurrentJamCommand{"seat", absl::Seconds(30), "a-fe"}, state_);
  EXPECT_THAT(
      Answer(ListSessionsCommand{}, state_),
      EqualsProto(absl::StrCat(
          "sessions { frontend_id: 'a-fe' lease_expires_unix_ms: ",
          absl::ToUnixMillis(kNow + absl::Seconds(10)),
          " member_count: 1 reservation_count: 1 } sessions { "
          "frontend_id: 'b-fe' lease_expires_unix_ms: ",
          absl::ToUnixMillis(kNow + absl::Seconds(10)), " member_count: 2 }")));
  EXPECT_EQ(Answer(GetStatsCommand{}, state_).session_count(), 2u);
}

TEST_F(SessionOperationsTest, GetJamAnswersMembersWithTheirFrontEnds) {
  Sync("fe", "j", {"b", "a"});
  Answer(AddUserCommand{"j", "x"}, state_);
  EXPECT_THAT(Answer(GetJamCommand{"j"}, state_),
              EqualsProto("jam_id: 'j' max_users: 3 "
                          "members { user_id: 'a' frontend_id: 'fe' } "
                          "members { user_id: 'b' frontend_id: 'fe' } "
                          "members { user_id: 'x' }"));
  EXPECT_THAT(Answer(GetJamCommand{"none"}, state_),
              EqualsProto("jam_id: 'none' max_users: 3"));
}

TEST_F(SessionOperationsTest, SyncOfAFrontEndStillBeingRemovedRemovesItFirst) {
  Sync("fe", "old", {"a", "b"});
  // Its lease ran out and the pool queued its removal, not begun yet.
  state_.sessions.Expire(kNow + absl::Seconds(10));
  state_.removals.emplace_back("fe", /*expired=*/true);
  Sync("fe", "new", {"b"}, kNow + absl::Seconds(11));
  EXPECT_TRUE(state_.removals.empty());
  EXPECT_EQ(state_.members_removed_by_expiry, 2u);
  EXPECT_THAT(Members("old"), IsEmpty());
  EXPECT_THAT(Members("new"), ElementsAre("b"));
}

}  // namespace
}  // namespace jambalancer
