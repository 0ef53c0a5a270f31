#include "server/rpc/id_validation.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/testing/status_expectations.h"

namespace jambalancer {
namespace {

using test::ExpectInvalidArgument;

TEST(ValidateIdTest, AcceptsPlainAndMultibyteIds) {
  EXPECT_TRUE(ValidateId("jam_id", "a").ok());
  EXPECT_TRUE(
      ValidateId("jam_id", "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633c").ok());
  EXPECT_TRUE(
      ValidateId("jam_id", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xb8").ok());
  EXPECT_TRUE(ValidateId("jam_id", std::string(kMaxIdBytes, 'x')).ok());
}

TEST(ValidateIdTest, RejectsEmpty) {
  ExpectInvalidArgument(ValidateId("jam_id", ""), "jam_id", "empty");
}

TEST(ValidateIdTest, RejectsTooLong) {
  ExpectInvalidArgument(
      ValidateId("user_id", std::string(kMaxIdBytes + 1, 'x')), "user_id",
      "at most 128 bytes");
  // The limit is in bytes: 43 three-byte characters are 129 bytes.
  std::string euros;
  for (int i = 0; i < 43; ++i) euros += "\xe2\x82\xac";
  ExpectInvalidArgument(ValidateId("user_id", euros), "user_id", "bytes");
}

TEST(ValidateIdTest, RejectsMalformedUtf8) {
  for (const char* bad : {"\xff", "a\x80", "\xc3", "\xc0\xaf" /* overlong */,
                          "\xed\xa0\x80" /* surrogate */,
                          "\xf4\x90\x80\x80" /* above U+10FFFF */}) {
    ExpectInvalidArgument(ValidateId("jam_id", bad), "jam_id", "UTF-8");
  }
}

TEST(ValidateIdTest, RejectsControlCharacters) {
  ExpectInvalidArgument(ValidateId("jam_id", "a\nb"), "jam_id", "control");
  ExpectInvalidArgument(ValidateId("jam_id", std::string("a\0b", 3)), "jam_id",
                        "control");
  ExpectInvalidArgument(ValidateId("jam_id", "del\x7f"), "jam_id", "control");
  ExpectInvalidArgument(ValidateId("jam_id", "c1\xc2\x85"), "jam_id",
                        "control");
}

}  // namespace
}  // namespace jambalancer
