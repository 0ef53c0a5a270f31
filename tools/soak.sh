#!/usr/bin/env bash
# Soak test of jam-balancer: a long run at half of the peak load with the
# churn of a real deployment, checking that nothing leaks or drifts.
#
#   tools/soak.sh [--minutes N]
#
# Builds nothing: uses the binaries in build/ (or $BUILD_DIR, or
# --bin_dir). Then:
#   1. the peak: a fresh jam-balancer on 127.0.0.1 (free ports), jam-bench
#      arrivals_fe (4 front ends, 64 calls in flight, closed loop) for
#      --peak_seconds; its calls/s is the peak;
#   2. the soak: another fresh jam-balancer (--lease_ttl=LEASE), jam-bench
#      --workload=soak (bench/load/soak.h) at --load_fraction of the peak
#      (open loop) for --minutes in all, the first --warmup of them the
#      warm-up: front ends with sessions and keepalives, arrivals (CurrentJam
#      with a user id + AddUser), departures (RemoveUser, some holding the
#      seat), presence Refreshes, and every --churn_every one front end
#      leaves: its lease runs out, or it pauses past its lease (its next
#      call fails FAILED_PRECONDITION, expected) and resyncs, or it ends its
#      session. Every --interval: calls, errors, p50/p99/max, the server's
#      RSS (/proc/PID/status VmRSS), descriptors, CPU and GetStats counts.
# Criteria (jam-bench prints them; exit status 1 if one is not met):
#   - errors = 0: every call answered OK except the expected
#     FAILED_PRECONDITION of a paused front end, every answer fits (a seat
#     reserved means added, a member leaving means removed, a reload gets its
#     held jam, EndSession and Sync count the front end's users exactly),
#     expired front ends are gone, and after the run the balancer is empty;
#   - the server's RSS after the warm-up spreads at most 5 % of its minimum;
#   - p99 does not drift: the median p99 of the last third of the intervals
#     after the warm-up is at most 2x the first third's.
# Writes build/artifacts/soak/ (BIN_DIR/artifacts/soak, or --out_dir):
# soak.log (progress and intervals), soak.json (jam-bench's report, with the
# peak and the settings), server.log, peak.json, and soak.md, a markdown
# section for BENCHMARKS.md, also printed at the end. Every server is killed
# by its PID on exit.
#
# Options:
#   --minutes=N         soak length, warm-up included (30)
#   --warmup=DURATION   warm-up excluded from the RSS and p99 criteria (4m
#                       from 20 minutes up, else a quarter of the run)
#   --interval=DURATION reporting interval (30s; 10s below 10 minutes)
#   --load_fraction=F   soak rate as a fraction of the peak (0.5)
#   --rate=R            soak rate in calls/s; skips the peak measurement
#   --peak_seconds=S    length of the peak measurement (10)
#   --frontends=N       front ends at a time (4)
#   --population=N      users they keep in all (20000)
#   --lease=DURATION    the front ends' lease (3s), also --lease_ttl
#   --churn_every=D     a front end leaves this often (20s)
#   --bin_dir=DIR       where the binaries are built (build/, or $BUILD_DIR)
#   --out_dir=DIR       artifacts (BIN_DIR/artifacts/soak)
#   --smoke             a check of this script for ctest (about 50 s): a 3 s
#                       peak, then 40 s at 0.2 of it with 5 s intervals and
#                       fast churn; errors fail it, RSS and p99 are printed
#                       only
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
invocation="tools/soak.sh${*:+ $*}"

minutes=30
warmup=
interval=
load_fraction=0.5
rate=
peak_seconds=10
frontends=4
population=20000
lease=3s
churn_every=20s
bin_dir=${BUILD_DIR:-$repo/build}
out_dir=
smoke=false
# Criteria: jam-bench's limits (0: printed only).
max_rss_spread=0.05
max_p99_drift=2

while (($#)); do
  arg=$1
  shift
  case $arg in
    --minutes) minutes=${1:?--minutes needs a value}; shift ;;
    --minutes=*) minutes=${arg#*=} ;;
    --warmup=*) warmup=${arg#*=} ;;
    --interval=*) interval=${arg#*=} ;;
    --load_fraction=*) load_fraction=${arg#*=} ;;
    --rate=*) rate=${arg#*=} ;;
    --peak_seconds=*) peak_seconds=${arg#*=} ;;
    --frontends=*) frontends=${arg#*=} ;;
    --population=*) population=${arg#*=} ;;
    --lease=*) lease=${arg#*=} ;;
    --churn_every=*) churn_every=${arg#*=} ;;
    --bin_dir=*) bin_dir=${arg#*=} ;;
    --out_dir=*) out_dir=${arg#*=} ;;
    --smoke) smoke=true ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "soak: unknown argument $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

