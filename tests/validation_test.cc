#include "server/validation.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using ::testing::HasSubstr;

void ExpectInvalid(const absl::Status& status, absl::string_view field,
                   absl::string_view rule) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr(field));
  EXPECT_THAT(status.message(), HasSubstr(rule));
}

TEST(ValidateIdTest, AcceptsPlainAndMultibyteIds) {
  EXPECT_TRUE(ValidateId("jam_id", "a").ok());
  EXPECT_TRUE(
      ValidateId("jam_id", "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633c").ok());
  EXPECT_TRUE(
      ValidateId("jam_id", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xb8").ok());
  EXPECT_TRUE(ValidateId("jam_id", std::string(kMaxIdBytes, 'x')).ok());
}

TEST(ValidateIdTest, RejectsEmpty) {
  ExpectInvalid(ValidateId("jam_id", ""), "jam_id", "empty");
}

TEST(ValidateIdTest, RejectsTooLong) {
  ExpectInvalid(ValidateId("user_id", std::string(kMaxIdBytes + 1, 'x')),
                "user_id", "at most 128 bytes");
  // The limit is in bytes: 43 three-byte characters are 129 bytes.
  std::string euros;
  for (int i = 0; i < 43; ++i) euros += "\xe2\x82\xac";
  ExpectInvalid(ValidateId("user_id", euros), "user_id", "bytes");
}

TEST(ValidateIdTest, RejectsMalformedUtf8) {
  for (const char* bad : {"\xff", "a\x80", "\xc3", "\xc0\xaf" /* overlong */,
                          "\xed\xa0\x80" /* surrogate */,
                          "\xf4\x90\x80\x80" /* above U+10FFFF */}) {
    ExpectInvalid(ValidateId("jam_id", bad), "jam_id", "UTF-8");
  }
}

TEST(ValidateIdTest, RejectsControlCharacters) {
  ExpectInvalid(ValidateId("jam_id", "a\nb"), "jam_id", "control");
  ExpectInvalid(ValidateId("jam_id", std::string("a\0b", 3)), "jam_id",
                "control");
  ExpectInvalid(ValidateId("jam_id", "del\x7f"), "jam_id", "control");
  ExpectInvalid(ValidateId("jam_id", "c1\xc2\x85"), "jam_id", "control");
}

TEST(ValidateRequestTest, NamesTheBadField) {
  v1::AddUserRequest add;
  add.set_jam_id("j");
  ExpectInvalid(Validate(add), "user_id", "empty");
  add.set_user_id("u");
  EXPECT_TRUE(Validate(add).ok());
  add.set_jam_id("");
  ExpectInvalid(Validate(add), "jam_id", "empty");

  v1::RemoveUserRequest remove;
  remove.set_jam_id("j");
  remove.set_user_id("bad\t");
  ExpectInvalid(Validate(remove), "user_id", "control");

  v1::HasCapacityRequest capacity;
  ExpectInvalid(Validate(capacity), "jam_id", "empty");
}

TEST(ValidateRequestTest, RefreshListRules) {
  v1::RefreshRequest refresh;
  refresh.set_jam_id("j");
  EXPECT_TRUE(Validate(refresh).ok());  // Empty list: deletes the jam.
  refresh.add_user_ids("ok");
  refresh.add_user_ids("");
  ExpectInvalid(Validate(refresh), "user_ids[1]", "empty");

  refresh.clear_user_ids();
  for (size_t i = 0; i < kMaxRefreshUsers; ++i) {
    refresh.add_user_ids("u" + std::to_string(i));
  }
  EXPECT_TRUE(Validate(refresh).ok());
  refresh.add_user_ids("one-too-many");
  ExpectInvalid(Validate(refresh), "user_ids", "at most 1024");
}

}  // namespace
}  // namespace jambalancer
