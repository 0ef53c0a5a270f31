#!/usr/bin/env bash
# End-to-end benchmark of jam-balancer, in one command (Debian 12, as root):
#
#   tools/benchmark.sh
#
# Installs what it needs (tools/install-deps.sh, then h2load, redis-server
# and redis-benchmark), builds Release into build-release/, and measures, in
# ROUNDS interleaved rounds so that drift on a shared machine hits every
# contestant alike (round 1: empty-server first, round 2: jam-balancer
# first, ...):
#   1. bench/empty-server (the same service answering at once: the limit)
#      and jam-balancer, driven by jam-bench (closed loop) on current_jam,
#      arrivals and batch; and jam-balancer alone on arrivals_fe (the
#      arrival mix with front-end ids over --frontends front ends that Sync
#      first and send KeepAlive every lease/3), in two pairs a round with an
#      anonymous arrivals run, in both orders (ABBA); on sync
#      (--sync_frontends front ends each Sync --sync_users users at once to
#      a fresh server: the time until all are answered); and on expiry
#      (arrivals_fe while one more front end of --expiry_users users lets
#      its 1 s lease run out: the server's longest removal step, from its
#      log, and the other front ends' latency before and during the
#      removal);
#   2. both servers driven by h2load on CurrentJam, checking that every
#      request was a successful gRPC call (the balancer's
#      grpc_server_handled_total{grpc_code="OK"} delta, the empty server's
#      call count, must equal h2load's requests);
#   3. redis-server with Lua scripts of the same CurrentJam and arrival
#      semantics (bench/redis/*.lua), driven by redis-benchmark unpipelined
#      and 16-deep pipelined, checking the script calls and zero errors;
#   4. then latency in an open loop at half of the empty server's peak
#      (jam-bench's closed-loop median), and at a quarter, for both servers;
#   5. once, failover between two replicas on a 3-member etcd cluster on
#      loopback (bench/failover_benchmark.py, lease 1 s): --failover_runs
#      kill -9 and as many SIGTERM of the leader, the time until the
#      standby answers, and once each, a client given both replicas;
#   6. and once, the collection alone: bench/collection_benchmark (every
#      operation at 1e3, 1e5 and 1e6 jams, and heap bytes per user);
#   7. pools: jam-balancer with --pools=p1:7,p2:7 driven by jam-bench's batch
#      workload (Batch of --pools_batch_size operations) sent to one pool
#      (p1) and spread over two (p1,p2, slot by slot), same concurrency, in
#      two pairs a round in both orders (ABBA); each run scrapes /metrics
#      in its measured window for every pool's strand busy time; then
#      collection_benchmark's BM_PoolsInParallel (1, 2 and 4 pools, each a
#      collection on its own thread). Its section of BENCHMARKS.md ("##
#      Pools") is written by --only=pools alone, keeping the rest.
# Prints medians, ranges and ratios and writes them to BENCHMARKS.md with
# the machine and the exact commands. Every server listens on 127.0.0.1 on a
# free port and is killed on exit. About 10 minutes with the defaults.
#
# Options (also as environment variables of the same name in capitals):
#   --rounds=N          rounds (3)
#   --duration=S        measured seconds per run (6); open loop: --open_duration (5)
#   --open_fraction=F   open-loop rate as a fraction of the empty server's
#                       closed-loop peak (0.5)
#   --light_fraction=F  a second open-loop level, a light load (0.25)
#   --warmup=S          warm-up seconds per run (2)
#   --concurrency=N     calls in flight (64; h2load: --channels connections
#                       of N/channels streams; redis-benchmark: N clients)
#   --channels=N        connections (4)
#   --prepopulate=N     jams filled before each run (10000)
#   --population=N      users the arrivals keep (10000)
#   --batch_size=N      operations per Batch call (16)
#   --frontends=N       front ends of the arrivals_fe runs (4; at most
#                       --channels)
#   --sync_frontends=N  front ends of the sync runs (8)
#   --sync_users=N      users each front end Syncs (125000)
#   --expiry_users=N    users of the front end whose lease runs out (100000)
#   --failover_runs=N   kill -9 runs and SIGTERM runs of the failover (5)
#   --pools_batch_size=N  operations per Batch call of the pools step (100)
#   --only=pools        run only the pools step (7) and replace only the
#                       "## Pools" section of the report (a few minutes)
#   --output=FILE       report file (BENCHMARKS.md in the repository)
#   --bin_dir=DIR       use the binaries built in DIR; skips install and build
#   --smoke             a seconds-long check of this script (for ctest): one
#                       short round, no install or build (needs --bin_dir),
#                       report into a temporary directory; skips h2load,
#                       Redis and etcd (the failover) when not installed
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

rounds=${ROUNDS:-3}
duration=${DURATION:-6}
open_duration=${OPEN_DURATION:-5}
open_fraction=${OPEN_FRACTION:-0.5}
light_fraction=${LIGHT_FRACTION:-0.25}
warmup=${WARMUP:-2}
concurrency=${CONCURRENCY:-64}
channels=${CHANNELS:-4}
prepopulate=${PREPOPULATE:-10000}
population=${POPULATION:-10000}
batch_size=${BATCH_SIZE:-16}
frontends=${FRONTENDS:-4}
sync_frontends=${SYNC_FRONTENDS:-8}
sync_users=${SYNC_USERS:-125000}
expiry_users=${EXPIRY_USERS:-100000}
failover_runs=${FAILOVER_RUNS:-5}
pools_batch_size=${POOLS_BATCH_SIZE:-100}
only=${ONLY:-}
# The expiry run's measured window, the lease that runs out in it, and the
# probe windows before the Sync and after the expiry.
expiry_duration=6 expiry_lease=1s probe_window=500ms
output=${OUTPUT:-$repo/BENCHMARKS.md}
bin_dir=${BIN_DIR:-}
smoke=false
max_users=7 # jam-balancer's default, also given to the Redis scripts
pool_names=(p1 p2) # the pools step's pools (besides the default one)
pools_server_flags=() # more flags of the pools step's next server

