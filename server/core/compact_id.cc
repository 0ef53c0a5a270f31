#include "server/core/compact_id.h"

#include <cstring>

#include "absl/base/config.h"
#include "absl/numeric/int128.h"

namespace jambalancer {
namespace {

constexpr uint64_t kOnes = 0x0101010101010101;  // 1 in every byte.

// Little-endian loads and stores, whatever the host's byte order.
uint64_t Load64(const char* p) {
  uint64_t value;
  std::memcpy(&value, p, sizeof(value));
#if defined(ABSL_IS_BIG_ENDIAN)
  value = __builtin_bswap64(value);
#endif
  return value;
}
uint64_t Load32(const char* p) {
  uint32_t value;
  std::memcpy(&value, p, sizeof(value));
#if defined(ABSL_IS_BIG_ENDIAN)
  value = __builtin_bswap32(value);
#endif
  return value;
}
void Store64(uint64_t value, char* p) {
#if defined(ABSL_IS_BIG_ENDIAN)
  value = __builtin_bswap64(value);
#endif
  std::memcpy(p, &value, sizeof(value));
}
void Store32(uint64_t value, char* p) {
  auto low = static_cast<uint32_t>(value);
#if defined(ABSL_IS_BIG_ENDIAN)
  low = __builtin_bswap32(low);
#endif
  std::memcpy(p, &low, sizeof(low));
}

// The hex digits of the values 0..15 in each byte: '0'-'9' and 'a'-'f'.
uint64_t HexDigits(uint64_t nibbles) {
  const uint64_t letters = ((nibbles + 6 * kOnes) >> 4) & kOnes;  // >= 10
  return nibbles + '0' * kOnes + ('a' - '0' - 10) * letters;
}

// Decodes 8 lowercase hex digits, one per byte, first in the lowest, into 4
// bytes (first in the lowest) in *out. False if a byte is anything else.
bool DecodeHex8(uint64_t digits, uint64_t* out) {
  // The value of a digit or a letter: its low 4 bits, plus 9 for letters
  // (bit 6 set). A byte is valid when re-encoding the value gives it back
  // and the value is below 16 ('g'-'o' give 16-24).
  const uint64_t nibbles =
      (digits & 0x0f * kOnes) + 9 * ((digits >> 6) & kOnes);
  const bool valid = HexDigits(nibbles) == digits &&
                     ((nibbles + 0x70 * kOnes) & 0x80 * kOnes) == 0;
  // Pairs of nibbles into bytes, then the bytes together.
  uint64_t bytes = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff00ff00ff00ff;
  bytes = (bytes | (bytes >> 8)) & 0x0000ffff0000ffff;
  *out = (bytes | (bytes >> 16)) & 0xffffffff;
  return valid;
}

// The 8 lowercase hex digits of 4 bytes (first in the lowest), one per byte.
uint64_t EncodeHex8(uint64_t bytes) {
  bytes = (bytes | (bytes << 16)) & 0x0000ffff0000ffff;
  bytes = (bytes | (bytes << 8)) & 0x00ff00ff00ff00ff;
  const uint64_t nibbles =
      ((bytes >> 4) & 0x000f000f000f000f) | ((bytes & 0x000f000f000f000f) << 8);
  return HexDigits(nibbles);
}

// Packs a canonical lowercase UUID into `out`; false for any other text.
bool PackUuid(absl::string_view id, char* out) {
  if (id.size() != PackedId::kUuidLength) return false;
  const char* p = id.data();
  if (p[8] != '-' || p[13] != '-' || p[18] != '-' || p[23] != '-') {
    return false;
  }
  // The 32 digits, 8 at a time: 0-7, 9-12 and 14-17, 19-22 and 24-27,
  // 28-35.
  const uint64_t groups[4] = {Load64(p), Load32(p + 9) | Load32(p + 14) << 32,
                              Load32(p + 19) | Load32(p + 24) << 32,
                              Load64(p + 28)};
  bool valid = true;
  for (int i = 0; i < 4; ++i) {
    uint64_t bytes;
    valid &= DecodeHex8(groups[i], &bytes);
    Store32(bytes, out + 4 * i);
  }
  return valid;
}

// Writes the canonical text of a packed UUID.
void UnpackUuid(const char* bytes, char* out) {
  const uint64_t first = EncodeHex8(Load32(bytes));
  const uint64_t second = EncodeHex8(Load32(bytes + 4));
  const uint64_t third = EncodeHex8(Load32(bytes + 8));
  const uint64_t fourth = EncodeHex8(Load32(bytes + 12));
  Store64(first, out);
  out[8] = '-';
  Store32(second, out + 9);
  out[13] = '-';
  Store32(second >> 32, out + 14);
  out[18] = '-';
  Store32(third, out + 19);
  out[23] = '-';
  Store64(third >> 32 | fourth << 32, out + 24);
  Store32(fourth >> 32, out + 32);
}

uint64_t BigEndianPrefix(const char* bytes, size_t size) {
  uint64_t prefix = 0;
  for (size_t i = 0; i < 8; ++i) {
    prefix = (prefix << 8) | (i < size ? static_cast<uint8_t>(bytes[i]) : 0);
  }
  return prefix;
}

// Multiplies and folds the 128-bit product: each output bit depends on
// many bits of both inputs.
uint64_t Mix(uint64_t a, uint64_t b) {
  const absl::uint128 product = absl::uint128(a) * b;
  return absl::Uint128Low64(product) ^ absl::Uint128High64(product);
}

// Its address seeds HashId: it differs from run to run (address space
// layout), as absl::Hash's seed does, so colliding ids cannot be computed
// in advance.
const char kSeedAnchor = 0;

}  // namespace

PackedId PackedId::Borrow(absl::string_view id) {
  PackedId packed;
  if (PackUuid(id, packed.data_)) {
    packed.tag_ = kUuid;
  } else if (id.size() <= kInlineCapacity) {
    std::memset(packed.data_, 0, sizeof(packed.data_));
    if (!id.empty()) std::memcpy(packed.data_, id.data(), id.size());
    packed.tag_ = static_cast<uint8_t>(id.size());
  } else {
    packed.SetExternal(id.data(), id.size());
  }
  return packed;
}

const char* PackedId::external_data() const {
  const char* data;
  std::memcpy(&data, data_, sizeof(data));
  return data;
}

size_t PackedId::external_size() const {
  uint64_t size;
  std::memcpy(&size, data_ + 8, sizeof(size));
  return static_cast<size_t>(size);
}

void PackedId::SetExternal(const char* data, size_t size) {
  const uint64_t size64 = size;
  std::memcpy(data_, &data, sizeof(data));
  std::memcpy(data_ + 8, &size64, sizeof(size64));
  tag_ = kExternal;
}

size_t PackedId::size() const {
  if (tag_ == kUuid) return kUuidLength;
  if (tag_ == kExternal) return external_size();
  return tag_;
}

absl::string_view PackedId::Text(char (&buffer)[kUuidLength]) const {
  if (tag_ == kUuid) {
    UnpackUuid(data_, buffer);
    return absl::string_view(buffer, kUuidLength);
  }
  if (tag_ == kExternal) {
    return absl::string_view(external_data(), external_size());
  }
  return absl::string_view(data_, tag_);
}

std::string PackedId::ToString() const {
  char buffer[kUuidLength];
  return std::string(Text(buffer));
}

uint64_t PackedId::Prefix() const {
  if (tag_ == kUuid) {
    char text[8];
    Store64(EncodeHex8(Load32(data_)), text);
    return BigEndianPrefix(text, 8);
  }
  if (tag_ == kExternal) return BigEndianPrefix(external_data(), 8);
  return BigEndianPrefix(data_, tag_);
}

int PackedId::Compare(const PackedId& a, const PackedId& b) {
  // Hex digits sort as their values do ('0' < '9' < 'a'), and the dashes
  // are at the same places, so two UUIDs compare as their bytes.
  if (a.tag_ == kUuid && b.tag_ == kUuid) {
    return std::memcmp(a.data_, b.data_, sizeof(a.data_));
  }
  char a_buffer[kUuidLength];
  char b_buffer[kUuidLength];
  return a.Text(a_buffer).compare(b.Text(b_buffer));
}

bool PackedId::ExternalEqual(const PackedId& a, const PackedId& b) {
  const size_t size = a.external_size();
  return size == b.external_size() &&
         std::memcmp(a.external_data(), b.external_data(), size) == 0;
}

CompactId::CompactId(const PackedId& id) : packed_(id) {
  if (id.is_external()) {
    const size_t size = id.external_size();
    char* copy = new char[size];
    std::memcpy(copy, id.external_data(), size);
    packed_.SetExternal(copy, size);
  }
}

CompactId::CompactId(CompactId&& other) noexcept : packed_(other.packed_) {
  other.packed_ = PackedId();
}

CompactId& CompactId::operator=(CompactId&& other) noexcept {
  if (this != &other) {
    if (packed_.is_external()) delete[] packed_.external_data();
    packed_ = other.packed_;
    other.packed_ = PackedId();
  }
  return *this;
}

CompactId::~CompactId() {
  if (packed_.is_external()) delete[] packed_.external_data();
}

uint32_t HashId(absl::string_view id) {
  const char* p = id.data();
  size_t n = id.size();
  uint64_t h =
      Mix(reinterpret_cast<uintptr_t>(&kSeedAnchor) ^ n, 0xa0761d6478bd642f);
  for (; n > 16; p += 16, n -= 16) {
    h = Mix(Load64(p) ^ 0xe7037ed1a0b428db, Load64(p + 8) ^ h);
  }
  // 0 to 16 bytes left, read as two words that overlap if need be (the
  // length, mixed in above, tells where they overlap).
  uint64_t a = 0;
  uint64_t b = 0;
  if (n >= 8) {
    a = Load64(p);
    b = Load64(p + n - 8);
  } else if (n >= 4) {
    a = Load32(p);
    b = Load32(p + n - 4);
  } else if (n > 0) {
    a = uint64_t{static_cast<uint8_t>(p[0])} << 16 |
        uint64_t{static_cast<uint8_t>(p[n / 2])} << 8 |
        static_cast<uint8_t>(p[n - 1]);
  }
  h = Mix(Mix(a ^ 0x8ebc6af09c88c6e3, b ^ h), 0x589965cc75374cc3);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

}  // namespace jambalancer
