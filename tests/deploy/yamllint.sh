#!/usr/bin/env bash
# yamllint --strict on every YAML file of the repository (tracked or new, not
# ignored), with deploy/.yamllint.yaml.
set -euo pipefail
cd "$(dirname "$0")/../.."
files=()
while IFS= read -r -d '' file; do
  [ -f "$file" ] && files+=("$file")
done < <(git ls-files -z --cached --others --exclude-standard -- '*.yaml' '*.yml')
if ((${#files[@]} == 0)); then
  echo "yamllint.sh: no YAML files found" >&2
  exit 1
fi
echo "yamllint: ${#files[@]} files"
yamllint --strict --config-file deploy/.yamllint.yaml -- "${files[@]}"
