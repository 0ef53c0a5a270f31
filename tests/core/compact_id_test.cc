#include "server/core/compact_id.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

constexpr char kUuid[] = "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633c";

std::string RandomUuid(std::mt19937_64& random) {
  const uint64_t a = random();
  const uint64_t b = random();
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", a >> 32,
                         (a >> 16) & 0xffff, a & 0xffff, b >> 48,
                         b & 0xffffffffffff);
}

uint64_t BigEndianPrefix(const std::string& id) {
  uint64_t prefix = 0;
  for (size_t i = 0; i < 8; ++i) {
    prefix = (prefix << 8) | (i < id.size() ? static_cast<uint8_t>(id[i]) : 0);
  }
  return prefix;
}

int Sign(int value) { return (value > 0) - (value < 0); }

TEST(PackedIdTest, CanonicalUuidsPackAndRoundTrip) {
  std::mt19937_64 random(1);
  std::vector<std::string> ids = {kUuid, "00000000-0000-0000-0000-000000000000",
                                  "ffffffff-ffff-ffff-ffff-ffffffffffff"};
  for (int i = 0; i < 1000; ++i) ids.push_back(RandomUuid(random));
  for (const std::string& id : ids) {
    const PackedId packed = PackedId::Borrow(id);
    EXPECT_TRUE(packed.is_uuid()) << id;
    EXPECT_EQ(packed.size(), 36u);
    EXPECT_EQ(packed.ToString(), id);
    char buffer[PackedId::kUuidLength];
    EXPECT_EQ(packed.Text(buffer), id);
    EXPECT_EQ(packed.Prefix(), BigEndianPrefix(id)) << id;
  }
}

TEST(PackedIdTest, NonCanonicalUuidLikeIdsStayDistinct) {
  const std::string canonical = kUuid;
  std::vector<std::string> others = {
      absl::AsciiStrToUpper(canonical),           // Uppercase.
      "1B4e28ba-2fa1-4d3b-a3f5-ef19b5a7633c",     // One uppercase digit.
      "1b4e28ba2fa14d3ba3f5ef19b5a7633c",         // No dashes.
      "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633",      // 35 chars.
      "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633c0",    // 37 chars.
      "1b4e28ba-2fa1-4d3b-a3f5_ef19b5a7633c",     // '_' for a dash.
      "1b4e28ba2-fa1-4d3b-a3f5-ef19b5a7633c",     // Dash moved.
      "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633g",     // 'g'.
      "{1b4e28ba-2fa1-4d3b-a3f5-ef19b5a763}",     // Braces.
      "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633\xc3",  // A byte above 0x7f.
  };
  // Every byte that is not a lowercase hex digit, at every digit position.
  for (size_t pos = 0; pos < canonical.size(); ++pos) {
    if (canonical[pos] == '-') continue;
    for (int c = 0; c < 256; ++c) {
      if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) continue;
      std::string id = canonical;
      id[pos] = static_cast<char>(c);
      others.push_back(id);
    }
  }
  const PackedId packed_canonical = PackedId::Borrow(canonical);
  for (const std::string& id : others) {
    const PackedId packed = PackedId::Borrow(id);
    EXPECT_FALSE(packed.is_uuid()) << id;
    EXPECT_NE(packed, packed_canonical) << id;
    EXPECT_EQ(packed.ToString(), id);
    EXPECT_EQ(Sign(PackedId::Compare(packed, packed_canonical)),
              Sign(id.compare(canonical)))
        << id;
  }
}

TEST(PackedIdTest, InlineUpToSixteenBytesThenExternal) {
  for (size_t size : {0, 1, 8, 15, 16, 17, 36, 128}) {
    const std::string id(size, 'x');
    const PackedId packed = PackedId::Borrow(id);
    EXPECT_EQ(packed.is_external(), size > 16) << size;
    EXPECT_FALSE(packed.is_uuid());
    EXPECT_EQ(packed.size(), size);
    EXPECT_EQ(packed.ToString(), id);
    EXPECT_EQ(packed.Prefix(), BigEndianPrefix(id));
  }
  // A borrowed external id points at the caller's bytes.
  const std::string long_id(17, 'y');
  const PackedId packed = PackedId::Borrow(long_id);
  char buffer[PackedId::kUuidLength];
  EXPECT_EQ(packed.Text(buffer).data(), long_id.data());
}

