#!/usr/bin/env python3
"""Turns the measurements of tools/benchmark.sh into BENCHMARKS.md.

Input (--input_dir, as tools/benchmark.sh leaves it): results.jsonl, one
JSON line per run ({"round", "server", "client", "workload", "result"}),
commands.txt (kind TAB command line), machine.json and settings.json. Every figure is
the median over the rounds with the range [min - max]; a ratio of two
servers is the median of the per-round ratios (both measured in the same
round, next to each other), which cancels most of the drift of a shared
machine. Prints the tables on stdout and writes the whole report, keeping
the "## Soak" section of the file it replaces (tools/soak.sh's results, a
run of its own).
"""

import argparse
import json
import os
import re
import statistics
import sys


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--input_dir", required=True,
        help="holds results.jsonl, commands.txt, machine.json, settings.json")
    parser.add_argument("--output", required=True)
    return parser.parse_args()


class Results:
    def __init__(self, path):
        self.rows = [json.loads(line) for line in open(path) if line.strip()]

    def values(self, server, client, workload, metric):
        """The metric of each round, by round."""
        out = {}
        for row in self.rows:
            if (row["server"], row["client"], row["workload"]) == (
                    server, client, workload):
                value = row["result"]
                for key in metric.split("."):
                    value = value[key]
                out[row["round"]] = float(value)
        return out

    def cpu_per_call(self, server, client, workload):
        """The server's CPU µs per call answered, by round."""
        cpu = self.values(server, client, workload, "server_cpu_s")
        calls = self.values(server, client, workload, "answered")
        return {r: cpu[r] / calls[r] * 1e6 for r in cpu
                if calls.get(r, 0) > 0}

    def ratios(self, a, b):
        """Per-round a/b for the rounds that have both."""
        return [a[r] / b[r] for r in sorted(a) if r in b and b[r] > 0]


class Collection:
    """bench/collection_benchmark's JSON output (--benchmark_format=json)."""

    # Benchmarks that are not a collection operation's cost: the original
    # app's scan (for comparison) and the memory reading.
    NOT_OPERATIONS = ("BM_CurrentJam_LinearScan", "BM_Memory")

    def __init__(self, path):
        self.rows = {}  # (benchmark, jams) -> row
        self.order = []
        for row in json.load(open(path))["benchmarks"]:
            name, jams = row["run_name"].split("/")[:2]
            jams = int(jams.split(":")[1])
            if name not in self.order:
                self.order.append(name)
            self.rows[(name, jams)] = row

    @staticmethod
    def nanos(row):
        """Time of one call: the per-call counter the benchmark reports."""
        for counter in ("time_per_expiry", "time_per_op"):
            if counter in row:
                return row[counter] * 1e9
        return None

    def sizes(self):
        return sorted({jams for _, jams in self.rows})

    def table(self):
        sizes = self.sizes()
        rows = []
        for name in self.order:
            cells = []
            for jams in sizes:
                row = self.rows.get((name, jams))
                if row is None:
                    cells.append("—")
                elif name == "BM_Memory":
                    cells.append(f"{row['bytes_per_user']:,.0f} bytes/user "
                                 f"({row['users']:,.0f} users)")
                else:
                    nanos = self.nanos(row)
                    cells.append("—" if nanos is None else
                                 f"{fmt_number(nanos, 0 if nanos >= 10 else 1)} ns")
            rows.append([name.removeprefix("BM_")] + cells)
        return ("Google Benchmark (`bench/collection_benchmark`), ns per "
                "collection call (`time_per_op`; ExpireReservations per "
                "reservation expired; ListJams per page of 100 jams), and "
                "heap bytes per user.\n\n" +
                table(["Benchmark"] + [f"{jams:,} jams" for jams in sizes],
                      rows))

    def slowest_at(self, jams):
        """(name, ns) of the slowest operation at `jams` jams. ListJams is
        per page of 100 jams, so it counts per jam listed."""
        worst = None
        for (name, size), row in self.rows.items():
            if size != jams or name in self.NOT_OPERATIONS:
                continue
            nanos = (row["time_per_jam"] * 1e9 if "time_per_jam" in row
                     else self.nanos(row))
            if nanos is not None and (worst is None or nanos > worst[1]):
                worst = (name.removeprefix("BM_"), nanos)
        return worst

    def bytes_per_user_at_least(self, users):
        """(users, bytes per user) of the smallest memory reading with at
        least `users` users, else of the largest."""
        readings = sorted((row["users"], row["bytes_per_user"])
                          for (name, _), row in self.rows.items()
                          if name == "BM_Memory")
        enough = [r for r in readings if r[0] >= users]
        return enough[0] if enough else (readings[-1] if readings else None)


