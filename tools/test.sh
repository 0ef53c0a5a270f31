#!/usr/bin/env bash
# Installs the dependencies, builds, and runs every test (unit, end-to-end,
# system tests against the real binaries, lint and format checks).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
cd build
ctest --output-on-failure --timeout 300 --no-tests=error "$@"
