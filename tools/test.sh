#!/usr/bin/env bash
# Installs the dependencies, builds, and runs every test (unit, end-to-end,
# system tests against the real binaries, lint and format checks), then the
# unit and end-to-end tests again under AddressSanitizer + UBSan (with the
# fuzz targets for a bounded time) and under ThreadSanitizer
# (tools/sanitize.sh). Extra arguments go to the first ctest run.
# SANITIZE=0 skips the sanitizer builds.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
(cd build && ctest --output-on-failure --timeout 300 --no-tests=error "$@")
if [ "${SANITIZE:-1}" != 0 ]; then
  JAM_BALANCER_FUZZ_SECONDS=${JAM_BALANCER_FUZZ_SECONDS:-45} \
    tools/sanitize.sh asan-ubsan
  # Under TSan, the tests that run a gRPC server or channel report races
  # inside Debian's gRPC, which is not built with TSan (its hand-offs
  # between threads are invisible to it): those run under ASan only.
  SANITIZE_SKIP=$(paste -sd '|' tools/tsan_skip.txt) tools/sanitize.sh tsan
fi
