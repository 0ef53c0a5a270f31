#include "server/rpc/page_token.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

TEST(PageTokenTest, RoundTrips) {
  for (absl::string_view id : {"a", "jam/with+odd=chars", "caf\xc3\xa9"}) {
    absl::StatusOr<std::string> decoded = DecodePageToken(EncodePageToken(id));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, id);
  }
}

TEST(PageTokenTest, EmptyTokenIsFirstPage) {
  absl::StatusOr<std::string> decoded = DecodePageToken("");
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, "");
}

TEST(PageTokenTest, RejectsMalformedTokens) {
  for (absl::string_view token :
       {"not base64!", "abc", "YWJj" /* "abc" */,
        "amFtcy92MS9hZnRlci8" /* prefix with no id */}) {
    absl::StatusOr<std::string> decoded = DecodePageToken(token);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument)
        << token;
    EXPECT_THAT(decoded.status().message(), ::testing::HasSubstr("page_token"));
  }
}

}  // namespace
}  // namespace jambalancer
