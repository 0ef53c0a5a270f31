#include "server/core/id_table.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

int live_records = 0;

struct Record {
  Record() { ++live_records; }
  ~Record() { --live_records; }
  Record(const Record&) = delete;
  Record& operator=(const Record&) = delete;

  CompactId id;
  int value = 0;
};

using Table = IdTable<Record>;
constexpr Table::Handle kNone = Table::kNoHandle;

std::string Text(const Table& table, Table::Handle handle) {
  return table[handle].id.packed().ToString();
}

TEST(IdTableTest, AbsentIdsAreNotFound) {
  Table table;
  EXPECT_EQ(table.Find(IdKey("a")), kNone);
  table.FindOrInsert(IdKey("a"));
  EXPECT_EQ(table.Find(IdKey("b")), kNone);
  EXPECT_EQ(table.Find(IdKey("")), kNone);
  EXPECT_EQ(table.Find(IdKey("a-long-id-that-is-stored-elsewhere")), kNone);
}

TEST(IdTableTest, OneRecordPerId) {
  Table table;
  const auto [a, inserted] = table.FindOrInsert(IdKey("a"));
  EXPECT_TRUE(inserted);
  table[a].value = 7;
  const auto [again, inserted_again] = table.FindOrInsert(IdKey("a"));
  EXPECT_EQ(again, a);
  EXPECT_FALSE(inserted_again);
  EXPECT_EQ(table[again].value, 7);
  EXPECT_EQ(table.Find(IdKey("a")), a);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(Text(table, a), "a");
}

TEST(IdTableTest, EveryFormIsFoundByItsTextAlone) {
  const std::string uuid = "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633c";
  const std::vector<std::string> ids = {uuid,
                                        absl::AsciiStrToUpper(uuid),
                                        "",
                                        "x",
                                        std::string(15, 'i'),
                                        std::string(16, 'i'),
                                        std::string(17, 'i'),
                                        std::string(128, 'e')};
  Table table;
  std::vector<Table::Handle> handles;
  for (const std::string& id : ids) {
    // Inserted from a copy that is gone before the lookups.
    const std::string copy = id;
    handles.push_back(table.FindOrInsert(IdKey(copy)).first);
  }
  EXPECT_EQ(table.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(table.Find(IdKey(ids[i])), handles[i]) << ids[i];
    EXPECT_EQ(Text(table, handles[i]), ids[i]);
  }
}

TEST(IdTableTest, ErasedHandlesAreReusedLastErasedFirst) {
  Table table;
  const Table::Handle a = table.FindOrInsert(IdKey("a")).first;
  const Table::Handle b = table.FindOrInsert(IdKey("b")).first;
  table.Erase(a);
  table.Erase(b);
  EXPECT_EQ(table.Find(IdKey("a")), kNone);
  EXPECT_EQ(table.Find(IdKey("b")), kNone);
  EXPECT_EQ(table.size(), 0u);
  // A reused record starts afresh, with the new id.
  const Table::Handle c = table.FindOrInsert(IdKey("c")).first;
  EXPECT_EQ(c, b);
  EXPECT_EQ(table[c].value, 0);
  EXPECT_EQ(Text(table, c), "c");
  const Table::Handle d = table.FindOrInsert(IdKey(std::string(40, 'd'))).first;
  EXPECT_EQ(d, a);
  EXPECT_EQ(table.Find(IdKey(std::string(40, 'd'))), d);
}

TEST(IdTableTest, RecordsNeverMoveAsTheTableGrows) {
  Table table;
  const int count = static_cast<int>(3 * Table::kChunkSize + 5);
  std::vector<const Record*> addresses;
  for (int i = 0; i < count; ++i) {
    const Table::Handle handle =
        table.FindOrInsert(IdKey(absl::StrCat("id-", i))).first;
    EXPECT_EQ(handle, static_cast<Table::Handle>(i));
    table[handle].value = i;
    addresses.push_back(&table[handle]);
  }
  for (int i = 0; i < count; ++i) {
    const Table::Handle handle = table.Find(IdKey(absl::StrCat("id-", i)));
    ASSERT_EQ(handle, static_cast<Table::Handle>(i));
    ASSERT_EQ(&table[handle], addresses[i]);
    ASSERT_EQ(table[handle].value, i);
  }
}

TEST(IdTableTest, RecordsAreDestroyedOnEraseAndWithTheTable) {
  live_records = 0;
  {
    Table table;
    for (int i = 0; i < 10; ++i) {
      table.FindOrInsert(IdKey(absl::StrCat("a-long-id-number-", i)));
    }
    EXPECT_EQ(live_records, 10);
    table.Erase(table.Find(IdKey("a-long-id-number-3")));
    table.Erase(table.Find(IdKey("a-long-id-number-7")));
    EXPECT_EQ(live_records, 8);
  }
  EXPECT_EQ(live_records, 0);
}

TEST(IdTableTest, LookupsPrefetchedTogetherStillFind) {
  Table table;
  const Table::Handle a = table.FindOrInsert(IdKey("a")).first;
  const IdKey key_a("a");
  const IdKey key_b("b");
  table.Prefetch(key_a);
  table.Prefetch(key_b);
  PrefetchIdBytes("some text");
  PrefetchIdBytes("");
  EXPECT_EQ(table.Find(key_a), a);
  EXPECT_EQ(table.Find(key_b), kNone);
}

}  // namespace
}  // namespace jambalancer