for arg in "$@"; do
  case $arg in
    --rounds=*) rounds=${arg#*=} ;;
    --duration=*) duration=${arg#*=} ;;
    --open_duration=*) open_duration=${arg#*=} ;;
    --open_fraction=*) open_fraction=${arg#*=} ;;
    --light_fraction=*) light_fraction=${arg#*=} ;;
    --warmup=*) warmup=${arg#*=} ;;
    --concurrency=*) concurrency=${arg#*=} ;;
    --channels=*) channels=${arg#*=} ;;
    --prepopulate=*) prepopulate=${arg#*=} ;;
    --population=*) population=${arg#*=} ;;
    --batch_size=*) batch_size=${arg#*=} ;;
    --frontends=*) frontends=${arg#*=} ;;
    --sync_frontends=*) sync_frontends=${arg#*=} ;;
    --sync_users=*) sync_users=${arg#*=} ;;
    --expiry_users=*) expiry_users=${arg#*=} ;;
    --failover_runs=*) failover_runs=${arg#*=} ;;
    --pools_batch_size=*) pools_batch_size=${arg#*=} ;;
    --only=*) only=${arg#*=} ;;
    --output=*) output=${arg#*=} ;;
    --bin_dir=*) bin_dir=${arg#*=} ;;
    --smoke) smoke=true ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "benchmark: unknown argument $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

case $only in
  "" | pools) ;;
  *)
    echo "benchmark: --only must be pools" >&2
    exit 2
    ;;
esac

work=$(mktemp -d /tmp/jam-benchmark.XXXXXX)
if $smoke; then
  [ -n "$bin_dir" ] || {
    echo "benchmark: --smoke needs --bin_dir" >&2
    exit 2
  }
  rounds=1 duration=1 open_duration=1 warmup=0.3 prepopulate=1000
  population=1000 output=$work/BENCHMARKS.md sync_users=2000
  expiry_users=2000 expiry_duration=3 expiry_lease=500ms probe_window=200ms
  failover_runs=1
fi

log() { printf 'benchmark: %s\n' "$*" >&2; }
die() {
  log "FAILED: $*"
  log "logs kept in $work"
  keep_work=true
  exit 1
}

# --- Servers started here: every one is killed on exit. ---
pids=()
keep_work=false
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -eq 0 ] && ! $keep_work; then rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() {
  local keep=() pid
  for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || keep+=("$pid"); done
  pids=("${keep[@]}")
}

# Stops a server started here: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

# --- Install and build. ---
if [ -z "$bin_dir" ]; then
  tools/install-deps.sh
  needed=()
  command -v h2load >/dev/null || needed+=(nghttp2-client)
  command -v redis-server >/dev/null || needed+=(redis-server)
  command -v redis-benchmark >/dev/null || needed+=(redis-tools)
  if ((${#needed[@]})); then
    log "installing ${needed[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${needed[@]}"
  fi
  BUILD_DIR=build-release tools/build.sh -DCMAKE_BUILD_TYPE=Release \
    -DJAM_BALANCER_BUILD_BENCHMARKS=ON
  bin_dir=$repo/build-release
fi
balancer_bin=$bin_dir/server/jam-balancer
empty_bin=$bin_dir/bench/empty-server
jam_bench=$bin_dir/bench/jam-bench
for binary in "$balancer_bin" "$empty_bin" "$jam_bench"; do
  [ -x "$binary" ] || die "$binary is not built"
done
have_h2load=true have_redis=true
command -v h2load >/dev/null || have_h2load=false
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null &&
  command -v redis-cli >/dev/null || have_redis=false
if ! $smoke && [ -z "$only" ] && ! { $have_h2load && $have_redis; }; then
  die "h2load, redis-server, redis-cli and redis-benchmark are needed"
fi
have_etcd=true
command -v etcd >/dev/null && command -v etcdctl >/dev/null || have_etcd=false
$smoke || [ -n "$only" ] || $have_etcd ||
  die "etcd and etcdctl are needed (tools/install-deps.sh)"

results=$work/results.jsonl
commands=$work/commands.txt
: >"$results"
: >"$commands"

# Records the command line of a kind of run, the first time only.
note_command() {
  local kind=$1
  shift
  grep -q "^$kind	" "$commands" && return 0
  local line
  line=$(printf '%q ' "$@")
  printf '%s\t%s\n' "$kind" "${line//$repo\//}" >>"$commands"
}

# The same, for a command line given as text.
note_text() {
  grep -q "^$1	" "$commands" && return 0
  printf '%s\t%s\n' "$1" "$2" >>"$commands"
}

# Appends one measurement: round, server, client, workload, then a JSON
# object of numbers.
record() {
  printf '{"round":%s,"server":"%s","client":"%s","workload":"%s","result":%s}\n' \
    "$1" "$2" "$3" "$4" "$5" >>"$results"
}

# Starts a gRPC server (empty or balancer) on 127.0.0.1 port 0 and reads
# the port (and metrics port) from its start-up line. Sets server_pid,
# server_port, metrics_port.
start_grpc_server() {
  local name=$1 log_file=$2
  local cmd
  case $name in
    empty) cmd=("$empty_bin" --listen=127.0.0.1:0) ;;
    balancer | balancer_pools)
      # No resync window: the runs measure a balancer in its steady state
      # (in the window, arrivals of front ends are redirected to fresh jams).
      cmd=("$balancer_bin" --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0
        --shutdown_grace=1s --resync_grace=0s)
      # The pools step: two pools besides the default one, as large.
      if [ "$name" = balancer_pools ]; then
        cmd+=(--pools="${pool_names[0]}:$max_users,${pool_names[1]}:$max_users"
          "${pools_server_flags[@]}")
      fi
      ;;
  esac
  note_command "$(server_label "$name")${pools_server_flags[*]:+ ${pools_server_flags[*]}}" "${cmd[@]}"
  "${cmd[@]}" >"$log_file" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 200); do
    grep -qs ' port=' "$log_file" && break
    kill -0 "$server_pid" 2>/dev/null || die "$name server exited: $(cat "$log_file")"
    sleep 0.05
  done
  server_port=$(grep -o ' port=[0-9]*' "$log_file" | head -1 | cut -d= -f2)
  [ -n "$server_port" ] || die "$name server did not start within 10 s"
  metrics_port=$(grep -o 'metrics_port=[0-9]*' "$log_file" | head -1 | cut -d= -f2 || true)
}

