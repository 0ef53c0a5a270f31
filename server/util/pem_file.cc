#include "server/util/pem_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace jambalancer {

absl::StatusOr<std::string> ReadPemFile(absl::string_view name,
                                        const std::string& path) {
  errno = 0;
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " \"", path, "\": cannot read (",
                     errno != 0 ? std::strerror(errno) : "cannot open", ")"));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " \"", path, "\": cannot read (",
                     errno != 0 ? std::strerror(errno) : "read error", ")"));
  }
  std::string pem = std::move(contents).str();
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, " \"", path, "\": not PEM (no \"-----BEGIN \" line)"));
  }
  return pem;
}

}  // namespace jambalancer