log() { printf 'soak: %s\n' "$*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}

[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--minutes must be a number"
# The soak's length in seconds, its warm-up and the rest.
total_s=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
if $smoke; then
  total_s=40 peak_seconds=3 load_fraction=0.2 population=4000 lease=3s
  churn_every=4s interval=5s warmup=10s max_rss_spread=0 max_p99_drift=0
fi
if [ -z "$interval" ]; then
  interval=30s
  ((total_s >= 600)) || interval=10s
fi
if [ -z "$warmup" ]; then
  if ((total_s >= 1200)); then warmup=4m; else warmup="$((total_s / 4))s"; fi
fi
# jam-bench takes Go-style durations; the rest of the run after the warm-up.
warmup_s=$(python3 -c '
import re, sys
units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
m = re.fullmatch(r"([0-9.]+)(ms|s|m|h)", sys.argv[1])
if not m: sys.exit("bad duration " + sys.argv[1])
print(int(float(m.group(1)) * units[m.group(2)]))' "$warmup") ||
  die "--warmup must be a duration like 4m or 90s"
((warmup_s < total_s)) || die "--warmup ($warmup) must be shorter than the run"
duration_s=$((total_s - warmup_s))

balancer_bin=$bin_dir/server/jam-balancer
jam_bench=$bin_dir/bench/jam-bench
for binary in "$balancer_bin" "$jam_bench"; do
  [ -x "$binary" ] || die "$binary is not built (build first, or set BUILD_DIR)"
done
out_dir=${out_dir:-$bin_dir/artifacts/soak}
mkdir -p "$out_dir"
rm -f "$out_dir"/{soak.log,soak.json,soak.md,server.log,peak.json,peak.server.log}

# --- Servers started here: each is killed by its PID on exit. ---
pids=()
# shellcheck disable=SC2317 # run by the trap
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts jam-balancer on 127.0.0.1 port 0 (gRPC and metrics) with the
# arguments given; reads its ports from its start-up line. Sets server_pid,
# server_port, metrics_port.
start_server() {
  local log_file=$1
  shift
  : >"$log_file"
  "$balancer_bin" --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
    --shutdown_grace=1s "$@" >"$log_file" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 200); do
    grep -q ' port=' "$log_file" && break
    kill -0 "$server_pid" 2>/dev/null || die "jam-balancer exited: $(cat "$log_file")"
    sleep 0.05
  done
  server_port=$(grep -o ' port=[0-9]*' "$log_file" | head -1 | cut -d= -f2)
  [ -n "$server_port" ] || die "jam-balancer did not start within 10 s"
  metrics_port=$(grep -o 'metrics_port=[0-9]*' "$log_file" | head -1 | cut -d= -f2 || true)
}

stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 1. The peak. ---
peak=
if [ -z "$rate" ]; then
  start_server "$out_dir/peak.server.log" --resync_grace=0s
  log "peak: jam-bench arrivals_fe, closed loop, ${peak_seconds}s"
  timeout $((peak_seconds + 60)) "$jam_bench" --target=127.0.0.1:"$server_port" \
    --workload=arrivals_fe --frontends=4 --channels=4 --concurrency=64 \
    --population="$population" --warmup=2s --duration="${peak_seconds}s" \
    --format=json --progress=false >"$out_dir/peak.json" ||
    die "the peak measurement failed: $(cat "$out_dir/peak.json")"
  stop_server
  peak=$(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["calls_per_s"]))' \
    "$out_dir/peak.json")
  rate=$(awk -v p="$peak" -v f="$load_fraction" 'BEGIN { printf "%d", p * f }')
  log "peak $peak calls/s; the soak runs at $load_fraction of it: $rate calls/s"
fi
((rate > 0)) || die "no rate to run at"

# --- 2. The soak. ---
start_server "$out_dir/server.log" --lease_ttl="$lease"
cmd=("$jam_bench" --target=127.0.0.1:"$server_port" --workload=soak
  --rate="$rate" --concurrency=256 --channels=4 --frontends="$frontends"
  --population="$population" --lease="$lease" --churn_every="$churn_every"
  --interval="$interval" --warmup="${warmup_s}s" --duration="${duration_s}s"
  --server_pid="$server_pid" --max_rss_spread="$max_rss_spread"
  --max_p99_drift="$max_p99_drift" --format=json)
log "soak: ${total_s}s at $rate calls/s (warm-up ${warmup_s}s), server PID $server_pid"
log "$(printf '%q ' "${cmd[@]}" | sed "s|$repo/||g")"
status=0
timeout $((total_s + 120)) "${cmd[@]}" >"$out_dir/soak.json" \
  2> >(tee "$out_dir/soak.log" >&2) || status=$?
# The balancer's own view of its memory, after the run (the front ends gone).
metrics_rss=
if [ -n "$metrics_port" ]; then
  metrics_rss=$(python3 -c '
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
for line in text.splitlines():
    if line.startswith("process_resident_memory_bytes "):
        print(int(float(line.split()[1])))' \
    "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null || true)
fi
stop_server
[ -s "$out_dir/soak.json" ] || die "jam-bench wrote no report (exit $status): see $out_dir/soak.log"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$out_dir" "$peak" "$load_fraction" "$minutes" "$load_start" \
  "$load_end" "${metrics_rss:--1}" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
  "$invocation" \
  "$(printf '%q ' "${cmd[@]}" | sed "s|$repo/||g")" <<'EOF'
import json, os, sys

out_dir, peak, fraction, minutes, load_start, load_end, metrics_rss, commit, invocation, command = sys.argv[1:]
path = os.path.join(out_dir, "soak.json")
r = json.load(open(path))
r["peak_calls_per_s"] = float(peak) if peak else None
r["load_fraction"] = float(fraction) if peak else None
r["metrics_rss_bytes_after"] = int(metrics_rss)
r["load_average"] = {"start": load_start, "end": load_end}
r["commit"] = commit
r["command"] = command
json.dump(r, open(path, "w"), indent=1)

s, c = r["summary"], {x["name"]: x for x in r["criteria"]}
mib = lambda b: "?" if b < 0 else f"{b / 1048576:.1f}"
def verdict(x):
    if not x["known"]: return "unknown"
    return ("yes" if x["met"] else "**no**") if x["checked"] else "not checked"
measured = [i for i in r["intervals"] if not i["warmup"]]
late = sum(i["late_starts"] for i in measured)
offered = (f"{r['rate']:,.0f} calls/s = {r['load_fraction']} × the peak "
           f"({r['peak_calls_per_s']:,.0f} calls/s, arrivals_fe closed loop)"
           if peak else f"{r['rate']:,.0f} calls/s")
errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "none"
ch = r["churn"]
fin = r["final"]
total = r["warmup_s"] + r["duration_s"]
length = f"{total / 60:g} minutes" if total % 60 == 0 else f"{total:.0f} s"
lines = [
    f"### Soak: {length} at "
    + (f"{float(fraction):g} of the peak" if peak else f"{r['rate']:,.0f} calls/s")
    + " with churn",
    "",
    "| Measure | Value |",
    "|---|---|",
    f"| Load offered (open loop) | {offered} |",
    f"| Achieved after the warm-up | {s['calls_per_s']:,.0f} calls/s; {late:,} late starts |",
    f"| Front ends | {r['frontends']} at a time, {r['population']:,} users, lease {r['lease_s']:g} s, keepalive every lease/3 |",
    f"| Churn (one every {r['churn_every_s']:g} s) | {ch['started']} started; {ch['expired']} expired, {ch['paused']} paused past their lease and resynced ({ch['resynced']}), {ch['ended']} ended |",
    f"| Calls answered OK | {r['calls']:,} (+ {r['keepalives']:,} keepalives); expected FAILED_PRECONDITION after a pause: {r['expected_failures']} |",
    f"| Errors | {r['errors_total']} ({errors}) |",
    f"| Warm-up (left out of the RSS and p99 figures) | {r['warmup_s']:g} s; intervals of {r['interval_s']:g} s |",
    f"| Server RSS after the warm-up | min {mib(s['rss_min_bytes'])} MiB, max {mib(s['rss_max_bytes'])} MiB, spread {s['rss_spread'] * 100:.2f} %; first {mib(s['rss_first_bytes'])}, last {mib(s['rss_last_bytes'])} MiB; slope {s['rss_slope_mib_per_h']:+.2f} MiB/h |",
    f"| Intervals after the warm-up that did not keep up (late starts > 1 %, a call started > 100 ms late, or < 98 % of the rate) | {s['overloaded_intervals']} of {s['measured_intervals']}; machine load average (1 min) up to {s['load1_max']:.1f} |",
    f"| p99 per interval after the warm-up | {s['p99_min_us']:,.0f} – {s['p99_max_us']:,.0f} µs; median of the first third {s['p99_first_third_us']:,.0f} µs, of the last third {s['p99_last_third_us']:,.0f} µs ({s['p99_drift']:.2f}x) |",
    f"| After the run (every front end gone) | {fin['jams']} jams, {fin['users']} users, {fin['reservations']} reservations, {fin['sessions']} sessions; RSS {mib(fin['rss_bytes'])} MiB (metrics: {mib(r['metrics_rss_bytes_after'])} MiB) |",
    f"| Load average at start / end | {load_start} / {load_end} |",
    "",
    "| Criterion | Measured | Met |",
    "|---|---|---|",
    f"| errors = 0 | {r['errors_total']} | {verdict(c['errors'])} |",
    f"| RSS spread after the warm-up ≤ {c['rss_spread']['limit'] * 100:g} % | {s['rss_spread'] * 100:.2f} % | {verdict(c['rss_spread'])} |",
    f"| p99 drift (last third / first third) ≤ {c['p99_drift']['limit']:g}x | {s['p99_drift']:.2f}x | {verdict(c['p99_drift'])} |",
    "",
    f"Commit {commit}; `{invocation}` ran:",
    "",
    "```sh",
    command.strip(),
    "```",
]
md = "\n".join(lines) + "\n"
open(os.path.join(out_dir, "soak.md"), "w").write(md)
print(md)
print("soak: " + ("PASS" if r["passed"] else "FAIL") + f"; artifacts in {out_dir}", file=sys.stderr)
EOF
exit "$status"