server_label() {
  case $1 in
    empty) echo empty-server ;;
    balancer_pools) echo "jam-balancer --pools" ;;
    *) echo jam-balancer ;;
  esac
}

# Runs the jam-bench command "${@:3}" against the server started last,
# within $2 seconds, into $work/$1.json and $work/$1.err (dies if it fails);
# then stops the server and sets the caller's `cpu` to the CPU seconds the
# server used meanwhile.
run_jam_bench_command() {
  local tag=$1 limit=$2
  shift 2
  local cpu_before cpu_after
  cpu_before=$(cpu_ticks "$server_pid")
  if ! timeout "$limit" "$@" >"$work/$tag.json" 2>"$work/$tag.err"; then
    die "jam-bench failed ($tag): $(cat "$work/$tag.json" "$work/$tag.err")"
  fi
  cpu_after=$(cpu_ticks "$server_pid")
  stop_pid "$server_pid"
  cpu=$(awk -v t=$((cpu_after - cpu_before)) -v hz="$clock_ticks" 'BEGIN { printf "%.4f", t / hz }')
}

# jam-bench against a fresh server. $1 round, $2 server, $3 workload, $4
# open-loop rate (0: closed loop), $5 a suffix for the recorded workload
# name (tells open-loop levels apart).
run_jam_bench() {
  local round=$1 server=$2 workload=$3 rate=${4:-0} suffix=${5:-}
  local open= # empty in a closed loop
  if [ "$rate" != 0 ]; then open=yes; fi
  local tag="r$round-$server-jb-$workload${open:+-open}$suffix"
  start_grpc_server "$server" "$work/$tag.server.log"
  prepopulate_server
  local cmd=("$jam_bench" --target=127.0.0.1:"$server_port"
    --workload="$workload" --channels="$channels" --warmup="${warmup}s"
    --population="$population" --batch_size="$batch_size" --format=json
    --progress=false)
  if [ "$workload" = arrivals_fe ]; then cmd+=(--frontends="$frontends"); fi
  if [ -n "$open" ]; then
    # Room for a backlog: a late call waits for a slot, charged to latency.
    cmd+=(--rate="$rate" --concurrency=$((concurrency * 4))
      --duration="${open_duration}s")
  else
    cmd+=(--concurrency="$concurrency" --duration="${duration}s")
  fi
  note_command "jam-bench ${workload}${open:+ open loop}" "${cmd[@]}"
  local limit
  limit=$(awk -v w="$warmup" -v d="$duration" 'BEGIN { printf "%d", w + d + 60 }')
  # The server's CPU time per call answered (warm-up and drain included).
  local json cpu
  run_jam_bench_command "$tag" "$limit" "${cmd[@]}"
  json=$(cat "$work/$tag.json")
  record "$round" "$server" jam-bench "$workload${open:+_open}$suffix" \
    "${json%\}},\"server_cpu_s\":$cpu}"
  python3 - "$work/$tag.json" "$(server_label "$server")" "$cpu" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))
extra = f"  {r['ops_per_s']:>9,.0f} ops/s" if r['workload'] == 'batch' else ''
loop = f" at {r['rate']:,.0f}/s" if r['loop'] == 'open' else ''
cpu = float(sys.argv[3]) / r['answered'] * 1e6 if r['answered'] else 0
print(f"benchmark:   jam-bench {r['workload']:<12}{loop} {sys.argv[2]:<13}"
      f"{r['calls_per_s']:>9,.0f} calls/s{extra}  p50 {r['latency_us']['p50']:,.0f} µs"
      f"  p99 {r['latency_us']['p99']:,.0f} µs  server CPU {cpu:.1f} µs/call")
EOF
}

# jam-bench sync against a fresh jam-balancer (not prepopulated: the state
# after a start): --sync_frontends front ends each Sync --sync_users users
# at once. $1 round.
run_sync() {
  local round=$1 tag="r$1-balancer-jb-sync"
  start_grpc_server balancer "$work/$tag.server.log"
  local cmd=("$jam_bench" --target=127.0.0.1:"$server_port" --workload=sync
    --frontends="$sync_frontends" --users_per_frontend="$sync_users"
    --deadline=120s --format=json --progress=false)
  note_command "jam-bench sync" "${cmd[@]}"
  local json cpu
  run_jam_bench_command "$tag" 300 "${cmd[@]}"
  json=$(cat "$work/$tag.json")
  record "$round" balancer jam-bench sync "${json%\}},\"server_cpu_s\":$cpu}"
  python3 - "$work/$tag.json" "$cpu" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))
print(f"benchmark:   jam-bench sync {r['frontends']} x {r['users_per_frontend']:,} users"
      f" jam-balancer  {r['wall_s']:.3f} s until all answered"
      f" (slowest front end {r['frontend_s_max']:.3f} s)  server CPU {float(sys.argv[2]):.2f} s")
EOF
}

