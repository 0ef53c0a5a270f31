#ifndef JAM_BALANCER_SERVER_CORE_COMPACT_ID_H_
#define JAM_BALANCER_SERVER_CORE_COMPACT_ID_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"

namespace jambalancer {

// An id (any bytes) in 17 bytes, in one of three forms chosen by its text
// alone, so one text always has one form:
// - a canonical lowercase UUID (36 chars: hex digits 0-9a-f, '-' at 8, 13,
//   18 and 23) packed into its 16 bytes;
// - else up to 16 bytes inline;
// - else a pointer to the bytes elsewhere and their length.
// PackedId never owns those bytes: PackedId::Borrow points at the caller's
// text (for lookups) and CompactId owns a heap copy (for storage).
//
// Two PackedIds are equal exactly when their texts are, and Compare orders
// them as their texts compare in byte order.
class PackedId {
 public:
  static constexpr size_t kUuidLength = 36;

  // The empty id.
  PackedId() = default;

  // The packed form of `id`; a long id's form points at id's bytes, which
  // must outlive it.
  static PackedId Borrow(absl::string_view id);

  bool is_uuid() const { return tag_ == kUuid; }
  // Neither packed nor inline: the bytes are elsewhere.
  bool is_external() const { return tag_ == kExternal; }
  size_t size() const;

  // The text. A UUID is written into `buffer`; the other forms need none.
  absl::string_view Text(char (&buffer)[kUuidLength]) const;
  std::string ToString() const;

  // The first 8 bytes as a big-endian integer, zero-padded. Orders as the
  // texts do (a < b implies Prefix(a) <= Prefix(b)) for ids without NUL
  // bytes.
  uint64_t Prefix() const;

  // <0, 0 or >0 as the texts compare in byte order.
  static int Compare(const PackedId& a, const PackedId& b);

  friend bool operator==(const PackedId& a, const PackedId& b) {
    if (a.tag_ != b.tag_) return false;
    if (a.tag_ != kExternal) {
      return std::memcmp(a.data_, b.data_, sizeof(a.data_)) == 0;
    }
    return ExternalEqual(a, b);
  }
  friend bool operator!=(const PackedId& a, const PackedId& b) {
    return !(a == b);
  }

 private:
  friend class CompactId;

  // tag_ values: 0..kInlineCapacity is the length of an inline id.
  static constexpr size_t kInlineCapacity = 16;
  static constexpr uint8_t kUuid = kInlineCapacity + 1;
  static constexpr uint8_t kExternal = kInlineCapacity + 2;

  // External form: the bytes' address and length, kept in data_.
  const char* external_data() const;
  size_t external_size() const;
  void SetExternal(const char* data, size_t size);
  // REQUIRES: both are external.
  static bool ExternalEqual(const PackedId& a, const PackedId& b);

  // Inline: the id's bytes, the rest zero (so equality is one memcmp).
  // UUID: its 16 bytes. External: pointer and length.
  char data_[16] = {};
  uint8_t tag_ = 0;
};

// A PackedId that owns the heap copy of a long id. Movable, not copyable.
// Keeps PackedId's size and alignment (17 bytes, alignment 1) so records
// can put their fields right after it.
class CompactId {
 public:
  CompactId() = default;
  // Copies an external id's bytes; the other forms are copied as they are.
  explicit CompactId(const PackedId& id);
  CompactId(CompactId&& other) noexcept;
  CompactId& operator=(CompactId&& other) noexcept;
  ~CompactId();

  const PackedId& packed() const { return packed_; }

 private:
  PackedId packed_;
};

// The hash of an id's text (not of its form), 32 bits.
uint32_t HashId(absl::string_view id);

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_CORE_COMPACT_ID_H_
