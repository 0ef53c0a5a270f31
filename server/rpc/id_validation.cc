#include "server/rpc/id_validation.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace jambalancer {
namespace {

// Decodes the UTF-8 sequence at s[*pos], advancing *pos. Returns false if the
// bytes are not well-formed UTF-8 (overlong forms and surrogates included).
bool NextCodePoint(absl::string_view s, size_t* pos, uint32_t* code_point) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t lead = byte(*pos);
  size_t length;
  uint32_t cp;
  uint32_t min;
  if (lead < 0x80) {
    length = 1, cp = lead, min = 0;
  } else if ((lead & 0xe0) == 0xc0) {
    length = 2, cp = lead & 0x1f, min = 0x80;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3, cp = lead & 0x0f, min = 0x800;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    return false;
  }
  if (*pos + length > s.size()) return false;
  for (size_t i = 1; i < length; ++i) {
    const uint8_t continuation = byte(*pos + i);
    if ((continuation & 0xc0) != 0x80) return false;
    cp = (cp << 6) | (continuation & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return false;
  }
  *pos += length;
  *code_point = cp;
  return true;
}

bool IsControl(uint32_t cp) { return cp < 0x20 || (cp >= 0x7f && cp < 0xa0); }

// Well-formed UTF-8, and without control characters unless allowed.
absl::Status CheckText(absl::string_view field, absl::string_view text,
                       bool allow_control) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t at = pos;
    uint32_t cp;
    if (!NextCodePoint(text, &pos, &cp)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " must be valid UTF-8: bad byte at offset ", at));
    }
    if (!allow_control && IsControl(cp)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " must not contain control characters: one at offset ", at));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateUtf8(absl::string_view field, absl::string_view text) {
  return CheckText(field, text, /*allow_control=*/true);
}

absl::Status ValidateId(absl::string_view field, absl::string_view id) {
  if (id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must not be empty"));
  }
  if (id.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be at most ", kMaxIdBytes, " bytes, got ", id.size()));
  }
  return CheckText(field, id, /*allow_control=*/false);
}

}  // namespace jambalancer