TEST(PackedIdTest, EqualityIsEqualityOfTexts) {
  std::vector<std::string> ids = {"",
                                  "a",
                                  "ab",
                                  std::string("a\0b", 3),
                                  "abcdefghijklmno",
                                  "abcdefghijklmnop",
                                  "abcdefghijklmnopq",
                                  "abcdefghijklmnopr",
                                  kUuid,
                                  absl::AsciiStrToUpper(kUuid),
                                  "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633d"};
  for (const std::string& a : ids) {
    for (const std::string& b : ids) {
      // Copies, so that equal texts never share their bytes.
      const std::string a_copy = a;
      const std::string b_copy = b;
      EXPECT_EQ(PackedId::Borrow(a_copy) == PackedId::Borrow(b_copy), a == b)
          << a << " vs " << b;
    }
  }
}

TEST(PackedIdTest, CompareAndPrefixOrderLikeTheTexts) {
  std::mt19937_64 random(2);
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    const std::string uuid = RandomUuid(random);
    ids.push_back(uuid);
    ids.push_back(absl::AsciiStrToUpper(uuid));
    ids.push_back(uuid.substr(0, 8 + i % 20));           // Inline or external.
    ids.push_back(uuid.substr(0, 35) + "\xe2\x82\xac");  // Above 0x7f.
  }
  ids.push_back("ffffffff-ffff-ffff-ffff-ffffffffffff");
  ids.push_back("ffffffff-ffff-ffff-ffff-fffffffffff");
  ids.push_back("0");
  ids.push_back("");
  for (const std::string& a : ids) {
    for (const std::string& b : ids) {
      const PackedId pa = PackedId::Borrow(a);
      const PackedId pb = PackedId::Borrow(b);
      ASSERT_EQ(Sign(PackedId::Compare(pa, pb)), Sign(a.compare(b)))
          << a << " vs " << b;
      if (a < b) {
        ASSERT_LE(pa.Prefix(), pb.Prefix()) << a << " vs " << b;
      }
    }
  }
}

TEST(HashIdTest, EqualTextsHashAlikeAndDifferentOnesRarelyCollide) {
  std::mt19937_64 random(3);
  std::vector<uint32_t> hashes;
  for (int i = 0; i < 20000; ++i) {
    const std::string id = RandomUuid(random);
    const std::string copy = id;
    ASSERT_EQ(HashId(id), HashId(copy));
    hashes.push_back(HashId(id));
  }
  for (int length = 0; length <= 40; ++length) {
    hashes.push_back(HashId(std::string(length, 'a')));
  }
  std::sort(hashes.begin(), hashes.end());
  const auto duplicates =
      hashes.end() - std::unique(hashes.begin(), hashes.end());
  EXPECT_LE(duplicates, 2);  // About 0.05 expected for 32-bit hashes.
}

TEST(CompactIdTest, OwnsACopyOfLongIds) {
  std::string id = "a-long-id-of-more-than-sixteen-bytes";
  CompactId stored(PackedId::Borrow(id));
  EXPECT_TRUE(stored.packed().is_external());
  id[0] = 'b';
  EXPECT_EQ(stored.packed().ToString(), "a-long-id-of-more-than-sixteen-bytes");
  EXPECT_NE(stored.packed(), PackedId::Borrow(id));

  CompactId moved(std::move(stored));
  EXPECT_EQ(moved.packed().ToString(), "a-long-id-of-more-than-sixteen-bytes");
  CompactId assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.packed().ToString(),
            "a-long-id-of-more-than-sixteen-bytes");
  EXPECT_EQ(CompactId().packed().ToString(), "");
}

TEST(CompactIdTest, KeepsTheSizeOfItsFields) {
  // Records put their fields right after the id.
  EXPECT_EQ(sizeof(CompactId), 17u);
  EXPECT_EQ(alignof(CompactId), 1u);
}

}  // namespace
}  // namespace jambalancer
