#!/usr/bin/env bash
# Smoke test of jam-bench (ctest jam_bench_smoke): every workload for about a
# second against jam-balancer and against empty-server, each on 127.0.0.1
# port 0; every call must succeed and the JSON report must hold calls. Then
# an open-loop run, and a run against a server that goes away, which must
# exit 1 naming the status code. arrivals_fe (front-end ids, a short lease so
# that keepalives go out), sync (a few thousand users) and expiry (another
# front end's users expire mid-run) run against jam-balancer; against the empty server, which does not implement Sync,
# arrivals_fe must fail cleanly at the start (exit 1 naming the front end and
# the status) or, should the empty server ever answer Sync, pass like the
# others. batch also runs spread over two pools of a balancer with
# --pools. Timings mean nothing.
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
if r["workload"] in ("arrivals", "arrivals_fe", "batch"):
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
check balancer-arrivals_fe --target=127.0.0.1:"$port" --workload=arrivals_fe \
  --frontends=2 --lease=600ms
grep -Eq 'jam-bench: [1-9][0-9]* keepalives, 0 failed' \
  "$work/balancer-arrivals_fe.err" ||
  fail "arrivals_fe: no keepalives: $(cat "$work/balancer-arrivals_fe.err")"
# sync: 4 front ends x 2,000 users at once; every Sync answers its counts.
timeout 60 "$jam_bench" --target=127.0.0.1:"$port" --workload=sync \
  --frontends=4 --users_per_frontend=2000 --format=json \
  >"$work/sync.json" 2>"$work/sync.err" ||
  fail "sync: jam-bench exited $?: $(cat "$work/sync.json" "$work/sync.err")"
python3 - "$work/sync.json" <<'EOF' || fail "sync: bad report: $(cat "$work/sync.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["workload"] == "sync" and r["errors_total"] == 0, r
assert r["users"] == 8000 and r["jams"] == 4 * 286 and r["jam_users"] == 7, r
assert len(r["frontend_s"]) == 4, r
assert 0 < r["frontend_s_max"] <= r["wall_s"] * 1.001, r
print(f"ok  sync: 4 x 2,000 users in {r['wall_s']:.3f} s")
EOF
# A second sync of the same front ends replaces their truth (counts again).
timeout 60 "$jam_bench" --target=127.0.0.1:"$port" --workload=sync \
  --frontends=4 --users_per_frontend=700 --progress=false \
  >"$work/sync2.txt" 2>&1 ||
  fail "sync again: jam-bench exited $?: $(cat "$work/sync2.txt")"
grep -q '^errors       none' "$work/sync2.txt" ||
  fail "sync again: $(cat "$work/sync2.txt")"
echo "ok  sync again (text): $(grep '^wall' "$work/sync2.txt")"
# expiry: one more front end's 2,000 users expire mid-run; jam-bench checks
# that they are gone, and reports both probe windows.
timeout 60 "$jam_bench" --target=127.0.0.1:"$port" --workload=expiry \
  --warmup=200ms --duration=3s --concurrency=8 --channels=2 --frontends=2 \
  --population=50 --users_per_frontend=2000 --expiring_lease=500ms \
  --probe_window=200ms --format=json --progress=false \
  >"$work/expiry.json" 2>"$work/expiry.err" ||
  fail "expiry: jam-bench exited $?: $(cat "$work/expiry.json" "$work/expiry.err")"
python3 - "$work/expiry.json" <<'EOF' || fail "expiry: bad report: $(cat "$work/expiry.json")"
import json, sys
r = json.load(open(sys.argv[1]))
e = r["expiry"]
assert r["errors_total"] == 0 and e["removed"] and e["users"] == 2000, r
assert e["before"]["calls"] > 0 and e["during"]["calls"] > 0, r
print(f"ok  expiry: 2,000 users removed; others' p99 {e['before']['p99_us']:.0f}"
      f" µs before, {e['during']['p99_us']:.0f} µs during")
EOF
kill -TERM "$pid"

# batch over pools: a balancer with two pools besides the default one;
# slot i's Batch calls go to pool i % 2, each pool prepopulated. A pool the
# server lacks fails the run at the start (exit 1, NOT_FOUND).
start "$work/pools.log" "$balancer" --listen=127.0.0.1:0 --metrics_listen= \
  --pools=p1:7,p2:7
check balancer-batch-pools --target=127.0.0.1:"$port" --workload=batch \
  --pools=p1,p2
grep -q '"pools":\["p1","p2"\],' "$work/balancer-batch-pools.json" ||
  fail "batch over pools: no pools in $(cat "$work/balancer-batch-pools.json")"
status=0
timeout 60 "$jam_bench" --target=127.0.0.1:"$port" --workload=batch \
  --pools=p1,nonesuch --duration=200ms --warmup=0s --progress=false \
  >"$work/no-pool.txt" 2>&1 || status=$?
[ "$status" = 1 ] && grep -q 'NOT_FOUND' "$work/no-pool.txt" ||
  fail "unknown pool: exit $status: $(cat "$work/no-pool.txt")"
echo "ok  unknown pool: exit 1, NOT_FOUND"
kill -TERM "$pid"

start "$work/empty.log" "$empty" --listen=127.0.0.1:0
empty_pid=$pid
for workload in current_jam arrivals batch; do
  check "empty-$workload" --target=127.0.0.1:"$port" --workload="$workload"
done
# arrivals_fe: a clean failure of the sessions' Sync, or a clean run.
status=0
timeout 60 "$jam_bench" --target=127.0.0.1:"$port" --workload=arrivals_fe \
  --warmup=200ms --duration=700ms --concurrency=8 --channels=2 \
  --frontends=2 --population=50 --format=json \
  >"$work/empty-arrivals_fe.json" 2>"$work/empty-arrivals_fe.err" || status=$?
if [ "$status" = 0 ]; then
  grep -q '"errors_total":0,' "$work/empty-arrivals_fe.json" ||
    fail "empty-arrivals_fe: $(cat "$work/empty-arrivals_fe.json")"
  echo "ok  empty-arrivals_fe: ran (the empty server answers Sync)"
else
  [ "$status" = 1 ] && [ ! -s "$work/empty-arrivals_fe.json" ] &&
    grep -q 'Sync of front end bench-fe-0 failed: UNIMPLEMENTED' \
      "$work/empty-arrivals_fe.err" ||
    fail "empty-arrivals_fe: exit $status: $(cat "$work/empty-arrivals_fe.err")"
  echo "ok  empty-arrivals_fe: fails cleanly ($(tail -1 "$work/empty-arrivals_fe.err"))"
fi
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
status=0
"$jam_bench" --workload=arrivals_fe --channels=2 --frontends=3 \
  >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || fail "--frontends above --channels: exit status $status, not 2"
status=0
"$jam_bench" --workload=arrivals --pools=p1 >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || fail "--pools without batch: exit status $status, not 2"
echo "ok  wrong usage: exit 2"
