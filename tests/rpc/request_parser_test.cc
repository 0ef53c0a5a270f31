#include "server/rpc/request_parser.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "jambalancer/v1/jam_balancer.pb.h"

namespace jambalancer {
namespace {

using ::testing::HasSubstr;

grpc::ByteBuffer BytesOf(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// Serializes with the strings' raw bytes: a string field and a bytes field
// share one wire format, so this writes what a careless client could send.
std::string Field(int number, const std::string& value) {
  std::string out;
  out.push_back(static_cast<char>(number << 3 | 2));
  out.push_back(static_cast<char>(value.size()));
  return out + value;
}

TEST(ParseRequestTest, ParsesWellFormedRequests) {
  v1::RefreshRequest sent;
  sent.set_jam_id("jam");
  sent.add_user_ids("a");
  sent.add_user_ids("caf\xc3\xa9");
  v1::RefreshRequest parsed;
  ASSERT_TRUE(ParseRequest(BytesOf(sent.SerializeAsString()), &parsed).ok());
  EXPECT_EQ(parsed.jam_id(), "jam");
  ASSERT_EQ(parsed.user_ids_size(), 2);
  EXPECT_EQ(parsed.user_ids(1), "caf\xc3\xa9");
}

TEST(ParseRequestTest, NamesTheFieldWithInvalidUtf8) {
  v1::AddUserRequest add;
  absl::Status status =
      ParseRequest(BytesOf(Field(1, "jam") + Field(2, "bad\xff")), &add);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("user_id must be valid UTF-8"));
}

TEST(ParseRequestTest, NamesTheIndexInARepeatedField) {
  v1::RefreshRequest refresh;
  absl::Status status = ParseRequest(
      BytesOf(Field(1, "jam") + Field(2, "ok") + Field(2, "\xc0\xaf")),
      &refresh);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("user_ids[1] must be valid UTF-8"));
}

TEST(ParseRequestTest, NamesThePathInNestedMessages) {
  // BatchRequest.operations = 1, BatchOperation.refresh = 2; the second
  // operation's user_ids[2] is bad.
  const std::string good = Field(2, Field(1, "j") + Field(2, "a"));
  const std::string bad = Field(
      2, Field(1, "j") + Field(2, "a") + Field(2, "b") + Field(2, "\xff"));
  v1::BatchRequest batch;
  absl::Status status =
      ParseRequest(BytesOf(Field(1, good) + Field(1, bad)), &batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("operations[1].refresh.user_ids[2] must be valid "
                        "UTF-8"));
}

TEST(ParseRequestTest, MalformedBytesAreInvalidArgument) {
  v1::AddUserRequest add;
  absl::Status status = ParseRequest(BytesOf("\x0a\x7f"), &add);  // Truncated.
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("not a well-formed jambalancer.v1.AddUserRequest"));
}

}  // namespace
}  // namespace jambalancer
