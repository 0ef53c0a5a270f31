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
run of its own). The pools step's results (workloads pools1 and pools2,
pools_collection.json) make a "## Pools" section of their own, at the end;
with settings "only": "pools" (tools/benchmark.sh --only=pools) that section
alone is replaced (or appended) and the rest of the file is left as it is.
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
            if row["run_name"].startswith("BM_PoolsInParallel/"):
                continue  # The pools section's (PoolsMicrobenchmark).
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


# The pools step (tools/benchmark.sh step 7): its own section, "## Pools".
POOLS_HEADING = "## Pools"
SECTION_RE = r"(?ms)^{heading}\b.*?(?=^## |\Z)"


class PoolsMicrobenchmark:
    """collection_benchmark's BM_PoolsInParallel (pools_collection.json):
    operations per second of all pools together, by (jams, pools)."""

    def __init__(self, path):
        # (jams, pools) -> operations per second of all pools; CPUs the
        # pools' threads used together (CPU time over wall time); CPU ns
        # per operation.
        self.rate, self.cpus, self.cpu_ns = {}, {}, {}
        rows = [row for row in json.load(open(path))["benchmarks"]
                if row["run_name"].startswith("BM_PoolsInParallel/")]
        # Repeated: the medians of the repetitions; else the one run.
        self.repeated = max((row.get("repetitions", 0) for row in rows
                             if row.get("run_type") == "aggregate"),
                            default=0)
        for row in rows:
            if self.repeated and row.get("aggregate_name") != "median":
                continue
            key = (int(re.search(r"/jams:(\d+)", row["run_name"])[1]),
                   int(row["threads"]))
            self.rate[key] = row["items_per_second"]
            # Google Benchmark sums the threads' CPU time and divides the
            # wall time by the threads: both per iteration (100 operations).
            self.cpus[key] = row["cpu_time"] / row["real_time"]
            self.cpu_ns[key] = row["cpu_time"] / 100 * {
                "ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[row["time_unit"]]

    def speedup(self, jams, pools):
        one = self.rate.get((jams, 1))
        rate = self.rate.get((jams, pools))
        return rate / one if one and rate else None

    def table(self):
        sizes = sorted({jams for jams, _ in self.rate})
        counts = sorted({pools for _, pools in self.rate})
        rows = []
        for pools in counts:
            cells = []
            for jams in sizes:
                rate = self.rate.get((jams, pools))
                ratio = self.speedup(jams, pools)
                cells.append("—" if rate is None else
                             f"{rate:,.0f} ops/s ({ratio:.2f}×); "
                             f"{self.cpus[(jams, pools)]:.2f} CPUs; "
                             f"{self.cpu_ns[(jams, pools)]:,.0f} CPU ns/op")
            rows.append([f"{pools}"] + cells)
        return table(["Pools at once (threads)"] +
                     [f"{jams:,} jams per pool" for jams in sizes], rows)


def pools_section(results, settings, machine, input_dir):
    """The "## Pools" section, or None if the pools step did not run."""
    one_names, two_names = ("pools1", "pools1_pair2"), ("pools2", "pools2_pair2")
    if not any(results.values("balancer", "jam-bench", name, "calls_per_s")
               for name in one_names + two_names):
        return None
    pool_names = settings.get("pool_names", ["p1", "p2"])
    batch = settings.get("pools_batch_size", 100)
    nproc = machine["nproc"]

    def runs(names, metric):
        out = []
        for name in names:
            out += list(results.values("balancer", "jam-bench", name,
                                       metric).values())
        return out

    def pair_ratios(metric, per=None):
        out = []
        for one, two in zip(one_names, two_names):
            a = results.values("balancer", "jam-bench", one, metric)
            b = results.values("balancer", "jam-bench", two, metric)
            if per:
                a = {r: v / per[one][r] for r, v in a.items() if per[one].get(r)}
                b = {r: v / per[two][r] for r, v in b.items() if per[two].get(r)}
            out += results.ratios(b, a)
        return out

    answered = {name: results.values("balancer", "jam-bench", name, "answered")
                for name in one_names + two_names}

    def cpu_per_call(names):
        out = []
        for name in names:
            cpu = results.values("balancer", "jam-bench", name, "server_cpu_s")
            out += [cpu[r] / answered[name][r] * 1e6 for r in cpu
                    if answered[name].get(r)]
        return out

    def strand_busy(names):
        """Each run's {pool: busy fraction}."""
        return [row["result"]["window"]["strand_busy"] for row in results.rows
                if row["client"] == "jam-bench" and row["workload"] in names]

    def busy(names, pool):
        return [b[pool] for b in strand_busy(names) if pool in b]

    def busy_total(names):
        return [sum(b.values()) for b in strand_busy(names)]

    ops_ratio = pair_ratios("ops_per_s")
    rows = [
        (f"Operations/s (Batch of {batch})",
         spread(runs(one_names, "ops_per_s"), unit="ops/s"),
         spread(runs(two_names, "ops_per_s"), unit="ops/s"),
         spread(ops_ratio, 2)),
        ("Calls/s", spread(runs(one_names, "calls_per_s"), unit="calls/s"),
         spread(runs(two_names, "calls_per_s"), unit="calls/s"),
         spread(pair_ratios("calls_per_s"), 2)),
        ("Latency p50 (µs)", spread(runs(one_names, "latency_us.p50")),
         spread(runs(two_names, "latency_us.p50")),
         spread(pair_ratios("latency_us.p50"), 2)),
        ("Latency p99 (µs)", spread(runs(one_names, "latency_us.p99")),
         spread(runs(two_names, "latency_us.p99")),
         spread(pair_ratios("latency_us.p99"), 2)),
        ("Latency p99.9 (µs)", spread(runs(one_names, "latency_us.p999")),
         spread(runs(two_names, "latency_us.p999")),
         spread(pair_ratios("latency_us.p999"), 2)),
        ("Latency max (µs)", spread(runs(one_names, "latency_us.max")),
         spread(runs(two_names, "latency_us.max")),
         spread(pair_ratios("latency_us.max"), 2)),
        ("Server CPU per call (µs, warm-up included)",
         spread(cpu_per_call(one_names), 1), spread(cpu_per_call(two_names), 1),
         "—"),
    ]
    for pool in ["default"] + list(pool_names):
        rows.append((f"Strand busy fraction, pool `{pool}`",
                     spread(busy(one_names, pool), 2),
                     spread(busy(two_names, pool), 2), "—"))
    rows += [
        ("Strand busy, all pools together (strands' seconds per second)",
         spread(busy_total(one_names), 2), spread(busy_total(two_names), 2),
         "—"),
        (f"Server process: CPUs used (of {nproc})",
         spread(runs(one_names, "window.server_cpus"), 2),
         spread(runs(two_names, "window.server_cpus"), 2), "—"),
        (f"jam-bench: CPUs used (of {nproc})",
         spread(runs(one_names, "window.client_cpus"), 2),
         spread(runs(two_names, "window.client_cpus"), 2), "—"),
        ("Machine busy (all CPUs, every process)",
         spread([v * 100 for v in runs(one_names, "window.machine_busy")], 0,
                "%"),
         spread([v * 100 for v in runs(two_names, "window.machine_busy")], 0,
                "%"), "—"),
    ]
    pairs = len(ops_ratio)
    body = [
        "Written by `tools/benchmark.sh --only=pools` (also step 7 of a full "
        "run, which rewrites the rest of this file and keeps this section "
        "up to date).",
        "",
        f"### Batch workload sent to one pool and spread over two "
        f"(jam-balancer, closed loop)",
        "",
        f"jam-balancer with `--pools={pool_names[0]}:{settings['max_users']},"
        f"{pool_names[1]}:{settings['max_users']}` (a fresh one per run), "
        f"jam-bench `--workload=batch --batch_size={batch}`, "
        f"{settings['concurrency']} calls in flight on "
        f"{settings['channels']} connections: every slot's Batch goes to "
        f"`{pool_names[0]}` (1 pool), or slot i's to pool i % 2 of "
        f"`{pool_names[0]},{pool_names[1]}` (2 pools; `BatchRequest.pool` "
        f"set, the operations name none), with the same total "
        f"concurrency. The batch life cycle of the users is as in the "
        f"`batch` workload (AddUser for the users the slot's previous batch "
        f"answered, departures, CurrentJam with a user id for new users, "
        f"about a third each); user ids are the slot's own, so the two "
        f"pools do the same kind of work on disjoint users, "
        f"{settings['population']:,} users in all (in 2 pools, half in "
        f"each), after {settings['prepopulate']:,} jams were filled in each "
        f"pool used. {settings['warmup_s']} s warm-up, "
        f"{settings['duration_s']} s measured; {settings['rounds']} "
        f"round(s) of two pairs, one in each order (ABBA), so {pairs} pairs; a ratio "
        f"is the median of the per-pair ratios. Strand busy fraction: the "
        f"growth of `jam_balancer_strand_run_seconds_sum{{pool=...}}` "
        f"(/metrics, scraped half a second into the measured window and "
        f"half a second before its end) over the wall time between the "
        f"scrapes; CPUs used and machine busy are over the same interval, "
        f"from /proc. Median [min – max] over the runs.",
        "",
        table(["Measure", f"1 pool (`{pool_names[0]}`)",
               f"2 pools (`{pool_names[0]}`, `{pool_names[1]}`)",
               "2 pools / 1 pool (each pair)"], rows),
    ]
    micro_path = os.path.join(input_dir, "pools_collection.json")
    micro = None
    if os.path.exists(micro_path):
        micro = PoolsMicrobenchmark(micro_path)
        body += [
            "",
            "### Pools side by side without gRPC "
            "(`collection_benchmark`, `BM_PoolsInParallel`)",
            "",
            f"N pools at once, each a `JamCollection` on its own thread (as "
            f"each pool's state is touched by its own strand only), each "
            f"running the same batch life cycle in batches of 100 operations "
            f"with 10,000 users of its own, after its jams were filled as "
            f"above; operations per second of all pools together over the "
            f"wall time (`UseRealTime`), and in parentheses that over one "
            f"pool's; CPUs: the threads' CPU time over the wall time. "
            + (f"Median of {micro.repeated} repetitions, run in random "
               f"order." if micro.repeated else "One run.") +
            f" The machine has {nproc} CPUs.",
            "",
            micro.table(),
        ]
    # 1 pool on a server without inline strand tasks (not paired: the last
    # run of each round), for the long stalls.
    not_inline = ("pools1_not_inline",)
    if runs(not_inline, "ops_per_s"):
        stall_rows = [
            ("Operations/s", spread(runs(one_names, "ops_per_s"),
                                    unit="ops/s"),
             spread(runs(not_inline, "ops_per_s"), unit="ops/s"),
             spread(runs(two_names, "ops_per_s"), unit="ops/s")),
        ]
        for label, metric in [("p50", "latency_us.p50"),
                              ("p99", "latency_us.p99"),
                              ("p99.9", "latency_us.p999"),
                              ("max", "latency_us.max")]:
            stall_rows.append((f"Latency {label} (µs)",
                               spread(runs(one_names, metric)),
                               spread(runs(not_inline, metric)),
                               spread(runs(two_names, metric))))
        stall_rows.append((f"Strand busy fraction, pool `{pool_names[0]}`",
                           spread(busy(one_names, pool_names[0]), 2),
                           spread(busy(not_inline, pool_names[0]), 2),
                           spread(busy(two_names, pool_names[0]), 2)))
        body += [
            "",
            "### Stalls: one pool with and without inline strand tasks",
            "",
            "By default (`--strand_inline=true`) a gRPC thread that posts "
            "to an idle strand runs the task itself, then what was queued "
            "meanwhile (server/runtime/strand.h says how much: since commit "
            "ab6739d one batch, the rest left to the strand's own thread; "
            "before, until the queue was empty). Each round ends with one "
            "more 1-pool run on a server started with "
            "`--strand_inline=false` (every task runs on the strand's own "
            "thread); not paired, so compare it with care.",
            "",
            table(["Measure", "1 pool", "1 pool, `--strand_inline=false`",
                   "2 pools"], stall_rows),
        ]
    # Reading it: the numbers of this run, said in words.
    one_busy = median(busy(one_names, pool_names[0]))
    two_busy = [median(busy(two_names, p)) for p in pool_names]
    ratio = median(ops_ratio)
    machine_one = median(runs(one_names, "window.machine_busy"))
    machine_two = median(runs(two_names, "window.machine_busy"))
    server_cpus = median(runs(one_names, "window.server_cpus"))
    server_cpus_two = median(runs(two_names, "window.server_cpus"))
    client_cpus = median(runs(one_names, "window.client_cpus"))
    cpu_one, cpu_two = median(cpu_per_call(one_names)), median(
        cpu_per_call(two_names))
    facts = (one_busy, two_busy[0], two_busy[1], ratio, machine_one,
             machine_two, server_cpus, server_cpus_two, client_cpus, cpu_one,
             cpu_two)
    if None not in facts:
        text = [
            "",
            "### Reading it",
            "",
            f"With one pool, its strand was busy {one_busy:.0%} of the wall "
            f"time; the server process used {server_cpus:.2f} CPUs, "
            f"jam-bench {client_cpus:.2f}, and the machine's {nproc} CPUs "
            f"were {machine_one:.0%} busy (everything on the machine, the "
            f"other work included)" +
            (f"; the kernel shares CPU time between sessions first "
             f"(`sched_autogroup_enabled=1`), so while other sessions were "
             f"busy the server and jam-bench, in one session, shared about "
             f"one session's share of the CPUs. " if machine.get("autogroup")
             == "1" else ". ") +
            f"Busy time is wall-clock time from a "
            f"strand task's start to its end, so it includes any time the "
            f"thread running the task waited for a CPU (inline strand tasks "
            f"run on gRPC's threads, `--strand_inline`, which the kernel "
            f"shares with jam-bench and everything else).",
        ]
        if one_busy > server_cpus:
            text.append(
                "Here it exceeded the CPU time of the whole server process: "
                "much of the time the strand was held by a task whose thread "
                "had been preempted on the full machine. Calls queued behind "
                "it all the same, so for them the one strand was the "
                "bottleneck, though not for want of CPU time of its own.")
        # The collection's own CPU time for one Batch, from the
        # microbenchmark's one pool (its sizes bracket the 10,000-odd jams
        # of a pool here), against the server's CPU time per call.
        collection_us = []
        if micro is not None:
            collection_us = sorted(micro.cpu_ns[k] * batch / 1e3
                                   for k in micro.cpu_ns if k[1] == 1)
        if collection_us:
            text.append(
                f"For scale: the collection's own work for a Batch of "
                f"{batch} operations is {collection_us[0]:,.0f}–"
                f"{collection_us[-1]:,.0f} µs of CPU time (the "
                f"microbenchmark below, one pool), of the {cpu_one:,.0f} µs "
                f"the server spent per call; the rest is gRPC (HTTP/2, "
                f"messages of {batch} operations, its threads) and the "
                f"handling around the collection. A request is parsed on a "
                f"gRPC thread before its task is posted; the strand task "
                f"applies the operations, serializes the answer and "
                f"finishes the call (server/rpc/jam_balancer_service_impl.cc).")
            calls_one = median(runs(one_names, "calls_per_s"))
            if calls_one:
                low, high = (calls_one * us / 1e6 for us in
                             (collection_us[0], collection_us[-1]))
                text.append(
                    f"At {calls_one:,.0f} calls/s that is {low:.2f}–"
                    f"{high:.2f} s of collection work per second, against "
                    f"the strand's {one_busy:.2f} s of busy time: the rest "
                    f"of its busy time is its tasks' other work (the "
                    f"operations' handling beyond the collection, the "
                    f"answer's serialization, finishing the call) and waits "
                    f"for a CPU, in proportions not measured here.")
        verdict = (
            f"Spread over two pools, the strands were busy "
            f"{two_busy[0]:.0%} and {two_busy[1]:.0%}, the server used "
            f"{server_cpus_two:.2f} CPUs (the machine {machine_two:.0%} "
            f"busy), and the throughput was {ratio:.2f}× that of one pool "
            f"(per pair: {spread(ops_ratio, 2)}). ")
        if min(ops_ratio) > 1:
            verdict += (
                "Every pair gained: a call waits only behind its own "
                "pool's tasks, so a task held up on a busy CPU delays half "
                "of the calls instead of all of them. ")
        elif max(ops_ratio) < 1:
            verdict += ("Every pair lost: more threads contend for the "
                        "same CPUs. ")
        else:
            verdict += (
                "The pairs went both ways, so on this machine, this loaded, "
                "no difference in throughput shows beyond the noise: with "
                "the CPUs full, a second strand has no CPU to run on that "
                "gRPC, jam-bench or the other work were not already using, "
                "so taking the strand out of the way moves the bottleneck "
                "to the CPUs at once. ")
        cpu_one_runs, cpu_two_runs = (cpu_per_call(one_names),
                                      cpu_per_call(two_names))
        if max(cpu_two_runs) < min(cpu_one_runs):
            verdict += (
                f"The server's CPU time per call fell in every run, from "
                f"{cpu_one:,.1f} µs (median, 1 pool) to {cpu_two:,.1f} µs "
                f"(2 pools); why is not measured here.")
        else:
            verdict += (
                f"The server's CPU time per call: {cpu_one:,.1f} µs with "
                f"one pool, {cpu_two:,.1f} µs with two (medians).")
        text += ["", verdict]
        max_one = median(runs(one_names, "latency_us.max"))
        p99_one = median(runs(one_names, "latency_us.p99"))
        max_two = median(runs(two_names, "latency_us.max"))
        max_not_inline = median(runs(not_inline, "latency_us.max"))
        ops_not_inline = median(runs(not_inline, "ops_per_s"))
        if max_one and p99_one and max_one <= 10 * p99_one:
            text += ["", (
                f"No call of the one-pool runs was held up far beyond the "
                f"rest: the slowest took {max_one / 1e3:,.0f} ms (median of "
                f"the runs' maxima) against a p99 of {p99_one / 1e3:,.0f} "
                f"ms; {max_two / 1e3:,.0f} ms with two pools.")]
        elif max_one and p99_one:
            stall = (
                f"With one pool some calls were held up for much longer than "
                f"the rest: the slowest took {max_one / 1e6:.2f} s (median "
                f"of the runs' maxima) against a p99 of "
                f"{p99_one / 1e3:,.0f} ms; with two pools the slowest took "
                f"{max_two / 1e6:.2f} s. ")
            if max_not_inline and max_not_inline * 5 < max_one:
                stall += (
                    f"Without inline strand tasks the slowest 1-pool call "
                    f"took {max_not_inline / 1e6:.2f} s, at "
                    f"{ops_not_inline / median(runs(one_names, 'ops_per_s')):.2f}× "
                    f"the throughput. That points at inline mode; a likely "
                    f"mechanism (not traced): a gRPC thread that found the "
                    f"strand idle keeps draining what others queue while "
                    f"the strand stays busy, and the calls whose I/O that "
                    f"thread would have handled wait meanwhile. Splitting "
                    f"the load over pools makes each strand less busy, so "
                    f"such drains end sooner.")
            elif max_not_inline:
                stall += (
                    f"Without inline strand tasks the slowest 1-pool call "
                    f"took {max_not_inline / 1e6:.2f} s, so inline mode "
                    f"alone does not explain them; the cause is not "
                    f"identified.")
            text += ["", stall]
        if micro is not None and micro.rate:
            sizes = sorted({jams for jams, _ in micro.rate})
            counts = sorted({p for _, p in micro.rate})
            parts = []
            for jams in sizes:
                cells = []
                for pools in counts:
                    key = (jams, pools)
                    if key in micro.rate:
                        cells.append(
                            f"{pools}: {micro.speedup(*key):.2f}× on "
                            f"{micro.cpus[key]:.2f} CPUs, "
                            f"{micro.cpu_ns[key]:,.0f} CPU ns/op")
                parts.append(f"at {jams:,} jams per pool, " +
                             "; ".join(cells))
            two = [(jams, micro.speedup(jams, 2), micro.cpus[(jams, 1)],
                    micro.cpus[(jams, 2)]) for jams in sizes
                   if (jams, 2) in micro.rate and (jams, 1) in micro.rate]
            paragraph = (
                "Without gRPC (" + "; ".join(parts) + "): N=2 against N=1 "
                "gave " + ", ".join(f"{s:.2f}× at {j:,} jams per pool"
                                    for j, s, _, _ in two) +
                f" on these {nproc} CPUs. The throughput follows the CPU "
                f"time the pools' threads got (CPU time over wall time, "
                f"the CPUs column): ")
            if all(c2 >= 1.6 * c1 for _, _, c1, c2 in two):
                paragraph += (
                    "given a second CPU, a second pool ran on it, as the "
                    "pools share no state. ")
            else:
                paragraph += (
                    "the second CPU was mostly not there to take, the other "
                    "work on the machine holding it, so the threads of 2 "
                    "pools got " + ", ".join(
                        f"{c2:.2f} CPUs against {c1:.2f} for one"
                        for _, _, c1, c2 in two) +
                    " and 2 pools could not run side by side for most of "
                    "the time" +
                    (" (the kernel shares CPU time between sessions first, "
                     "`sched_autogroup_enabled=1`: the benchmark's threads, "
                     "however many, got one session's share while other "
                     "sessions were busy)" if machine.get("autogroup") == "1"
                     else "") +
                    ". On an idle 2-CPU machine, 2 pools would have a CPU "
                    "each and 4 pools could do no better than 2. ")
            # How much the CPU time per operation moves with the number of
            # pools, at each size (the sizes differ by themselves).
            spreads = []
            for jams in sizes:
                values = [micro.cpu_ns[k] for k in micro.cpu_ns
                          if k[0] == jams]
                spreads.append((jams, min(values), max(values)))
            if all(high <= 1.15 * low for _, low, high in spreads):
                paragraph += ("The CPU time per operation changed little "
                              "with the number of pools at either size: "
                              "they do not slow each other down.")
            else:
                paragraph += (
                    "With the number of pools, the CPU time per operation "
                    "varied " + ", ".join(
                        f"from {low:,.0f} to {high:,.0f} ns at {jams:,} jams"
                        for jams, low, high in spreads) +
                    " (the pools share the CPUs' caches and memory "
                    "bandwidth, and with more pools than CPUs their threads "
                    "take turns).")
            text += ["", paragraph]
        text += [
            "",
            "What would scale on more cores: each pool's strand is a "
            "serial executor of its own, its state touched by nothing "
            "else, so N pools can run N strands' work at once on N free "
            "cores. In "
            "the server that raises the ceiling once one strand is the "
            "limit, i.e. when gRPC and the clients have cores enough to "
            "feed a strand faster than it applies operations; then each "
            "pool adds a strand's worth, up to N× for load spread evenly "
            "over N pools (one pool's traffic still goes through its one "
            "strand). " +
            (f"Most of the server's CPU time per Batch call is not the "
             f"collection's (about {collection_us[-1]:,.0f} of "
             f"{cpu_one:,.0f} µs, above); " if collection_us else "") +
            "gRPC's part of the cost scales with cores whether there are "
            "pools or not. On these "
            "2 CPUs, shared by jam-bench, gRPC, the strands and other work, "
            "the CPUs run out first.",
        ]
        body += text
    load = " ".join(machine.get("load_before", []))
    load_after = " ".join(settings.get("load_after", []))
    commands = []
    for line in open(os.path.join(input_dir, "commands.txt")):
        kind, _, command = line.rstrip("\n").partition("\t")
        if (kind.startswith("jam-balancer --pools") or "pools" in kind
                or "pool(s)" in kind):
            commands.append(f"# {kind}\n{command.strip()}")
    smoke = ("\n**Smoke run (seconds long, for the test suite): the numbers "
             "mean nothing.**\n" if settings.get("smoke") else "")
    body += [
        "",
        f"Machine: {nproc} CPUs ({machine['cpu']}), {machine['build_type']} "
        f"build, commit {machine['commit']}; load average (1, 5, 15 min) "
        f"{load} at the start, {load_after} at the end. The machine was "
        f"shared with other work (builds); the pairs measured next to each "
        f"other are what to compare.",
        smoke,
        "```sh",
        "\n".join(commands),
        "```",
    ]
    return f"{POOLS_HEADING}\n\n" + "\n".join(body).rstrip("\n") + "\n"


def write_pools_only(section, output):
    """Replaces the "## Pools" section of `output` (or appends it), leaving
    the rest of the file as it is."""
    text = open(output).read() if os.path.exists(output) else "# Benchmarks\n"
    pattern = SECTION_RE.format(heading=POOLS_HEADING)
    if re.search(pattern, text):
        text = re.sub(pattern, lambda _: section + "\n", text, count=1)
        text = text.rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(output, "w") as out:
        out.write(text)


def main():
    args = parse_args()
    results = Results(os.path.join(args.input_dir, "results.jsonl"))
    machine = json.load(open(os.path.join(args.input_dir, "machine.json")))
    settings = json.load(open(os.path.join(args.input_dir, "settings.json")))
    batch = settings["batch_size"]
    pools = pools_section(results, settings, machine, args.input_dir)
    if settings.get("only") == "pools":
        if pools is None:
            sys.exit("benchmark_report: no pools results")
        print(pools)
        write_pools_only(pools, args.output)
        return 0

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
    # being replaced is kept, at the end. So is the pools step's, if it did
    # not run.
    soak = ""
    old = open(args.output).read() if os.path.exists(args.output) else ""
    found = re.search(SECTION_RE.format(heading="## Soak"), old)
    if found:
        soak = "\n" + found.group(0).rstrip("\n") + "\n"
    if pools is None:
        found = re.search(SECTION_RE.format(heading=POOLS_HEADING), old)
        pools = found.group(0).rstrip("\n") + "\n" if found else None
    if pools is not None:
        print(pools)
        soak += "\n" + pools
    with open(args.output, "w") as out:
        out.write(report + soak)
    return 0


if __name__ == "__main__":
    sys.exit(main())
