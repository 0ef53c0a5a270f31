#!/usr/bin/env bash
# Smoke test of jam-bench (ctest jam_bench_smoke): every workload for about a
# second against jam-balancer and against empty-server, each on 127.0.0.1
# port 0; every call must succeed and the JSON report must hold calls. Then
# an open-loop run, and a run against a server that goes away, which must
# exit 1 naming the status code. Timings mean nothing.
# Usage: jam_bench_smoke.sh JAM_BENCH JAM_BALANCER EMPTY_SERVER
set -euo pipefail
jam_bench=$1 balancer=$2 empty=$3
work=$(mktemp -d /tmp/jam-bench-smoke.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Starts a server on port 0; sets port and pid.
start() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do
    grep -q ' port=' "$log" && break
    sleep 0.05
  done
  port=$(grep -o ' port=[0-9]*' "$log" | head -1 | cut -d= -f2)
  [ -n "$port" ] || fail "server did not start: $(cat "$log")"
}

# Runs jam-bench; checks exit 0, no errors and calls > 0 in the JSON.
check() {
  local name=$1
  shift
  local out=$work/$name.json
  timeout 60 "$jam_bench" --warmup=200ms --duration=700ms --concurrency=8 \
    --channels=2 --prepopulate=100 --population=50 --format=json "$@" \
    >"$out" 2>"$work/$name.err" ||
    fail "$name: jam-bench exited $?: $(cat "$out" "$work/$name.err")"
  python3 - "$out" "$name" <<'EOF' || fail "$name: bad report: $(cat "$out")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["calls"] > 0 and r["errors_total"] == 0, r
assert r["latency_us"]["p50"] <= r["latency_us"]["p99"] <= r["latency_us"]["max"] * 1.01, r
if r["workload"] == "batch":
    assert r["ops"] == r["calls"] * r["batch_size"], r
if r["workload"] in ("arrivals", "batch"):
    assert r["arrivals"] > 0 and r["redirects"] == 0, r
print(f"ok  {sys.argv[2]}: {r['calls_per_s']:.0f} calls/s")
EOF
}

start "$work/balancer.log" "$balancer" --listen=127.0.0.1:0 --metrics_listen=
for workload in current_jam arrivals refresh has_capacity batch; do
  check "balancer-$workload" --target=127.0.0.1:"$port" --workload="$workload"
done
check balancer-open-loop --target=127.0.0.1:"$port" --workload=arrivals \
  --rate=500
kill -TERM "$pid"

start "$work/empty.log" "$empty" --listen=127.0.0.1:0
empty_pid=$pid
for workload in current_jam arrivals batch; do
  check "empty-$workload" --target=127.0.0.1:"$port" --workload="$workload"
done
# The server goes away mid-run: exit status 1, and the report says why.
(sleep 0.6 && kill -TERM "$empty_pid") &
status=0
timeout 60 "$jam_bench" --target=127.0.0.1:"$port" --warmup=0s \
  --duration=1500ms --concurrency=4 --channels=1 --progress=false \
  >"$work/gone.txt" 2>&1 || status=$?
[ "$status" = 1 ] || fail "server gone: exit status $status, not 1: $(cat "$work/gone.txt")"
grep -Eq 'errors +.*(UNAVAILABLE|CANCELLED)' "$work/gone.txt" ||
  fail "server gone: no status codes reported: $(cat "$work/gone.txt")"
echo "ok  server gone: exit 1, $(grep '^errors' "$work/gone.txt")"

# Wrong usage: exit status 2.
status=0
"$jam_bench" --workload=nonsense >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || fail "--workload=nonsense: exit status $status, not 2"
echo "ok  wrong usage: exit 2"
