#!/usr/bin/env bash
# The build steps of the container image: deploy/docker/Dockerfile runs this
# script, and so does CI (tests/deploy/docker_build_steps_test.py), which
# proves on a machine without a container engine that the steps build working
# binaries.
#
# Usage: tools/docker-build-steps.sh BUILD_DIR OUT_DIR
#
# Configures a Release build of the server and jamctl only (no tests, no
# benchmarks) in BUILD_DIR, builds both, installs them stripped into
# OUT_DIR/bin, and checks that they work: the server starts on a free
# loopback port and `jamctl health` answers SERVING. Needs the Debian build
# packages of the Dockerfile's build stage (a subset of
# tools/install-deps.sh's).
set -euo pipefail

if (($# != 2)); then
  echo "usage: $0 BUILD_DIR OUT_DIR" >&2
  exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
build_dir=$1
out_dir=$2

cmake -S "$src" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DJAM_BALANCER_BUILD_TESTS=OFF -DJAM_BALANCER_BUILD_BENCHMARKS=OFF
cmake --build "$build_dir" --parallel "$(nproc)" --target jam-balancer jamctl

install -d "$out_dir/bin"
install -m 0755 --strip "$build_dir/server/jam-balancer" \
  "$build_dir/client/jamctl" "$out_dir/bin/"

# Smoke test of the installed binaries: start, answer health, stop on SIGTERM.
log=$(mktemp)
"$out_dir/bin/jam-balancer" --listen=127.0.0.1:0 --metrics_listen= 2>"$log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
port=
for _ in $(seq 100); do # Up to 10 s.
  port=$(sed -n 's/.* port=\([0-9]*\).*/\1/p' "$log")
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "docker-build-steps: jam-balancer did not start:" >&2
  cat "$log" >&2
  exit 1
fi
"$out_dir/bin/jamctl" --target="127.0.0.1:$port" --deadline=5s health
kill -TERM "$server"
wait "$server"
trap - EXIT
rm -f "$log"
echo "docker-build-steps: built and checked $out_dir/bin/jam-balancer and $out_dir/bin/jamctl"
