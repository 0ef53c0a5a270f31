#include "server/rpc/pool_config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace jambalancer {
namespace {

bool IsNameChar(char c) {
  return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' ||
         c == '_';
}

absl::Status BadEntry(absl::string_view source, absl::string_view entry,
                      absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": pool \"", entry, "\": ", why));
}

absl::StatusOr<absl::Duration> ParseTtl(absl::string_view source,
                                        absl::string_view entry,
                                        absl::string_view what,
                                        absl::string_view text) {
  absl::Duration ttl;
  if (!absl::ParseDuration(absl::StripAsciiWhitespace(text), &ttl) ||
      ttl < absl::Milliseconds(1)) {
    return BadEntry(source, entry,
                    absl::StrCat(what,
                                 " must be a duration of at least 1ms "
                                 "(e.g. 15s), got \"",
                                 text, "\""));
  }
  return ttl;
}

}  // namespace

absl::Status ValidatePoolName(absl::string_view field, absl::string_view name) {
  if (name.empty() || name.size() > kMaxPoolNameBytes || name[0] == '-' ||
      name[0] == '_' || !std::all_of(name.begin(), name.end(), IsNameChar)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be 1 to ", kMaxPoolNameBytes,
        " bytes of a-z, 0-9, '-' and '_', starting with a letter "
        "or digit; got \"",
        absl::CHexEscape(name.substr(0, 2 * kMaxPoolNameBytes)), "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PoolConfig>> ParsePools(absl::string_view source,
                                                   absl::string_view text,
                                                   const PoolConfig& defaults) {
  std::vector<PoolConfig> pools;
  absl::flat_hash_set<std::string> names;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = line.substr(0, line.find('#'));
    for (absl::string_view entry : absl::StrSplit(line, ',')) {
      entry = absl::StripAsciiWhitespace(entry);
      if (entry.empty()) continue;
      const std::vector<absl::string_view> parts = absl::StrSplit(entry, ':');
      if (parts.size() < 2 || parts.size() > 4) {
        return BadEntry(source, entry,
                        "expected NAME:MAX_USERS[:RESERVATION_TTL[:MAX_"
                        "RESERVATION_TTL]]");
      }
      PoolConfig pool = defaults;
      pool.name = std::string(absl::StripAsciiWhitespace(parts[0]));
      if (absl::Status s = ValidatePoolName("the name", pool.name); !s.ok()) {
        return BadEntry(source, entry, s.message());
      }
      if (pool.name == kDefaultPoolName) {
        return BadEntry(source, entry,
                        "the default pool is configured by --max_users and "
                        "--reservation_ttl");
      }
      if (!names.insert(pool.name).second) {
        return BadEntry(source, entry, "configured twice");
      }
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(parts[1]),
                            &pool.max_users) ||
          pool.max_users < 1) {
        return BadEntry(source, entry, "MAX_USERS must be a whole number >= 1");
      }
      if (parts.size() >= 3) {
        absl::StatusOr<absl::Duration> ttl =
            ParseTtl(source, entry, "RESERVATION_TTL", parts[2]);
        if (!ttl.ok()) return ttl.status();
        pool.reservation_ttl = *ttl;
        // A default cap below the pool's own default would refuse it.
        pool.max_reservation_ttl =
            std::max(pool.max_reservation_ttl, pool.reservation_ttl);
      }
      if (parts.size() == 4) {
        absl::StatusOr<absl::Duration> ttl =
            ParseTtl(source, entry, "MAX_RESERVATION_TTL", parts[3]);
        if (!ttl.ok()) return ttl.status();
        pool.max_reservation_ttl = *ttl;
      }
      if (pool.reservation_ttl > pool.max_reservation_ttl) {
        return BadEntry(source, entry,
                        "RESERVATION_TTL must not exceed MAX_RESERVATION_TTL");
      }
      pools.push_back(std::move(pool));
      if (pools.size() + 1 > kMaxPools) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": at most ", kMaxPools - 1,
                         " pools besides the default one may be configured"));
      }
    }
  }
  return pools;
}

absl::StatusOr<std::vector<PoolConfig>> ReadPoolsFile(
    const std::string& path, const PoolConfig& defaults) {
  std::ifstream file(path);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the pools file ", path));
  }
  std::stringstream text;
  text << file.rdbuf();
  return ParsePools(path, text.str(), defaults);
}

}  // namespace jambalancer