# jam-bench expiry against a fresh, prepopulated jam-balancer, then the
# server's log line that closes the removal (steps, time, longest step)
# added to the result. $1 round.
run_expiry() {
  local round=$1 tag="r$1-balancer-jb-expiry"
  start_grpc_server balancer "$work/$tag.server.log"
  prepopulate_server
  local cmd=("$jam_bench" --target=127.0.0.1:"$server_port" --workload=expiry
    --channels="$channels" --concurrency="$concurrency"
    --frontends="$frontends" --population="$population"
    --users_per_frontend="$expiry_users" --expiring_lease="$expiry_lease"
    --probe_window="$probe_window" --warmup="${warmup}s"
    --duration="${expiry_duration}s" --format=json --progress=false)
  note_command "jam-bench expiry" "${cmd[@]}"
  local json cpu removal
  run_jam_bench_command "$tag" 120 "${cmd[@]}"
  json=$(cat "$work/$tag.json")
  removal=$(python3 - "$work/$tag.server.log" <<'EOF'
import json, re, sys
for line in open(sys.argv[1]):
    if "users removed after its lease expired" in line:
        f = dict(re.findall(r"(\w+)=(\S+)", line))
        print(json.dumps({"members": int(f["members"]), "steps": int(f["steps"]),
                          "took_ms": float(f["took_ms"]),
                          "longest_step_ms": float(f["longest_step_ms"])}))
        break
EOF
  )
  [ -n "$removal" ] || die "expiry: the server logged no finished removal ($work/$tag.server.log)"
  record "$round" balancer jam-bench expiry \
    "${json%\}},\"server_cpu_s\":$cpu,\"removal\":$removal}"
  python3 - "$work/$tag.json" "$removal" <<'EOF' >&2
import json, sys
r, m = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
e = r["expiry"]
print(f"benchmark:   jam-bench expiry of {m['members']:,} users: {m['steps']} steps"
      f" in {m['took_ms']:.1f} ms, longest {m['longest_step_ms']:.2f} ms;"
      f" others' p99 {e['before']['p99_us']:,.0f} µs before,"
      f" {e['during']['p99_us']:,.0f} µs during")
EOF
}

# Fills the --prepopulate jams in the fresh server (before the CPU time of
# the measured run is taken).
prepopulate_server() {
  local cmd=("$jam_bench" --target=127.0.0.1:"$server_port"
    --prepopulate="$prepopulate" --prepopulate_only --progress=false)
  note_command "jam-bench prepopulate" "${cmd[@]}"
  "${cmd[@]}" || die "prepopulate failed"
}

# CPU time (user + system) of a process so far, in clock ticks.
clock_ticks=$(getconf CLK_TCK)
cpu_ticks() {
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# Sum of the balancer's grpc_server_handled_total for CurrentJam, with
# grpc_code="OK" ($1 = ok) or any other code ($1 = other).
handled_current_jam() {
  curl -sf "http://127.0.0.1:$metrics_port/metrics" |
    awk -v want="$1" '/^grpc_server_handled_total\{/ && /grpc_method="CurrentJam"/ {
      ok = ($0 ~ /grpc_code="OK"/)
      if ((want == "ok") == ok) sum += $NF
    } END { printf "%d", sum }'
}

# One h2load run; echoes "requests succeeded req_per_s mean_latency_us".
h2load_run() {
  local n=$1 out=$2 kind=$3
  local cmd=(h2load -n "$n" -c "$channels" -m $((concurrency / channels)) -t 1
    -d "$work/current_jam.grpc" -H 'content-type: application/grpc'
    -H 'te: trailers'
    "http://127.0.0.1:$server_port/jambalancer.v1.JamBalancerService/CurrentJam")
  note_command "$kind" "${cmd[@]}"
  timeout $((duration * 4 + 60)) "${cmd[@]}" >"$out" 2>&1 || die "h2load failed: $(cat "$out")"
  awk '
    /^requests:/ { total = $2; succeeded = $8 }
    /^finished in/ { rate = $4 }
    /^time for request:/ {
      mean = $6
      if (mean ~ /us$/) { sub(/us$/, "", mean) }
      else if (mean ~ /ms$/) { sub(/ms$/, "", mean); mean *= 1000 }
      else if (mean ~ /s$/) { sub(/s$/, "", mean); mean *= 1000000 }
    }
    END { printf "%d %d %.1f %.1f\n", total, succeeded, rate, mean }' "$out"
}

