#include "server/core/room_index.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

using Handle = RoomIndex::Handle;

// A brute-force copy of what the index holds, with the ids behind the
// handles.
struct Model {
  struct Entry {
    uint32_t level = 0;
    uint64_t prefix = 0;
    std::string id;
  };
  std::vector<Entry> entries;

  bool IdLess(Handle a, Handle b) const {
    return entries[a].id < entries[b].id;
  }
  Handle Best() const {
    Handle best = RoomIndex::kNoHandle;
    for (Handle h = 0; h < entries.size(); ++h) {
      const Entry& e = entries[h];
      if (e.level == 0) continue;
      if (best == RoomIndex::kNoHandle) {
        best = h;
        continue;
      }
      const Entry& b = entries[best];
      if (e.level != b.level     ? e.level > b.level
          : e.prefix != b.prefix ? e.prefix < b.prefix
                                 : e.id < b.id) {
        best = h;
      }
    }
    return best;
  }
};

TEST(RoomIndexTest, EmptyHasNoBest) {
  RoomIndex index;
  EXPECT_EQ(index.Best(), RoomIndex::kNoHandle);
  index.Prefetch(12345);
  // Taking out a jam that was never in changes nothing.
  index.Set(5, 0, 0, [](Handle, Handle) { return false; });
  EXPECT_EQ(index.Best(), RoomIndex::kNoHandle);
}

TEST(RoomIndexTest, HighestLevelThenSmallestPrefixThenSmallestId) {
  Model model;
  model.entries.resize(4);
  RoomIndex index;
  auto less = [&](Handle a, Handle b) { return model.IdLess(a, b); };
  auto set = [&](Handle h, uint32_t level, uint64_t prefix, std::string id) {
    model.entries[h] = {level, prefix, id};
    index.Set(h, level, prefix, less);
  };
  set(0, 2, 9, "i");
  EXPECT_EQ(index.Best(), 0u);
  set(1, 2, 5, "e");
  EXPECT_EQ(index.Best(), 1u);
  set(2, 2, 5, "d");  // Same prefix: the smaller id wins.
  EXPECT_EQ(index.Best(), 2u);
  set(3, 3, 99, "z");  // Higher level.
  EXPECT_EQ(index.Best(), 3u);
  set(3, 0, 0, "");  // Out.
  EXPECT_EQ(index.Best(), 2u);
  set(2, 0, 0, "");
  set(1, 0, 0, "");
  set(0, 0, 0, "");
  EXPECT_EQ(index.Best(), RoomIndex::kNoHandle);
}

// Random changes over several chunks (and so several rebuilds of the tree
// of chunk roots), with few prefixes so that ties are common.
TEST(RoomIndexTest, AgreesWithBruteForceOverManyChunks) {
  std::mt19937 random(7);
  const Handle handles = 3 * RoomIndex::kChunkSize + 100;
  Model model;
  model.entries.resize(handles);
  RoomIndex index;
  auto less = [&](Handle a, Handle b) { return model.IdLess(a, b); };
  for (int step = 0; step < 20000; ++step) {
    // Mostly handles near the top, so that new chunks keep coming.
    const Handle h =
        random() % 4 == 0 ? random() % handles : handles - 1 - random() % 500;
    Model::Entry& entry = model.entries[h];
    if (random() % 3 == 0) {
      entry = {};
    } else {
      // The prefix must stay while the jam is in: keep its id.
      if (entry.level == 0) {
        entry.prefix = random() % 3;
        entry.id = absl::StrCat(entry.prefix, "-", random() % 1000, "-", h);
      }
      entry.level = 1 + random() % 4;
    }
    index.Set(h, entry.level, entry.prefix, less);
    if (step % 16 == 0) index.Prefetch(h);
    ASSERT_EQ(index.Best(), model.Best()) << "step " << step;
  }
}

}  // namespace
}  // namespace jambalancer
