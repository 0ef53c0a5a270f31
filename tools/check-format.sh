#!/usr/bin/env bash
# Fails (listing the files) if any C++ source differs from clang-format's
# output under the repository's .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=()
while IFS= read -r -d '' file; do
  clang-format --dry-run -Werror "$file" >/dev/null 2>&1 || bad+=("$file")
done < <(find proto server client tests bench \( -name '*.cc' -o -name '*.h' \) -print0)
if ((${#bad[@]})); then
  printf 'not clang-formatted (run clang-format -i):\n'
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "all C++ sources are clang-formatted"