# h2load against a fresh server: a warm-up run that also calibrates, then a
# run of about --duration seconds; then checks the server's own count.
run_h2load() {
  local round=$1 server=$2 tag="r$1-$2-h2load"
  start_grpc_server "$server" "$work/$tag.server.log"
  # (Not the empty server, which stores nothing: its call count must be
  # h2load's alone.)
  if [ "$server" = balancer ]; then prepopulate_server; fi
  local before=0 other_before=0
  if [ "$server" = balancer ]; then
    before=$(handled_current_jam ok)
    other_before=$(handled_current_jam other)
  fi
  local cpu_before
  cpu_before=$(cpu_ticks "$server_pid")
  local warm_n
  warm_n=$(awk -v w="$warmup" 'BEGIN { printf "%d", w * 20000 + 1000 }')
  note_text "h2load request body" "printf '\\0\\0\\0\\0\\0' > $work/current_jam.grpc  # gRPC frame: uncompressed, 0 bytes (CurrentJamRequest{})"
  read -r w_total w_ok w_rate _ < <(h2load_run "$warm_n" "$work/$tag.warmup.out" "h2load warm-up")
  [ "$w_ok" = "$warm_n" ] || die "h2load warm-up: $w_ok of $warm_n succeeded"
  local n
  n=$(awk -v r="$w_rate" -v d="$duration" 'BEGIN {
    n = int(r * d); if (n < 5000) n = 5000; if (n > 5000000) n = 5000000; print n }')
  read -r total ok rate mean < <(h2load_run "$n" "$work/$tag.out" h2load)
  [ "$total" = "$n" ] && [ "$ok" = "$n" ] || die "h2load: $ok of $n succeeded"
  local served cpu
  cpu=$(awk -v t=$(($(cpu_ticks "$server_pid") - cpu_before)) -v hz="$clock_ticks" 'BEGIN { printf "%.4f", t / hz }')
  if [ "$server" = balancer ]; then
    local after other_after
    after=$(handled_current_jam ok)
    other_after=$(handled_current_jam other)
    served=$((after - before))
    [ $((other_after - other_before)) = 0 ] ||
      die "h2load: jam-balancer answered $((other_after - other_before)) CurrentJam calls with an error"
    stop_pid "$server_pid"
  else
    stop_pid "$server_pid"
    served=$(grep -o 'stopped calls=[0-9]*' "$work/$tag.server.log" | cut -d= -f2)
  fi
  [ "$served" = $((warm_n + n)) ] ||
    die "h2load: $((warm_n + n)) requests sent, but the server counted $served successful calls"
  record "$round" "$server" h2load current_jam \
    "{\"calls\":$n,\"calls_per_s\":$rate,\"mean_latency_us\":$mean,\"answered\":$served,\"server_cpu_s\":$cpu}"
  printf 'benchmark:   h2load    current_jam  %-13s%9.0f calls/s  mean %.0f µs  server CPU %.1f µs/call  (%d OK calls counted by the server)\n' \
    "$(server_label "$server")" "$rate" "$mean" "$(awk -v c="$cpu" -v n="$served" 'BEGIN { print c / n * 1e6 }')" "$served" >&2
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# redis-benchmark against a fresh, prepopulated redis-server. $1 round, $2
# script (current_jam or arrive), $3 pipeline depth.
run_redis() {
  local round=$1 script=$2 pipeline=$3 tag="r$1-redis-$2-P$3" port
  for _ in 1 2 3; do
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$work" --logfile "$work/$tag.server.log" &
    server_pid=$!
    pids+=("$server_pid")
    for _ in $(seq 100); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.05
    done
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    stop_pid "$server_pid"
    port=
  done
  [ -n "$port" ] || die "redis-server did not start: $(cat "$work/$tag.server.log")"
  local cli=(redis-cli -p "$port")
  note_text redis-server "redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no --dir $work --logfile $work/$tag.server.log"
  note_text "redis prepopulate" "redis-cli -p $port EVAL \"\$(cat bench/redis/prepopulate.lua)\" 2 jams:room jams:user $prepopulate $max_users"
  note_text "redis script $script" "redis-cli -p $port SCRIPT LOAD \"\$(cat bench/redis/$script.lua)\"  # prints the sha"
  "${cli[@]}" EVAL "$(cat bench/redis/prepopulate.lua)" 2 jams:room jams:user \
    "$prepopulate" "$max_users" >/dev/null || die "redis prepopulate failed"
  local sha
  sha=$("${cli[@]}" SCRIPT LOAD "$(cat "bench/redis/$script.lua")")
  local args
  if [ "$script" = current_jam ]; then
    args=(EVALSHA "$sha" 2 jams:room jams:counter)
  else
    args=(EVALSHA "$sha" 3 jams:room jams:user jams:counter u:__rand_int__ "$max_users")
  fi
  local bench=(redis-benchmark -h 127.0.0.1 -p "$port" -c "$concurrency"
    -P "$pipeline" -r "$population" --csv)
  local warm_n
  warm_n=$(awk -v w="$warmup" -v p="$pipeline" 'BEGIN { printf "%d", w * (p > 1 ? 100000 : 40000) + 1000 }')
  "${bench[@]}" -n "$warm_n" "${args[@]}" >"$work/$tag.warmup.csv" 2>&1 ||
    die "redis-benchmark failed: $(cat "$work/$tag.warmup.csv")"
  local warm_rate n
  warm_rate=$(awk -F'","' 'NR == 2 { print $2 }' "$work/$tag.warmup.csv")
  n=$(awk -v r="$warm_rate" -v d="$duration" 'BEGIN {
    n = int(r * d); if (n < 5000) n = 5000; if (n > 10000000) n = 10000000; print n }')
  local calls_before
  calls_before=$("${cli[@]}" INFO commandstats | awk -F'[=,:]' '/^cmdstat_evalsha:/ { print $3 }')
  note_command "redis-benchmark $script -P $pipeline" "${bench[@]}" -n "$n" "${args[@]}"
  timeout $((duration * 4 + 60)) "${bench[@]}" -n "$n" "${args[@]}" >"$work/$tag.csv" 2>&1 ||
    die "redis-benchmark failed: $(cat "$work/$tag.csv")"
  local calls_after errors
  calls_after=$("${cli[@]}" INFO commandstats | awk -F'[=,:]' '/^cmdstat_evalsha:/ { print $3 }')
  errors=$("${cli[@]}" INFO stats | awk -F: '/^total_error_replies:/ { print $2 + 0 }')
  stop_pid "$server_pid"
  [ "$errors" = 0 ] || die "Redis answered $errors errors ($tag)"
  # Pipelined, redis-benchmark sends whole pipelines: up to one more per
  # client than it counts.
  local ran=$((calls_after - calls_before))
  ((ran >= n && ran <= n + concurrency * pipeline)) ||
    die "redis-benchmark counted $n calls, Redis ran $ran ($tag)"
  local result
  result=$(awk -F'","' -v n="$n" 'NR == 2 {
    printf "{\"calls\":%d,\"calls_per_s\":%s,\"mean_latency_us\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f}", n, $2, $3 * 1000, $5 * 1000, $7 * 1000
  }' "$work/$tag.csv")
  [ -n "$result" ] || die "cannot read redis-benchmark output: $(cat "$work/$tag.csv")"
  record "$round" redis redis-benchmark "${script}_P$pipeline" "$result"
  printf 'benchmark:   redis-benchmark %-12s -P %-2s %9.0f calls/s\n' "$script" "$pipeline" \
    "$(awk -F'","' 'NR == 2 { print $2 }' "$work/$tag.csv")" >&2
}

# The balancer's /metrics (the server started last) into $1.
scrape_metrics() {
  curl -sf --max-time 5 "http://127.0.0.1:$metrics_port/metrics" >"$1" ||
    die "cannot scrape http://127.0.0.1:$metrics_port/metrics"
}

# The machine's idle and total CPU time so far, in clock ticks ("IDLE
# TOTAL"), from /proc/stat.
machine_ticks() {
  awk '/^cpu / { t = 0; for (i = 2; i <= NF; ++i) t += $i; print $5 + $6, t; exit }' /proc/stat
}

# The pools step: jam-bench's batch workload against a fresh jam-balancer
# with --pools, its Batch calls sent to the first $2 pools of pool_names
# (slot i to pool i % $2), after the --prepopulate jams were filled in
# each. In the measured window (from half a second after the warm-up to
# half a second before the end) it reads the server's /metrics, its CPU
# time, jam-bench's and the machine's, so that every pool's strand busy
# fraction (the delta of jam_balancer_strand_run_seconds_sum{pool=...} over
# the wall time between the scrapes) is of the steady load. Calls get a
# 30 s deadline: a call held up for seconds counts in the latency (its max)
# rather than failing the step. $1 round, $2 pools, $3 a suffix for the
# recorded workload name (tells pairs apart); the server gets
# pools_server_flags as well.
run_pools() {
  local round=$1 count=$2 suffix=${3:-}
  local tag="r$round-balancer-jb-pools$count$suffix"
  local names
  names=$(IFS=,; echo "${pool_names[*]:0:$count}")
  start_grpc_server balancer_pools "$work/$tag.server.log"
  [ -n "$metrics_port" ] || die "the balancer logged no metrics_port"
  local fill=("$jam_bench" --target=127.0.0.1:"$server_port" --workload=batch
    --pools="$names" --prepopulate="$prepopulate" --prepopulate_only
    --progress=false)
  note_command "jam-bench prepopulate (pools)" "${fill[@]}"
  "${fill[@]}" || die "prepopulate of pools $names failed"
  local cmd=("$jam_bench" --target=127.0.0.1:"$server_port" --workload=batch
    --pools="$names" --channels="$channels" --concurrency="$concurrency"
    --warmup="${warmup}s" --duration="${duration}s"
    --population="$population" --batch_size="$pools_batch_size"
    --deadline=30s --format=json --progress=false)
  note_command "jam-bench batch over $count pool(s)" "${cmd[@]}"
  local limit cpu_before cpu_after
  limit=$(awk -v w="$warmup" -v d="$duration" 'BEGIN { printf "%d", w + d + 90 }')
  cpu_before=$(cpu_ticks "$server_pid")
  "${cmd[@]}" >"$work/$tag.json" 2>"$work/$tag.err" &
  local bench_pid=$!
  pids+=("$bench_pid")
  # The window: [warmup + 0.5 s, warmup + duration - 0.5 s] after the start.
  local window_start window_s
  window_start=$(awk -v w="$warmup" 'BEGIN { print w + 0.5 }')
  window_s=$(awk -v d="$duration" 'BEGIN { s = d - 1; if (s < 0.2) s = 0.2; print s }')
  sleep "$window_start"
  local t0 t1 s0 s1 c0 c1 m0 m1
  scrape_metrics "$work/$tag.before.prom"
  t0=$(date +%s.%N) s0=$(cpu_ticks "$server_pid") m0=$(machine_ticks)
  c0=$(cpu_ticks "$bench_pid" 2>/dev/null || echo 0)
  sleep "$window_s"
  scrape_metrics "$work/$tag.after.prom"
  t1=$(date +%s.%N) s1=$(cpu_ticks "$server_pid") m1=$(machine_ticks)
  c1=$(cpu_ticks "$bench_pid" 2>/dev/null || echo 0)
  # jam-bench ends on its own after warm-up + duration + drain; past the
  # limit it is killed (then it failed).
  local waited=0
  while kill -0 "$bench_pid" 2>/dev/null && ((waited < limit * 10)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  kill -0 "$bench_pid" 2>/dev/null && kill -KILL "$bench_pid"
  local status=0
  wait "$bench_pid" || status=$?
  forget_pid "$bench_pid"
  [ "$status" = 0 ] ||
    die "jam-bench failed ($tag): $(cat "$work/$tag.json" "$work/$tag.err")"
  cpu_after=$(cpu_ticks "$server_pid")
  stop_pid "$server_pid"
  local cpu window
  cpu=$(awk -v t=$((cpu_after - cpu_before)) -v hz="$clock_ticks" 'BEGIN { printf "%.4f", t / hz }')
  window=$(python3 - "$work/$tag.before.prom" "$work/$tag.after.prom" "$t0" "$t1" \
    "$((s1 - s0))" "$((c1 - c0))" "$m0" "$m1" "$clock_ticks" <<'EOF'
import json, re, sys
before, after = sys.argv[1], sys.argv[2]
t0, t1 = float(sys.argv[3]), float(sys.argv[4])
server_ticks, client_ticks = int(sys.argv[5]), int(sys.argv[6])
(idle0, total0), (idle1, total1) = (map(int, sys.argv[i].split()) for i in (7, 8))
hz = int(sys.argv[9])
def strand(path):
    out = {}
    for line in open(path):
        m = re.match(r'jam_balancer_strand_run_seconds_sum\{(.*)\} (\S+)$', line)
        if m:
            pool = re.search(r'pool="([^"]*)"', m.group(1))
            out[pool.group(1) if pool else ""] = float(m.group(2))
    return out
a, b = strand(before), strand(after)
if not b:
    sys.exit("no jam_balancer_strand_run_seconds_sum in /metrics")
wall = t1 - t0
print(json.dumps({
    "wall_s": round(wall, 4),
    "strand_busy": {p: round((b[p] - a.get(p, 0)) / wall, 4) for p in sorted(b)},
    "server_cpus": round(server_ticks / hz / wall, 4),
    "client_cpus": round(client_ticks / hz / wall, 4),
    "machine_busy": round(1 - (idle1 - idle0) / (total1 - total0), 4)
    if total1 > total0 else 0}, separators=(",", ":")))
EOF
  ) || die "pools: cannot read the window's metrics ($tag)"
  local json
  json=$(cat "$work/$tag.json")
  record "$round" balancer jam-bench "pools$count$suffix" \
    "${json%\}},\"server_cpu_s\":$cpu,\"pool_count\":$count,\"window\":$window}"
  python3 - "$work/$tag.json" "$cpu" "$window" "$count" <<'EOF' >&2
import json, sys
r, w = json.load(open(sys.argv[1])), json.loads(sys.argv[3])
cpu = float(sys.argv[2]) / r['answered'] * 1e6 if r['answered'] else 0
busy = "  ".join(f"{p} {b:.2f}" for p, b in w["strand_busy"].items())
print(f"benchmark:   jam-bench batch of {r['batch_size']} over {sys.argv[4]} pool(s)"
      f" {r['calls_per_s']:>7,.0f} calls/s {r['ops_per_s']:>9,.0f} ops/s"
      f"  p50 {r['latency_us']['p50']:,.0f} µs  server CPU {cpu:.1f} µs/call;"
      f" strand busy: {busy}; CPUs: server {w['server_cpus']:.2f},"
      f" jam-bench {w['client_cpus']:.2f}, machine {w['machine_busy']:.0%} busy")
EOF
}

# The pools step, one round: two pairs of 1 pool and 2 pools, ABBA (odd
# rounds 1 2 2 1, even rounds 2 1 1 2); then 1 pool on a server whose
# strand never runs tasks on the posting (gRPC) thread, to tell whether
# long stalls of calls come from gRPC threads draining a busy strand.
run_pools_round() {
  local round=$1
  if ((round % 2)); then
    run_pools "$round" 1
    run_pools "$round" 2
    run_pools "$round" 2 _pair2
    run_pools "$round" 1 _pair2
  else
    run_pools "$round" 2
    run_pools "$round" 1
    run_pools "$round" 1 _pair2
    run_pools "$round" 2 _pair2
  fi
  pools_server_flags=(--strand_inline=false)
  run_pools "$round" 1 _not_inline
  pools_server_flags=()
}

# collection_benchmark's BM_PoolsInParallel into $work/pools_collection.json.
run_pools_microbenchmark() {
  local bin=$bin_dir/bench/collection_benchmark
  if [ ! -x "$bin" ]; then
    $smoke && return 0
    die "$bin is not built"
  fi
  local cmd=("$bin" --benchmark_format=json)
  if $smoke; then
    cmd+=("--benchmark_filter=BM_PoolsInParallel/jams:1000/" --benchmark_min_time=0.01)
  else
    # Repetitions in random order, so that drift hits every pool count.
    cmd+=(--benchmark_filter=BM_PoolsInParallel --benchmark_repetitions=5
      --benchmark_enable_random_interleaving=true
      --benchmark_report_aggregates_only=true)
  fi
  note_command "collection_benchmark pools" "${cmd[@]}"
  log "pools microbenchmark (1, 2 and 4 pools side by side)"
  if ! timeout 600 "${cmd[@]}" >"$work/pools_collection.json" 2>"$work/pools_collection.err" ||
    grep -q '"error_occurred": true' "$work/pools_collection.json"; then
    die "collection_benchmark (pools) failed: $(tail -5 "$work/pools_collection.err")"
  fi
}

# --- Machine. ---
printf '\0\0\0\0\0' >"$work/current_jam.grpc" # gRPC frame: uncompressed, 0 bytes
python3 - "$bin_dir" >"$work/machine.json" <<'EOF'
import json, os, platform, re, subprocess, sys
def run(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""
cpu = ""
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
mem = ""
for line in open("/proc/meminfo"):
    if line.startswith("MemTotal"):
        mem = f"{int(line.split()[1]) / 1048576:.1f} GiB"
os_name = ""
for line in open("/etc/os-release"):
    if line.startswith("PRETTY_NAME="):
        os_name = line.split("=", 1)[1].strip().strip('"')
cache = open(os.path.join(sys.argv[1], "CMakeCache.txt")).read() if os.path.exists(os.path.join(sys.argv[1], "CMakeCache.txt")) else ""
build_type = (re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", cache, re.M) or [None, "?"])[1]
print(json.dumps({
    "nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
    "memory": mem, "os": os_name,
    "load_before": open("/proc/loadavg").read().split()[:3],
    "compiler": run("c++", "--version").splitlines()[0] if run("c++", "--version") else "",
    "grpc": run("dpkg-query", "-W", "-f=${Version}", "libgrpc++-dev"),
    "protobuf": run("dpkg-query", "-W", "-f=${Version}", "libprotobuf-dev"),
    "redis": run("redis-server", "--version"),
    "h2load": run("h2load", "--version"),
    "build_type": build_type,
    # 1: the kernel shares CPU time between sessions (autogroups) first.
    "autogroup": (open("/proc/sys/kernel/sched_autogroup_enabled").read().strip()
                  if os.path.exists("/proc/sys/kernel/sched_autogroup_enabled") else ""),
    "commit": run("git", "rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if run("git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md") else ""),
}))
EOF

started=$(date +%s)
# --only=pools: none of the other steps' rounds.
main_rounds=$rounds
[ -z "$only" ] || main_rounds=0
log "$rounds rounds; $warmup s warm-up + $duration s per run; $concurrency calls in flight on $channels connections; logs in $work"

# --- Rounds: throughput. Odd rounds start with the empty server, even ones
# with the balancer. ---
for round in $(seq "$main_rounds"); do
  if ((round % 2)); then order=(empty balancer); else order=(balancer empty); fi
  log "round $round/$rounds"
  for workload in current_jam arrivals batch; do
    for server in "${order[@]}"; do
      # arrivals_fe next to the balancer's anonymous arrivals: A B in odd
      # rounds, B A in even ones.
      if [ "$workload:$server" = arrivals:balancer ] && ! ((round % 2)); then
        run_jam_bench "$round" balancer arrivals_fe
      fi
      run_jam_bench "$round" "$server" "$workload"
      if [ "$workload:$server" = arrivals:balancer ] && ((round % 2)); then
        run_jam_bench "$round" balancer arrivals_fe
      fi
    done
  done
  # A second pair, in the other order (ABBA within the round).
  if ((round % 2)); then
    run_jam_bench "$round" balancer arrivals_fe 0 _pair2
    run_jam_bench "$round" balancer arrivals 0 _pair2
  else
    run_jam_bench "$round" balancer arrivals 0 _pair2
    run_jam_bench "$round" balancer arrivals_fe 0 _pair2
  fi
  run_expiry "$round"
  run_sync "$round"
  if $have_h2load; then
    for server in "${order[@]}"; do run_h2load "$round" "$server"; done
  fi
  if $have_redis; then
    run_redis "$round" current_jam 1
    run_redis "$round" arrive 1
    run_redis "$round" arrive 16
  fi
done

# --- Latency at a fraction (half) of the empty server's peak (open loop),
# and at a light load where the machine is far from full. ---
# $1 workload, $2 fraction.
fraction_rate() {
  python3 - "$results" "$1" "$2" <<'EOF'
import json, statistics, sys
rates = [r["result"]["calls_per_s"] for r in map(json.loads, open(sys.argv[1]))
         if r["server"] == "empty" and r["client"] == "jam-bench" and r["workload"] == sys.argv[2]]
print(round(statistics.median(rates) * float(sys.argv[3])))
EOF
}
for round in $(seq "$main_rounds"); do
  if ((round % 2)); then order=(empty balancer); else order=(balancer empty); fi
  for level in main light; do
    if [ "$level" = main ]; then fraction=$open_fraction suffix=; else fraction=$light_fraction suffix=_light; fi
    rate_current_jam=$(fraction_rate current_jam "$fraction")
    rate_arrivals=$(fraction_rate arrivals "$fraction")
    log "open loop round $round/$rounds at $fraction of the peak: $rate_current_jam CurrentJam/s, $rate_arrivals arrival-mix calls/s"
    for server in "${order[@]}"; do
      run_jam_bench "$round" "$server" current_jam "$rate_current_jam" "$suffix"
    done
    for server in "${order[@]}"; do
      run_jam_bench "$round" "$server" arrivals "$rate_arrivals" "$suffix"
    done
  done
done

# --- Failover between two replicas on etcd (once): kill -9 and SIGTERM of
# the leader, the time until the standby answers. ---
if $have_etcd && [ -z "$only" ]; then
  failover_cmd=(python3 bench/failover_benchmark.py --bin_dir="$bin_dir"
    --runs="$failover_runs")
  note_command "failover (3 etcd members on loopback: etcd --heartbeat-interval 50 --election-timeout 500; 2 replicas: jam-balancer --listen=127.0.0.1:0 --metrics_listen= --etcd_endpoints=... --election_ttl=1s --resync_grace=0s)" \
    "${failover_cmd[@]}"
  log "failover: $failover_runs kill -9 and $failover_runs SIGTERM of the leader"
  timeout 600 "${failover_cmd[@]}" --work_dir="$work/failover" \
    >"$work/failover.jsonl" 2>"$work/failover.err" ||
    die "failover benchmark failed: $(tail -20 "$work/failover.err")"
  while IFS=$'\t' read -r workload result; do
    record 1 balancer failover "$workload" "$result"
  done < <(python3 - "$work/failover.jsonl" <<'EOF'
import json, sys
summary = [json.loads(line) for line in open(sys.argv[1])][-1]
for workload, result in summary.items():
    if isinstance(result, dict):
        print(f"{workload}\t{json.dumps(result, separators=(',', ':'))}")
EOF
  )
  sed -n 's/^failover: \(.* answered .*\)/benchmark:   failover \1/p' "$work/failover.err" >&2
elif [ -z "$only" ]; then
  log "failover: skipped (etcd is not installed)"
fi

# --- The collection alone: Google Benchmark of every operation and the
# memory per user (single-threaded, no gRPC; one run). ---
collection_bin=$bin_dir/bench/collection_benchmark
if [ -n "$only" ]; then
  : # Not this step.
elif [ -x "$collection_bin" ]; then
  collection_cmd=("$collection_bin" --benchmark_format=json)
  if $smoke; then
    collection_cmd+=("--benchmark_filter=jams:1000(/|\$)" --benchmark_min_time=0.01)
  else
    # BM_PoolsInParallel runs in the pools step.
    collection_cmd+=(--benchmark_filter=-BM_PoolsInParallel)
  fi
  note_command "collection_benchmark" "${collection_cmd[@]}"
  log "collection microbenchmarks"
  if ! timeout 900 "${collection_cmd[@]}" >"$work/collection.json" 2>"$work/collection.err" ||
    grep -q '"error_occurred": true' "$work/collection.json"; then
    die "collection_benchmark failed: $(tail -5 "$work/collection.err")"
  fi
elif ! $smoke; then
  die "$collection_bin is not built"
fi

# --- Pools: the batch workload sent to one pool and spread over two, side
# by side (ABBA in every round); then N pools side by side without gRPC. ---
for round in $(seq "$rounds"); do
  log "pools round $round/$rounds: batch of $pools_batch_size over 1 pool and over 2 pools"
  run_pools_round "$round"
done
run_pools_microbenchmark

# --- Report. ---
load_after=$(awk '{ printf "[\"%s\",\"%s\",\"%s\"]", $1, $2, $3 }' /proc/loadavg)
printf '{"load_after":%s,"rounds":%s,"duration_s":%s,"open_duration_s":%s,"open_fraction":%s,"light_fraction":%s,"warmup_s":%s,"concurrency":%s,"channels":%s,"prepopulate":%s,"population":%s,"batch_size":%s,"max_users":%s,"elapsed_s":%s,"smoke":%s,"frontends":%s,"sync_frontends":%s,"sync_users":%s,"expiry_users":%s,"expiry_lease":"%s","probe_window":"%s","only":"%s","pools_batch_size":%s,"pool_names":["%s","%s"]}' \
  "$load_after" "$rounds" "$duration" "$open_duration" "$open_fraction" "$light_fraction" "$warmup" "$concurrency" "$channels" \
  "$prepopulate" "$population" "$batch_size" "$max_users" $(($(date +%s) - started)) \
  "$smoke" "$frontends" "$sync_frontends" "$sync_users" "$expiry_users" \
  "$expiry_lease" "$probe_window" "$only" "$pools_batch_size" "${pool_names[@]}" \
  >"$work/settings.json"
python3 bench/benchmark_report.py --input_dir="$work" --output="$output"
log "report written to $output"
if ! $smoke; then
  # The raw measurements, to redo the report: python3
  # bench/benchmark_report.py --input_dir=DIR --output=FILE
  mkdir -p "$bin_dir/benchmark"
  for file in results.jsonl commands.txt machine.json settings.json \
    collection.json pools_collection.json; do
    [ ! -f "$work/$file" ] || cp "$work/$file" "$bin_dir/benchmark/"
  done
  log "raw measurements in $bin_dir/benchmark/"
fi
if $smoke; then cat "$output"; fi
