#ifndef JAM_BALANCER_SERVER_CORE_ID_TABLE_H_
#define JAM_BALANCER_SERVER_CORE_ID_TABLE_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "server/core/compact_id.h"

namespace jambalancer {

// An id ready for lookups: its packed form and its hash, computed once.
// Borrows a long id's bytes: they must outlive the key.
class IdKey {
 public:
  explicit IdKey(absl::string_view id)
      : packed_(PackedId::Borrow(id)), hash_(HashId(id)) {}
  // The key of a stored id (its bytes must outlive the key).
  explicit IdKey(const PackedId& id) : packed_(id) {
    char buffer[PackedId::kUuidLength];
    hash_ = HashId(id.Text(buffer));
  }

  const PackedId& packed() const { return packed_; }
  uint32_t hash() const { return hash_; }

 private:
  PackedId packed_;
  uint32_t hash_;
};

// Starts loading an id's bytes, so that ids that may be far from the CPU
// caches (callers' arguments) load together rather than one after another.
inline void PrefetchIdBytes(absl::string_view id) {
#if defined(__GNUC__)
  if (id.empty()) return;
  __builtin_prefetch(id.data());
  __builtin_prefetch(id.data() + id.size() - 1);
#else
  (void)id;
#endif
}

// Interns ids: one record per distinct id, addressed by a 32-bit handle.
//
// Records live in fixed chunks of kChunkSize that never move, so handles and
// references to records stay valid until the record is erased, and growth
// copies nothing. Erased handles are reused (last erased, first reused).
// The index is a hash set of (handle, hash) slots: a rehash moves 8-byte
// slots and never touches records; a lookup touches one record, the match
// (a stored-hash mismatch skips a record).
//
// `Record` must be default-constructible and have a member `CompactId id`,
// which the table sets on insertion and which must not change after.
template <typename Record>
class IdTable {
 public:
  using Handle = uint32_t;
  static constexpr Handle kNoHandle = ~Handle{0};
  static constexpr size_t kChunkSize = 4096;

  IdTable() : index_(0, SlotHash(), SlotEq{this}) {}
  ~IdTable();

  // The index's functors hold `this`.
  IdTable(const IdTable&) = delete;
  IdTable& operator=(const IdTable&) = delete;

  size_t size() const { return index_.size(); }

  // Sizes the index for `count` records, so that growth up to there never
  // rehashes it (a rehash of millions of slots takes seconds).
  void Reserve(size_t count) { index_.reserve(count); }

  // The record's handle, or kNoHandle.
  Handle Find(const IdKey& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? kNoHandle : it->handle;
  }

  // The handle of key's record, inserting a default one with key's id if
  // none exists; second is true if it was inserted.
  std::pair<Handle, bool> FindOrInsert(const IdKey& key) {
    bool inserted = false;
    auto it = index_.lazy_emplace(key, [&](const auto& construct) {
      inserted = true;
      construct(Slot{Allocate(key.packed()), key.hash()});
    });
    return {it->handle, inserted};
  }

  // Destroys the record; its handle may be handed out again.
  // REQUIRES: handle is live.
  void Erase(Handle handle) {
    Cell& cell = CellOf(handle);
    [[maybe_unused]] const size_t erased =
        index_.erase(IdKey(cell.record.id.packed()));
    assert(erased == 1);
    cell.record.~Record();
    cell.next_free = free_;
    free_ = handle;
  }

  // REQUIRES: handle is live.
  Record& operator[](Handle handle) { return CellOf(handle).record; }
  const Record& operator[](Handle handle) const {
    return CellOf(handle).record;
  }

  // Starts loading the index slots a lookup of `key` reads first, so that
  // lookups that do not depend on each other wait for memory together.
  void Prefetch(const IdKey& key) const { index_.prefetch(key); }
  // Starts loading the record; no-op for kNoHandle.
  void PrefetchRecord(Handle handle) const {
#if defined(__GNUC__)
    if (handle != kNoHandle) __builtin_prefetch(&CellOf(handle));
#endif
  }

 private:
  union Cell {
    Cell() {}
    ~Cell() {}
    Record record;     // While the handle is live.
    Handle next_free;  // While it is on the free list.
  };

  struct Slot {
    Handle handle;
    uint32_t hash;  // HashId of the record's id.
  };
  // The set hashes slots by their stored hash, and keys by theirs: the
  // same 32 bits, spread over 64 (odd multiplier: a bijection).
  struct SlotHash {
    using is_transparent = void;
    static size_t Spread(uint32_t hash) {
      return static_cast<size_t>(hash * uint64_t{0x9e3779b97f4a7c15});
    }
    size_t operator()(const Slot& slot) const { return Spread(slot.hash); }
    size_t operator()(const IdKey& key) const { return Spread(key.hash()); }
  };
  struct SlotEq {
    using is_transparent = void;
    bool operator()(const Slot& a, const Slot& b) const {
      return a.handle == b.handle;
    }
    bool operator()(const Slot& slot, const IdKey& key) const {
      return slot.hash == key.hash() &&
             (*table)[slot.handle].id.packed() == key.packed();
    }
    bool operator()(const IdKey& key, const Slot& slot) const {
      return (*this)(slot, key);
    }
    const IdTable* table;
  };

  Cell& CellOf(Handle handle) const {
    return chunks_[handle / kChunkSize][handle % kChunkSize];
  }

  // A live record with `id` (copied), from the free list or a new handle.
  Handle Allocate(const PackedId& id) {
    Handle handle = free_;
    if (handle != kNoHandle) {
      free_ = CellOf(handle).next_free;
    } else {
      assert(next_ < kNoHandle);
      handle = next_++;
      if (handle / kChunkSize == chunks_.size()) {
        chunks_.push_back(std::make_unique<Cell[]>(kChunkSize));
      }
    }
    Cell& cell = CellOf(handle);
    new (&cell.record) Record();
    cell.record.id = CompactId(id);
    return handle;
  }

  absl::flat_hash_set<Slot, SlotHash, SlotEq> index_;
  std::vector<std::unique_ptr<Cell[]>> chunks_;
  Handle next_ = 0;  // Handles below it have been handed out.
  Handle free_ = kNoHandle;
};

template <typename Record>
IdTable<Record>::~IdTable() {
  std::vector<bool> is_free(next_);
  for (Handle handle = free_; handle != kNoHandle;
       handle = CellOf(handle).next_free) {
    is_free[handle] = true;
  }
  for (Handle handle = 0; handle < next_; ++handle) {
    if (!is_free[handle]) CellOf(handle).record.~Record();
  }
}

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_CORE_ID_TABLE_H_