def fmt_number(value, digits=0):
    return f"{value:,.{digits}f}"


def spread(values, digits=0, unit=""):
    """'median [min – max] unit' of a list or a by-round dict."""
    values = list(values.values()) if isinstance(values, dict) else values
    if not values:
        return "—"
    unit = f" {unit}" if unit else ""
    median = statistics.median(values)
    if len(values) == 1:
        return f"{fmt_number(median, digits)}{unit}"
    return (f"{fmt_number(median, digits)}{unit} "
            f"[{fmt_number(min(values), digits)} – "
            f"{fmt_number(max(values), digits)}]")


def median(values):
    values = list(values.values()) if isinstance(values, dict) else values
    return statistics.median(values) if values else None


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |"
              for row in rows]
    return "\n".join(lines)


def main():
    args = parse_args()
    results = Results(os.path.join(args.input_dir, "results.jsonl"))
    machine = json.load(open(os.path.join(args.input_dir, "machine.json")))
    settings = json.load(open(os.path.join(args.input_dir, "settings.json")))
    batch = settings["batch_size"]

    def jb(server, workload, metric="calls_per_s"):
        return results.values(server, "jam-bench", workload, metric)

    def h2(server):
        return results.values(server, "h2load", "current_jam", "calls_per_s")

    def redis(workload, metric="calls_per_s"):
        return results.values("redis", "redis-benchmark", workload, metric)

    sections = []
    targets = []

    def target(name, ratios, limit, higher_is_better=True, doubt="",
               unit="", digits=2):
        if not ratios:
            targets.append((name, "not measured", "—"))
            return
        value = statistics.median(ratios)
        met = value >= limit if higher_is_better else value <= limit
        verdict = "yes" if met else "**no**"
        if doubt:
            verdict += f" ({doubt})"
        targets.append((name, spread(ratios, digits, unit), verdict))

    # Throughput against the limit.
    rows = []
    throughput = [
        ("CurrentJam (no user id)", "jam-bench", "current_jam",
         "calls_per_s", "calls/s"),
        ("Arrival mix: CurrentJam(user) + AddUser + RemoveUser", "jam-bench",
         "arrivals", "calls_per_s", "calls/s"),
        (f"Batch of {batch} arrival operations", "jam-bench", "batch",
         "ops_per_s", "ops/s"),
        (f"Batch of {batch} (calls)", "jam-bench", "batch", "calls_per_s",
         "calls/s"),
        ("CurrentJam (no user id)", "h2load", "current_jam", "calls_per_s",
         "calls/s"),
    ]
    ratio_of = {}
    for name, client, workload, metric, unit in throughput:
        empty = results.values("empty", client, workload, metric)
        balancer = results.values("balancer", client, workload, metric)
        if not empty and not balancer:
            continue
        ratios = results.ratios(balancer, empty)
        ratio_of[(client, workload, metric)] = ratios
        rows.append((name, client, spread(empty, unit=unit),
                     spread(balancer, unit=unit), spread(ratios, 2)))
    sections.append(("Throughput: jam-balancer against the empty server "
                     "(closed loop)",
                     table(["Workload", "Client", "empty-server",
                            "jam-balancer", "balancer / empty"], rows)))

    # Front-end sessions (jam-balancer only): the arrival mix with
    # front-end ids and keepalives against the anonymous one, two pairs
    # measured next to each other in each round (ABBA); the Sync of every
    # front end after a start; and the expiry of a large front end under
    # the arrival mix.
    pairs = [("arrivals", "arrivals_fe"),
             ("arrivals_pair2", "arrivals_fe_pair2")]
    anonymous, with_ids, fe_ratios, cpu_ratios = [], [], [], []
    for anonymous_name, with_ids_name in pairs:
        a = jb("balancer", anonymous_name)
        w = jb("balancer", with_ids_name)
        anonymous += list(a.values())
        with_ids += list(w.values())
        fe_ratios += results.ratios(w, a)
        cpu_ratios += results.ratios(
            results.cpu_per_call("balancer", "jam-bench", with_ids_name),
            results.cpu_per_call("balancer", "jam-bench", anonymous_name))
    sync_wall = jb("balancer", "sync", "wall_s")
    sync_frontends = settings.get("sync_frontends", 8)
    sync_users = settings.get("sync_users", 125000)
    sync_name = (f"Sync of {sync_frontends} x {sync_users:,} users after a "
                 "start: time until all answered")
    fe_rows = []
    if with_ids:
        fe_rows.append(("Arrival mix, anonymous (calls/s)",
                        spread(anonymous, unit="calls/s")))
        fe_rows.append((f"Arrival mix with front-end ids over "
                        f"{settings.get('frontends', 4)} front ends and "
                        "keepalives (calls/s)",
                        spread(with_ids, unit="calls/s")))
        fe_rows.append(("with ids / anonymous (each pair)",
                        spread(fe_ratios, 2)))
        fe_rows.append(("Server CPU per call, with ids / anonymous (each "
                        "pair)", spread(cpu_ratios, 2)))
    if sync_wall:
        fe_rows.append((sync_name, spread(sync_wall, 3, "s")))
        fe_rows.append(("Sync: slowest front end's own time",
                        spread(jb("balancer", "sync", "frontend_s_max"), 3,
                               "s")))
        fe_rows.append(("Sync: users placed per second",
                        spread(jb("balancer", "sync", "users_per_s"),
                               unit="users/s")))
    expiry_users = settings.get("expiry_users", 100000)
    longest_step = jb("balancer", "expiry", "removal.longest_step_ms")
    if longest_step:
        before_p99 = jb("balancer", "expiry", "expiry.before.p99_us")
        during_p99 = jb("balancer", "expiry", "expiry.during.p99_us")
        window = settings.get("probe_window", "500ms")
        fe_rows += [
            (f"Expiry of a front end with {expiry_users:,} users under the "
             "arrival mix: longest strand step of the removal",
             spread(longest_step, 2, "ms")),
            ("Expiry: strand steps of the removal",
             spread(jb("balancer", "expiry", "removal.steps"))),
            ("Expiry: the removal from first to last step",
             spread(jb("balancer", "expiry", "removal.took_ms"), 1, "ms")),
            (f"Other front ends' calls, p99 in the {window} before the "
             "expiring front end's Sync", spread(before_p99, unit="µs")),
            (f"Other front ends' calls, p99 in the {window} after its "
             "lease ran out", spread(during_p99, unit="µs")),
            ("p99 during / before",
             spread(results.ratios(during_p99, before_p99), 2)),
            ("Other front ends' calls, slowest in the window after",
             spread(jb("balancer", "expiry", "expiry.during.max_us"),
                    unit="µs")),
        ]
    if fe_rows:
        sections.append(("Front-end sessions (jam-balancer)",
                         table(["Measure", "jam-balancer"], fe_rows)))

    # Server CPU per call: what the balancer adds to gRPC's own cost,
    # nearly independent of how much CPU the client and others take.
    rows = []
    for name, client, workload in [
            ("CurrentJam", "jam-bench", "current_jam"),
            ("Arrival mix", "jam-bench", "arrivals"),
            (f"Batch of {batch} (per call)", "jam-bench", "batch"),
            ("CurrentJam", "h2load", "current_jam"),
            ("CurrentJam, open loop", "jam-bench", "current_jam_open"),
            ("Arrival mix, open loop", "jam-bench", "arrivals_open")]:
        empty = results.cpu_per_call("empty", client, workload)
        balancer = results.cpu_per_call("balancer", client, workload)
        if not empty and not balancer:
            continue
        extra = [balancer[r] - empty[r] for r in sorted(balancer)
                 if r in empty]
        rows.append((name, client, spread(empty, 1), spread(balancer, 1),
                     spread(extra, 1), spread(results.ratios(balancer, empty),
                                              2)))
    sections.append((
        "Server CPU time per call (µs of user + system time of the server "
        "process per call answered, warm-up included)",
        table(["Workload", "Client", "empty-server", "jam-balancer",
               "balancer − empty", "balancer / empty"], rows)))

    # Latency at peak (closed loop: saturated).
    rows = []
    for name, workload in [("CurrentJam", "current_jam"),
                           ("Arrival mix", "arrivals"),
                           (f"Batch of {batch}", "batch")]:
        cells = []
        for server in ("empty", "balancer"):
            p50 = jb(server, workload, "latency_us.p50")
            p99 = jb(server, workload, "latency_us.p99")
            cells.append(f"{spread(p50)} / {spread(p99)}" if p50 else "—")
        rows.append((name, *cells))
    sections.append(("Latency at peak load (closed loop, µs, p50 / p99)",
                     table(["Workload", "empty-server", "jam-balancer"],
                           rows)))

    # Latency in an open loop: at half of the empty server's peak (the
    # target's load), then at a light load, where the machine is far from
    # full, to show what the balancer adds when nothing queues.
    open_levels = [("", settings.get("open_fraction", 0.5), True)]
    if "light_fraction" in settings:
        open_levels.append(("_light", settings["light_fraction"], False))
    for suffix, fraction, is_target in open_levels:
        rows = []
        for name, workload in [("CurrentJam", "current_jam_open" + suffix),
                               ("Arrival mix", "arrivals_open" + suffix)]:
            empty = jb("empty", workload, "latency_us.p99")
            balancer = jb("balancer", workload, "latency_us.p99")
            if not empty:
                continue
            rate = median(jb("empty", workload, "rate"))
            cells = []
            for server in ("empty", "balancer"):
                cells.append(" / ".join(
                    spread(jb(server, workload, f"latency_us.{p}"))
                    for p in ("p50", "p99", "p999")))
            late = " / ".join(
                str(int(sum(jb(server, workload, "late_starts").values())))
                for server in ("empty", "balancer"))
            # A run that did not keep up measured its own backlog.
            overloaded_counts = [
                sum(1 for r, achieved in jb(server, workload).items()
                    if achieved < 0.98 * jb(server, workload, "rate")[r]
                    or jb(server, workload, "late_starts")[r] >
                    0.01 * jb(server, workload, "calls")[r])
                for server in ("empty", "balancer")]
            overloaded = " / ".join(map(str, overloaded_counts))
            ratios = results.ratios(balancer, empty)
            achieved = " / ".join(spread(jb(server, workload))
                                  for server in ("empty", "balancer"))
            rows.append((name, f"{fmt_number(rate)} calls/s", achieved,
                         *cells, spread(ratios, 2), late, overloaded))
            if is_target:
                target(f"{name}: p99 at {fraction} of the peak ≤ 1.5× the "
                       "empty server's",
                       ratios, 1.5, higher_is_better=False,
                       doubt="inconclusive: overloaded runs"
                       if any(overloaded_counts) else "")
        if rows:
            sections.append((
                f"Latency at {fraction} of the empty server's peak (open "
                "loop, µs, p50 / p99 / p99.9)" +
                ("" if is_target else ", a light load"),
                table(["Workload", "Offered load",
                       "achieved calls/s (empty / balancer)", "empty-server",
                       "jam-balancer", "p99 balancer / empty",
                       "late starts (empty / balancer)",
                       "overloaded runs (empty / balancer)"], rows)))

    # Redis.
    rows = []
    for name, workload in [("current_jam.lua (CurrentJam)", "current_jam"),
                           ("arrive.lua (CurrentJam + AddUser, one call)",
                            "arrive")]:
        p1 = redis(f"{workload}_P1")
        p16 = redis(f"{workload}_P16")
        if not p1 and not p16:
            continue
        rows.append((name, spread(p1, unit="calls/s"),
                     spread(p16, unit="calls/s")))
    if rows:
        sections.append(("Redis 7 + Lua (redis-benchmark, EVALSHA)",
                         table(["Script", "unpipelined (-P 1)",
                                "pipelined (-P 16)"], rows)))

    # Balancer against Redis. Redis numbers come from other processes in
    # other minutes of the round, so these ratios are of the medians.
    def versus(name, balancer, other):
        b, o = median(balancer), median(other)
        if b is None or o is None or o == 0:
            return None
        return (name, fmt_number(b), fmt_number(o), f"{b / o:.2f}")

    redis_rows = [
        versus("CurrentJam calls/s: jam-bench vs current_jam.lua -P 1",
               jb("balancer", "current_jam"), redis("current_jam_P1")),
        versus("CurrentJam calls/s: h2load vs current_jam.lua -P 1",
               h2("balancer"), redis("current_jam_P1")),
        versus("Arrivals/s (users added; 3 balancer calls each) vs "
               "arrive.lua -P 1 calls/s",
               jb("balancer", "arrivals", "arrivals_per_s"),
               redis("arrive_P1")),
        versus("Arrival-mix calls/s vs arrive.lua -P 1 calls/s",
               jb("balancer", "arrivals"), redis("arrive_P1")),
        versus(f"Batch of {batch}: operations/s vs arrive.lua -P 16 calls/s",
               jb("balancer", "batch", "ops_per_s"), redis("arrive_P16")),
        versus(f"Batch of {batch}: arrivals/s vs arrive.lua -P 16 calls/s",
               jb("balancer", "batch", "arrivals_per_s"), redis("arrive_P16")),
    ]
    redis_rows = [row for row in redis_rows if row]
    if redis_rows:
        sections.append(("jam-balancer against Redis + Lua (medians)",
                         table(["Comparison", "jam-balancer", "Redis",
                                "ratio"], redis_rows)))

    # Targets of issue 5.
    target("CurrentJam ≥ 0.9× the empty server (jam-bench)",
           ratio_of.get(("jam-bench", "current_jam", "calls_per_s"), []), 0.9)
    target("CurrentJam ≥ 0.9× the empty server (h2load)",
           ratio_of.get(("h2load", "current_jam", "calls_per_s"), []), 0.9)
    target("Arrival mix ≥ 0.9× the empty server (jam-bench)",
           ratio_of.get(("jam-bench", "arrivals", "calls_per_s"), []), 0.9)
    target("Arrival mix with front-end ids and keepalives vs anonymous "
           "arrival mix (jam-balancer) ≥ 0.95", fe_ratios, 0.95)
    target(sync_name + " ≤ 2 s", list(sync_wall.values()), 2.0,
           higher_is_better=False, unit="s", digits=3)
    # Every round must meet it: the slowest round is the one judged.
    target(f"Longest strand step while a front end of {expiry_users:,} "
           "users expires ≤ 10 ms (slowest round)",
           [max(longest_step.values())] if longest_step else [], 10.0,
           higher_is_better=False, unit="ms", digits=2)

    def target_median(name, balancer, other, limit):
        b, o = median(balancer), median(other)
        if b is None or o is None or o == 0:
            targets.append((name, "not measured", "—"))
        else:
            targets.append((name, f"{b / o:.2f}",
                            "yes" if b / o >= limit else "**no**"))

    # redis-benchmark is a light C client; h2load is its counterpart here.
    target_median("CurrentJam ≥ 1.0× Redis unpipelined (h2load vs "
                  "redis-benchmark, calls/s)",
                  h2("balancer"), redis("current_jam_P1"), 1.0)
    target_median("CurrentJam ≥ 1.0× Redis unpipelined (jam-bench vs "
                  "redis-benchmark, calls/s)",
                  jb("balancer", "current_jam"), redis("current_jam_P1"), 1.0)
    target_median("Arrivals ≥ 1.0× Redis unpipelined, per call (arrival-mix "
                  "calls/s vs arrive.lua calls/s)",
                  jb("balancer", "arrivals"), redis("arrive_P1"), 1.0)
    target_median("Arrivals ≥ 1.0× Redis unpipelined, per user placed "
                  "(3 balancer calls vs 1 script call)",
                  jb("balancer", "arrivals", "arrivals_per_s"),
                  redis("arrive_P1"), 1.0)
    target_median("Batch ≥ 1.5× Redis pipelined 16 deep (operations/s vs "
                  "arrive.lua calls/s)",
                  jb("balancer", "batch", "ops_per_s"), redis("arrive_P16"),
                  1.5)
    collection_path = os.path.join(args.input_dir, "collection.json")
    if os.path.exists(collection_path):
        collection = Collection(collection_path)
        sections.append(("Collection microbenchmarks (one run)",
                         collection.table()))
        slowest = collection.slowest_at(1_000_000)
        if slowest:
            name, nanos = slowest
            targets.append((
                "Every collection operation < 200 ns at 1e6 jams (slowest "
                f"shown: {name})", f"{nanos:,.0f} ns",
                "yes" if nanos < 200 else "**no**"))
        bytes_per_user = collection.bytes_per_user_at_least(1_000_000)
        if bytes_per_user:
            users, value = bytes_per_user
            targets.append((
                f"< 150 bytes per user at 1e6 users (measured at {users:,.0f} "
                "users)", f"{value:,.0f} bytes",
                "yes" if value < 150 else "**no**"))
    # Failover between two replicas on etcd (bench/failover_benchmark.py,
    # once): lists of times, in s.
    def failover(workload):
        for row in results.rows:
            if (row["server"], row["client"], row["workload"]) == (
                    "balancer", "failover", workload):
                return row["result"]
        return {}

    kill, term = failover("failover_kill"), failover("handover_sigterm")
    kill_client = failover("failover_kill_client")
    term_client = failover("handover_sigterm_client")
    kill_s = kill.get("times_s", [])
    term_ms = [t * 1e3 for t in term.get("times_s", [])]
    failover_runs = (kill or term).get("runs", 5)

    def runs(count):
        return f"{count} run{'' if count == 1 else 's'}"

    if kill or term:
        client = ("a client given both replicas (`jamctl --target=LEADER,"
                  "STANDBY --deadline=5s stats` started right after), one "
                  "run")
        rows = [
            (f"kill -9 of the leader: the standby answers "
             f"({runs(len(kill_s))})", spread(kill_s, 3, "s")),
            (f"SIGTERM of the leader: the standby answers "
             f"({runs(len(term_ms))})", spread(term_ms, 0, "ms")),
            ("SIGTERM: the old leader exited (drained) after",
             spread([t * 1e3 for t in term.get("old_leader_exited_s", [])],
                    0, "ms")),
            (f"kill -9: {client}", spread(kill_client.get("times_s", []), 3,
                                          "s")),
            (f"SIGTERM: {client}", spread(
                [t * 1e3 for t in term_client.get("times_s", [])], 0, "ms")),
        ]
        probe = kill or term
        poll = ("an in-process GetStats over HTTP/2 on a fresh connection"
                if probe.get("probe") == "inprocess" else "`jamctl stats`")
        sections.append((
            "Failover between replicas (etcd, lease 1 s)",
            table(["Measure", "median [min – max]"], rows) +
            f"\n\nFrom the signal until the first answered poll of the "
            f"standby returned: {poll} every "
            f"{probe.get('poll_interval_ms', 0):g} ms (one takes "
            f"{probe.get('poll_ms', 0):.1f} ms against the leader). etcd "
            f"{probe.get('etcd', '')}, 3 members on loopback."))
    target(f"kill -9 of the leader: the standby answers ≤ 2 s (median of "
           f"{failover_runs})", kill_s, 2.0, higher_is_better=False,
           unit="s", digits=3)
    target(f"SIGTERM of the leader: handover ≤ 200 ms (median of "
           f"{failover_runs})", term_ms, 200, higher_is_better=False,
           unit="ms", digits=0)
    sections.append(("Targets (issues 5 and 13)",
                     table(["Target", "Measured", "Met"], targets)))

    summary = "\n\n".join(f"### {title}\n\n{body}" for title, body in sections)
    print(summary)

    commands = []
    for line in open(os.path.join(args.input_dir, "commands.txt")):
        kind, _, command = line.rstrip("\n").partition("\t")
        commands.append(f"# {kind}\n{command.strip()}")
    smoke_note = ("\n**Smoke run (seconds long, for the test suite): the "
                  "numbers mean nothing.**\n" if settings.get("smoke") else "")
    load = " ".join(machine["load_before"])
    report = f"""# Benchmarks

Written by `tools/benchmark.sh` (run it again to refresh this file).
{smoke_note}
Each figure is the median of {settings['rounds']} rounds with the range
[min – max]. The rounds interleave the contestants (odd rounds start with
the empty server, even rounds with jam-balancer; every run gets a fresh
server), and a balancer/empty ratio is the median of the per-round ratios,
so drift on a shared machine hits both alike. Client and server share the
machine's {machine['nproc']} CPUs, as do Redis and redis-benchmark.

{summary}

## What was measured

- **empty-server** (`bench/empty_server.cc`): the same gRPC service on the
  callback API, built with the same flags, answering every call at once
  with a constant answer: the limit of gRPC itself on this machine.
- **jam-balancer** with default flags (`--max_users={settings['max_users']}`),
  metrics on.
- Each run: a fresh server, {settings['prepopulate']:,} jams prepopulated
  (jam i holds 1 + i % {settings['max_users']} users), then
  {settings['warmup_s']} s warm-up and {settings['duration_s']} s measured.
- **jam-bench** (`bench/load/`), gRPC C++ callback API,
  {settings['concurrency']} calls in flight on {settings['channels']}
  channels (TCP connections). Workloads: `current_jam` is CurrentJam without
  a user id; `arrivals` is the front-end protocol, CurrentJam with a new user
  id (reserving a seat), AddUser to the answered jam, and once
  {settings['population']:,} users are present a RemoveUser departure per
  arrival (3 calls per arrival); `batch` sends Batch calls of
  {batch} operations of the same life cycle (AddUser for the users the
  previous batch answered, departures, CurrentJam for new users, about a
  third each). `arrivals_fe` (jam-balancer only) is `arrivals` with every
  call naming its front end (`frontend_id`): the channels are spread over
  {settings.get('frontends', 4)} front ends, each of which opens its session
  with an empty `Sync` (lease 10 s) before the warm-up and sends `KeepAlive`
  every lease/3 during the run; keepalives are not counted as calls (a
  failed one would count as an error). Each round runs two pairs of it
  with the balancer's anonymous `arrivals`, one in each order (ABBA), and
  the ratio is per pair.
- **Expiry** (jam-balancer only, one run per round): `arrivals_fe` against
  a fresh, prepopulated balancer while one more front end, a third into
  the measured window, `Sync`s {settings.get('expiry_users', 100000):,}
  users in jams of 7 with a lease of {settings.get('expiry_lease', '1s')}
  and then goes silent. The balancer removes its users in steps of at most
  2,048 users, each a strand task of its own, and logs the removal's steps,
  its time and its longest step (`longest_step_ms`, measured on the strand).
  The other front ends' calls are measured apart by the time they started:
  in the {settings.get('probe_window', '500ms')} before the `Sync` and in
  the {settings.get('probe_window', '500ms')} from the moment the lease ran
  out (which holds the whole removal). After the run jam-bench checks that
  the session and the users are gone.
- **Sync after a start** (jam-balancer only, one run per round): a fresh
  balancer, then {settings.get('sync_frontends', 8)} front ends on their own
  connections each `Sync` {settings.get('sync_users', 125000):,} users in
  jams of 7 (ids unique per front end), all at once; the time is from the
  first `Sync` sent until the last answered (the truths are built before).
- **Server CPU per call**: the server process's user + system time over a
  run (from /proc) divided by the calls it answered. Unlike calls/s, it
  hardly depends on how much CPU the client or other work on the machine
  takes, so it is the steadiest measure of what jam-balancer adds to
  gRPC's own cost; it falls as load rises (gRPC amortizes wake-ups and
  system calls over more calls), so compare it at equal load.
- **Open loop**: jam-bench `--rate` starts calls on a fixed schedule at
  {settings.get('open_fraction', 0.5)} of the empty server's median
  closed-loop rate, on up to
  {settings['concurrency'] * 4} slots, for {settings['open_duration_s']} s;
  latency counts from each call's scheduled start, so queueing in the client
  is charged to the server (no coordinated omission). Late starts are calls
  that found every slot busy. A run is counted as overloaded when it
  achieved less than 98% of the offered rate or more than 1% of its starts
  were late: the machine (client, server and whatever else runs there) did
  not keep up, and its percentiles measure the backlog. The open-loop client
  costs about twice the CPU per call of the closed-loop one (each call
  starts from the scheduler thread, so gRPC cannot coalesce writes), so on a
  2-CPU machine half of the closed-loop peak is close to full (client and
  server together need about 90% of both CPUs). So close to full, a run
  either keeps up or, after a scheduling hiccup, falls into a backlog it
  never works off (p50 in the tens or hundreds of ms), the empty server as
  well as the balancer; the p99 ratio then says which one tipped over. The
  light load ({settings.get('light_fraction', '—')} of the peak) shows what
  the balancer adds when nothing queues.
- **h2load** (nghttp2) on CurrentJam with an empty request (a 5-byte gRPC
  frame), {settings['channels']} connections of
  {settings['concurrency'] // settings['channels']} streams, a calibrating
  warm-up then about {settings['duration_s']} s. h2load counts any HTTP 200,
  so each run is checked against the server: jam-balancer's
  `grpc_server_handled_total{{grpc_code="OK",grpc_method="CurrentJam"}}`
  must grow by exactly the requests sent (and no other code by any), and the
  empty server's own count of answered calls must equal them.
- **Redis** {machine['redis'].split()[2] if machine['redis'] else ''}:
  `bench/redis/current_jam.lua` (CurrentJam: the first member of a sorted set
  of jams with room, score = -members, ties by id) and
  `bench/redis/arrive.lua` (CurrentJam and AddUser in one script: the user
  joins that jam and leaves the one it was in; no seat reservations), on
  the same prepopulated jams, via `redis-benchmark -c
  {settings['concurrency']}` with random users among
  {settings['population']:,} (`-r`), unpipelined and 16 deep. Each run is
  checked: Redis's `cmdstat_evalsha` calls grow by the requests sent and
  `total_error_replies` stays 0. An arrival is one Redis call but three
  balancer calls (CurrentJam with a reservation, AddUser, RemoveUser), so
  the arrival rows compare users placed per second.
- **Failover** (`bench/failover_benchmark.py`, once): three etcd members on
  loopback (`--heartbeat-interval 50 --election-timeout 500`) and two
  jam-balancer replicas (`--etcd_endpoints`, `--election_ttl=1s`,
  `--resync_grace=0s`). Each run stops the leader, polls the standby with
  GetStats until it answers, then starts the stopped replica again and
  waits until it stands by: {runs(failover_runs)} with kill -9, then
  {runs(failover_runs)} with SIGTERM (the leader resigns its election first,
  then drains and exits), and once each, a client given both replicas,
  the old leader first (it follows the leader a standby names). After a
  kill -9 a standby can win only once etcd expired the dead leader's
  lease: 1 s after its last keepalive (sent every third of it), found by
  etcd's check for expired leases (every 500 ms in etcd 3.4).

## Machine

| | |
|---|---|
| CPUs (nproc) | {machine['nproc']} |
| CPU model | {machine['cpu']} |
| Kernel | {machine['kernel']} |
| OS | {machine['os']} |
| Memory | {machine['memory']} |
| Load average at start / end | {load} / {" ".join(settings.get("load_after", []))} |
| Compiler | {machine['compiler']} |
| gRPC / protobuf (Debian) | {machine['grpc']} / {machine['protobuf']} |
| Redis | {machine['redis']} |
| h2load | {machine['h2load']} |
| Build | {machine['build_type']}, commit {machine['commit']} |
| Run time | {settings['elapsed_s']} s |

## Commands

One command runs everything: `tools/benchmark.sh` (see `--help` for the
settings). The runs of round 1, as executed (ports were free ones picked at
run time):

```sh
{chr(10).join(commands)}
```
"""
    # The soak (tools/soak.sh) is a run of its own: its section of the file
    # being replaced is kept, at the end.
    soak = ""
    if os.path.exists(args.output):
        found = re.search(r"(?ms)^## Soak\b.*?(?=^## |\Z)",
                          open(args.output).read())
        if found:
            soak = "\n" + found.group(0).rstrip("\n") + "\n"
    with open(args.output, "w") as out:
        out.write(report + soak)
    return 0


if __name__ == "__main__":
    sys.exit(main())
