#!/usr/bin/env bash
# Installs the dependencies, builds (Release) and runs the server in the
# foreground. Arguments go to jam-balancer, e.g. --listen=127.0.0.1:50051.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
BUILD_DIR=build-release tools/build.sh -DCMAKE_BUILD_TYPE=Release \
  -DJAM_BALANCER_BUILD_TESTS=OFF -DJAM_BALANCER_BUILD_BENCHMARKS=OFF
exec build-release/server/jam-balancer "$@"
