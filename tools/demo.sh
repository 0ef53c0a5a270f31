#!/usr/bin/env bash
# Try the demo front end (examples/frontend) in a browser: starts a jam
# balancer and two front ends, fe-a and fe-b, on free loopback ports, prints
# both URLs and then the front ends' logs, and stops all three (by PID) on
# Ctrl-C or when it exits. Builds the balancer if build/ has none and
# installs the npm packages if they are missing.
#
#   bash tools/demo.sh [FRONT-END FLAG...]   e.g. --hold-seat-ms=10000
#
# Extra arguments go to both front ends (node examples/frontend/server.js
# --help). JAM_BALANCER names another balancer binary; FE_A_PORT and
# FE_B_PORT fix the front ends' ports (default: free ones).
set -euo pipefail
cd "$(dirname "$0")/.."

balancer=${JAM_BALANCER:-build/server/jam-balancer}
if [ ! -x "$balancer" ]; then
  echo "demo: no $balancer yet, building (tools/install-deps.sh installs what the build needs)"
  tools/build.sh
fi
for dir in client/node examples/frontend; do
  if [ ! -d "$dir/node_modules" ]; then
    echo "demo: installing the npm packages of $dir"
    (cd "$dir" && npm ci --no-audit --no-fund)
  fi
done

# Each process in its own process group, so that Ctrl-C reaches only this
# script, which stops the front ends first (they end their sessions), then
# the balancer.
set -m
logs=$(mktemp -d /tmp/jam-demo.XXXXXX)
pids=()
cleanup() {
  trap - EXIT INT TERM
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "demo: stopped; logs in $logs"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# Waits up to 10 s for a line of file $1 matching the extended regex $2
# and prints what its group matched; fails showing the file's end otherwise.
await_line() {
  local file=$1 pattern=$2 found
  for _ in $(seq 100); do
    found=$(sed -nE "s|.*$pattern.*|\\1|p" "$file" 2>/dev/null | head -n 1)
    if [ -n "$found" ]; then
      echo "$found"
      return 0
    fi
    sleep 0.1
  done
  echo "demo: no line like '$pattern' in $file within 10 s:" >&2
  tail -n 20 "$file" >&2
  return 1
}

"$balancer" --listen=127.0.0.1:0 --metrics_listen= 2>"$logs/balancer.log" &
pids+=($!)
port=$(await_line "$logs/balancer.log" 'jam-balancer started.* port=([0-9]+)')

declare -A urls
for fe in fe-a fe-b; do
  var=FE_${fe#fe-}_PORT
  var=${var^^}
  node examples/frontend/server.js --balancer="127.0.0.1:$port" \
    --frontend-id="$fe" --port="${!var:-0}" "$@" \
    >"$logs/$fe.out" 2>"$logs/$fe.log" &
  pids+=($!)
done
for fe in fe-a fe-b; do
  urls[$fe]=$(await_line "$logs/$fe.out" 'listening on (http://[^ ]+)')
done

cat <<EOF

  jam balancer   127.0.0.1:$port (pid ${pids[0]})
  fe-a           ${urls[fe-a]}
  fe-b           ${urls[fe-b]}

Open both URLs in several tabs: each tab is a visitor, seven to a jam across
both front ends. Logs: $logs. Ctrl-C stops everything.

EOF
tail -n +1 -f "$logs/fe-a.log" "$logs/fe-b.log" &
pids+=($!)
wait "${pids[-1]}"
