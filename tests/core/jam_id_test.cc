#include "server/core/jam_id.h"

#include <set>
#include <string>

#include "absl/random/mock_distributions.h"
#include "absl/random/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using ::testing::MatchesRegex;

constexpr char kUuidV4[] =
    "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

TEST(NewJamIdTest, IsALowercaseCanonicalUuidV4) {
  absl::BitGen random;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_THAT(NewJamId(random), MatchesRegex(kUuidV4));
  }
}

TEST(NewJamIdTest, SetsVersionAndVariantWhateverTheRandomBytes) {
  // Every random byte 0xff: the version and variant bits still hold.
  absl::MockingBitGen all_ones;
  ON_CALL(absl::MockUniform<uint8_t>(), Call(all_ones))
      .WillByDefault(::testing::Return(0xff));
  EXPECT_EQ(NewJamId(all_ones), "ffffffff-ffff-4fff-bfff-ffffffffffff");
  absl::MockingBitGen all_zeros;
  ON_CALL(absl::MockUniform<uint8_t>(), Call(all_zeros))
      .WillByDefault(::testing::Return(0x00));
  EXPECT_EQ(NewJamId(all_zeros), "00000000-0000-4000-8000-000000000000");
}

TEST(NewJamIdTest, IdsDoNotRepeat) {
  absl::BitGen random;
  std::set<std::string> ids;
  for (int i = 0; i < 10000; ++i) ids.insert(NewJamId(random));
  EXPECT_EQ(ids.size(), 10000u);
}

}  // namespace
}  // namespace jambalancer
