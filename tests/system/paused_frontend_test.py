"""Front ends that stop answering, with real processes: frontend-simulator
processes (tests/e2e/frontend_simulator.cc) built on the C++ client
library's FrontEndSession, against the real balancer.

1. A front end paused (SIGSTOP) past its lease, then resumed (SIGCONT):
   while it is stopped its users are removed and its session is gone; once
   resumed, its next KeepAlive fails FAILED_PRECONDITION inside
   FrontEndSession, which resyncs, and the balancer then holds exactly the
   front end's truth again.
2. What expiring a large front end (100,000 users) costs the others: while
   its users are removed, another front end keeps making calls; the test
   prints that front end's call latencies during the removal and the
   balancer's longest strand step (from /metrics).

Times are measured and printed; only generous bounds are asserted. Every
process is killed by its PID in cleanup (harness.Background, harness's
server).

Needs --simulator PATH besides the harness's flags.
"""

import collections
import datetime
import json
import os
import re
import signal
import tempfile
import time
import unittest
import urllib.request

import harness
from harness import describe, json_lines


MAX_USERS = 7
# Test 1: the paused front end.
PAUSED_USERS = 20
PAUSE_S = 2.5  # Past its 1 s lease.
# Test 2: the large front end and the other one.
BIG_USERS = 100_000
# Bounds of the waits.
PLACED_TIMEOUT_S = 30
GONE_TIMEOUT_S = 10
RESYNC_TIMEOUT_S = 10

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_EXPIRED_LINE = re.compile(
    r"^(\S+Z) INFO front-end lease expired.*\bfrontend_id=(\S+)")


def read_report(path):
    """The simulator's report, or None before its first one (it is written
    to a temporary file and renamed, so never read half-written)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def scrape(server):
    """[(name, {label: value}, value)] of the server's /metrics."""
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode("utf-8")
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            samples.append((match.group(1),
                            dict(_LABEL.findall(match.group(2) or "")),
                            float(match.group(3))))
    return samples


def metric(samples, name, **labels):
    """The sum of the samples named `name` whose labels include `labels`."""
    return sum(value for n, l, value in samples
               if n == name and all(l.get(k) == v for k, v in labels.items()))


def buckets(samples, name):
    """{upper bound in s: cumulative count} of histogram `name`, summed over
    its series."""
    counts = collections.Counter()
    for n, labels, value in samples:
        if n == f"{name}_bucket":
            counts[float(labels["le"])] += value
    return counts


def longest_bucket(before, after):
    """(upper bound of the slowest bucket that gained observations between
    two readings of a histogram, how many observations it gained in all)."""
    bounds = sorted(after)
    gained = [after[b] - before.get(b, 0) for b in bounds]
    slowest = None
    for i, bound in enumerate(bounds):
        if gained[i] > (gained[i - 1] if i else 0):
            slowest = bound
    return slowest, (gained[-1] if gained else 0)


def log_time_us(stamp):
    """Unix microseconds of a log line's time stamp (ms precision)."""
    t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1e6)


def percentile(sorted_values, percent):
    """Nearest rank, as the simulator's report."""
    if not sorted_values:
        return 0
    rank = max(1, -(-len(sorted_values) * percent // 100))
    return sorted_values[rank - 1]


def now_us():
    return int(time.time() * 1e6)


def least_present(history, start_us, end_us):
    """The fewest users a simulator's truth (its report's history of
    stays) held at any time in [start_us, end_us]."""
    present = sum(1 for _jam, _user, joined, left in history
                  if joined <= start_us and (left < 0 or left > start_us))
    least = present
    changes = sorted([(joined, 1) for _j, _u, joined, _l in history
                      if start_us < joined <= end_us] +
                     [(left, -1) for _j, _u, _joined, left in history
                      if start_us < left <= end_us])
    for _t, delta in changes:
        present += delta
        least = min(least, present)
    return least


class PausedFrontendTest(unittest.TestCase):

    def setUp(self):
        workdir = tempfile.TemporaryDirectory(prefix="paused_frontend_")
        self.addCleanup(workdir.cleanup)
        self.workdir = workdir.name
        self.server = harness.start_server(self, f"--max_users={MAX_USERS}",
                                           "--resync_grace=0s")
        self.assertTrue(self.server.metrics_port, self.server.start_line)

    def simulator(self, frontend_id, *flags):
        """A simulator process for `frontend_id` (its kill, by PID, is
        registered with the test) and the path of its report."""
        path = os.path.join(self.workdir, f"{frontend_id}.json")
        process = harness.Background(self, [
            harness.BINARIES["simulator"], f"--target={self.server.target}",
            f"--frontend_id={frontend_id}", f"--max_users={MAX_USERS}",
            "--seconds=100", "--hold=100s", f"--report={path}", *flags
        ])
        return process, path

    def wait_for(self, what, predicate, timeout_s, poll_s=0.02,
                 alive=()):
        """Polls `predicate` until it holds; returns the seconds it took.
        Fails after `timeout_s`, or if a process in `alive` ended."""
        start = time.monotonic()
        while not predicate():
            for process in alive:
                self.assertIsNone(process.process.poll(),
                                  f"a simulator ended: {process.describe()}")
            self.assertLess(time.monotonic() - start, timeout_s,
                            f"{what}: not within {timeout_s} s")
            time.sleep(poll_s)
        return time.monotonic() - start

    def ok(self, *args):
        result = harness.jamctl(self.server.target, *args)
        self.assertEqual(result.returncode, 0, describe(result))
        return json_lines(self, result)

    def listed(self):
        """[(jam, user)] of every member of every jam, all pages."""
        return [(jam["jamId"], user)
                for page in self.ok("list", "--all", "--page_size=1000")
                for jam in page.get("jams", [])
                for user in jam.get("userIds", [])]

    def sessions(self):
        return [s["frontendId"]
                for s in self.ok("sessions")[0].get("sessions", [])]

    def user_count(self):
        return int(self.ok("stats")[0].get("userCount", "0"))

    def test_paused_front_end_is_expired_then_resyncs_its_truth(self):
        fe = "fe-paused"
        paused, path = self.simulator(fe, "--lease=1s",
                                      f"--users={PAUSED_USERS}",
                                      "--pace=20ms", "--remove_every=4")
        self.wait_for("arrivals placed",
                      lambda: (read_report(path) or {}).get("done"),
                      PLACED_TIMEOUT_S, alive=[paused])
        report = read_report(path)
        truth = sorted((jam, user) for jam, users in report["jams"].items()
                       for user in users)
        self.assertTrue(truth, report)
        self.wait_for("balancer holds the truth",
                      lambda: sorted(self.listed()) == truth, 10, 0.05)
        syncs_before = report["syncs"]
        truths_before = len(report["truth_calls_unix_ms"])
        fenced_before = metric(scrape(self.server),
                               "grpc_server_handled_total",
                               grpc_method="KeepAlive",
                               grpc_code="FailedPrecondition")

        os.kill(paused.process.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        gone_s = self.wait_for(
            "paused front end's users and session removed",
            lambda: (fe not in self.sessions() and self.user_count() == 0
                     and not self.listed()), GONE_TIMEOUT_S, 0.05)
        time.sleep(max(0.0, stopped_at + PAUSE_S - time.monotonic()))
        stopped_s = time.monotonic() - stopped_at
        os.kill(paused.process.pid, signal.SIGCONT)
        resumed_us = now_us()

        def resynced():
            latest = read_report(path)
            return (latest["written_unix_us"] > resumed_us and
                    latest["syncs"] > syncs_before and
                    sorted(self.listed()) == truth)

        resync_s = self.wait_for("truth resynced after SIGCONT", resynced,
                                 RESYNC_TIMEOUT_S, 0.05, alive=[paused])
        report = read_report(path)
        listed = self.listed()
        self.assertEqual(sorted(listed), truth)
        users = [user for _jam, user in listed]
        self.assertEqual(len(users), len(set(users)), "a user counted twice")
        self.assertEqual(self.user_count(), len(truth))
        self.assertIn(fe, self.sessions())
        self.assertGreaterEqual(report["syncs"], 2)
        self.assertEqual(report["errors"], 0, report["last_error"])
        self.assertEqual(report["gave_up"], 0)
        self.assertEqual(report["violations"], 0)
        # Resumed, it learned of the lost lease from its KeepAlive.
        fenced = metric(scrape(self.server), "grpc_server_handled_total",
                        grpc_method="KeepAlive",
                        grpc_code="FailedPrecondition") - fenced_before
        self.assertGreaterEqual(fenced, 1)
        # The truth was asked for the resync (unix ms, truncated).
        truth_calls = report["truth_calls_unix_ms"][truths_before:]
        self.assertTrue(truth_calls, report)
        truth_after_ms = truth_calls[0] - resumed_us // 1000
        print(f"\npaused front end: {len(truth)} users; stopped "
              f"{stopped_s:.2f} s with a 1 s lease; its users and session "
              f"gone {gone_s:.2f} s after SIGSTOP; after SIGCONT "
              f"{int(fenced)} KeepAlive fenced, truth asked for the "
              f"resync {truth_after_ms} ms after (ms clock), balancer "
              f"equal to the truth {resync_s:.2f} s after (poll 50 ms); syncs "
              f"{syncs_before} -> {report['syncs']}")

    def test_expiring_a_large_front_end_while_another_calls(self):
        started = time.monotonic()
        big, big_path = self.simulator("fe-big", "--lease=1s",
                                       f"--initial_users={BIG_USERS}",
                                       "--users=0", "--deadline=20s")
        self.wait_for("large front end synced",
                      lambda: (read_report(big_path) or {}).get("done"),
                      PLACED_TIMEOUT_S, 0.05, alive=[big])
        self.wait_for("large front end's users placed",
                      lambda: self.user_count() == BIG_USERS, 10, 0.05)
        synced_s = time.monotonic() - started

        other, other_path = self.simulator("fe-other", "--lease=3s",
                                           "--users=5000", "--pace=2ms",
                                           "--remove_every=4")
        self.wait_for("other front end calling",
                      lambda: (read_report(other_path) or {}).get(
                          "arrivals", 0) >= 20, 10, alive=[other])

        before = scrape(self.server)
        big.kill()  # SIGKILL by PID: its lease runs out.
        killed_us = now_us()

        # When are the large front end's users all gone? (/metrics'
        # jam_balancer_users_removed_by_expiry_total would tell, but it
        # reads 0: MetricsCollector::ReadPool never fills the sessions.)
        # Each scrape reads jam_balancer_users, the members of both front
        # ends, at some time in [sent, answered]. The balancer holds every
        # user of the other front end's truth (a stay starts once AddUser
        # answered, and ends before RemoveUser is sent), so a scrape that
        # counts no more members than the truth's least in [sent, answered]
        # proves the large front end has none left. Checked with the other
        # front end's report once it covers the scrape.
        scrapes = []  # (sent_us, answered_us, members)
        found = []

        def gone():
            sent = now_us()
            members = metric(scrape(self.server), "jam_balancer_users")
            scrapes.append((sent, now_us(), members))
            report = read_report(other_path)
            while scrapes and not found:
                sent, answered, members = scrapes[0]
                if report["written_unix_us"] <= answered:
                    break
                if members <= least_present(report["history"], sent,
                                            answered):
                    found.append(answered)
                scrapes.pop(0)
            return bool(found)

        self.wait_for("large front end's users removed", gone,
                      GONE_TIMEOUT_S, 0.01, alive=[other])
        gone_us = found[0]
        gone_s = (gone_us - killed_us) / 1e6
        after = scrape(self.server)

        def expired():
            return [
                log_time_us(m.group(1))
                for m in map(_EXPIRED_LINE.match, self.server.lines())
                if m and m.group(2) == "fe-big"
            ]

        self.wait_for("large front end's expiry logged", expired, 5)
        self.assertEqual(len(expired()), 1, self.server.stderr())
        expired_us = expired()[0]

        # The other front end's calls during the removal: those in flight
        # at some time between the expiry (log time, ms) and the poll that
        # saw every user removed (10 ms polls).
        self.wait_for("other front end's report after the removal",
                      lambda: read_report(other_path)["written_unix_us"] >
                      gone_us + 100_000, 5, alive=[other])
        report = read_report(other_path)
        self.assertFalse(report["done"], "raise the other front end's load")
        during = sorted(latency for sent, latency in report["calls"]
                        if sent <= gone_us and
                        sent + latency >= expired_us - 1000)
        self.assertTrue(during, "no call of the other front end during the "
                        "removal")
        self.assertEqual(report["errors"], 0, report["last_error"])
        self.assertEqual(report["gave_up"], 0)
        self.assertEqual(report["retries"], 0)
        self.assertEqual(report["violations"], 0)
        # None of the large front end's users is left.
        self.assertEqual(
            [(jam, user) for jam, user in self.listed()
             if user.startswith("fe-big-")], [])

        run_bucket, steps = longest_bucket(
            buckets(before, "jam_balancer_strand_run_seconds"),
            buckets(after, "jam_balancer_strand_run_seconds"))
        wait_bucket, _ = longest_bucket(
            buckets(before, "jam_balancer_strand_wait_seconds"),
            buckets(after, "jam_balancer_strand_wait_seconds"))
        latency = report["latency"]
        print(f"\nlarge front end: {BIG_USERS} users synced and placed "
              f"{synced_s:.2f} s after its start; killed; lease expired "
              f"{(expired_us - killed_us) / 1e6:.3f} s after (log, ms); all "
              f"its users removed {(gone_us - expired_us) / 1e6:.3f} s after "
              f"the expiry, {gone_s:.2f} s after the kill (poll 10 ms)")
        print(f"other front end during the removal: {len(during)} calls, "
              f"p50 {percentile(during, 50) / 1e3:.3f} ms, p99 "
              f"{percentile(during, 99) / 1e3:.3f} ms, max "
              f"{during[-1] / 1e3:.3f} ms; over all its {latency['count']} "
              f"calls p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} "
              f"ms, max {latency['max_ms']} ms")
        print(f"balancer strand from before the kill to the end of the "
              f"removal: {int(steps)} steps, longest step <= {run_bucket} s, "
              f"longest wait <= {wait_bucket} s (histogram buckets)")


if __name__ == "__main__":
    harness.main(extra_binaries=("simulator",))
