"""A balancer restart (kill -9) under load from three front ends, each a
frontend-simulator process (tests/e2e/frontend_simulator.cc) built on the
C++ client library's FrontEndSession and holding its own truth of which
user is in which jam.

Checks that after the restart the balancer comes to hold exactly the union
of the front ends' truths (and prints how long after the restart), and that
no jam's real occupancy (the users the front ends' truths place in it) ever
exceeds max_users: sampled every 100 ms during the run, and over the whole
history of stays at the end. Times are measured and printed; only generous
bounds are asserted.

Needs --simulator PATH besides the harness's flags.
"""

import collections
import json
import os
import tempfile
import threading
import time
import unittest

import harness
from harness import json_lines


MAX_USERS = 7
FRONT_ENDS = ("fe-a", "fe-b", "fe-c")
USERS_PER_FRONT_END = 50
# The load lasts about USERS_PER_FRONT_END * PACE plus the calls; the
# restart comes at RESTART_AFTER_S, well inside it.
PACE = "40ms"
RESTART_AFTER_S = 1.0
# Bounds of the waits.
FINISH_TIMEOUT_S = 60
CONSISTENT_TIMEOUT_S = 20
RESTART_ATTEMPTS = 20


def read_reports(paths):
    """{path: report} of the reports written so far."""
    reports = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                reports[path] = json.load(f)
        except FileNotFoundError:
            pass
    return reports


def occupancy_at(reports, t_us):
    """{jam: users the truths place there at t_us}, from the stays."""
    counts = collections.Counter()
    for report in reports:
        for jam, _user, joined, left in report["history"]:
            if joined <= t_us and (left < 0 or left > t_us):
                counts[jam] += 1
    return counts


def peak_occupancy(reports):
    """{jam: the most users the truths ever placed there at once}."""
    events = collections.defaultdict(list)
    for report in reports:
        for jam, _user, joined, left in report["history"]:
            events[jam].append((joined, 1))
            if left >= 0:
                events[jam].append((left, -1))
    peaks = {}
    for jam, changes in events.items():
        now = peak = 0
        for _t, delta in sorted(changes):  # Leaves first at equal times.
            now += delta
            peak = max(peak, now)
        peaks[jam] = peak
    return peaks


def union_of_truths(reports):
    """{jam: sorted users} over all front ends' present users."""
    jams = collections.defaultdict(list)
    for report in reports:
        for jam, users in report["jams"].items():
            jams[jam].extend(users)
    return {jam: sorted(users) for jam, users in jams.items() if users}


class Sampler:
    """Reads the reports every 100 ms and records the occupancy of every jam
    at the latest moment all of them describe (a finished front end's
    report describes every later moment too)."""

    def __init__(self, paths):
        self.paths = paths
        self.samples = 0
        self.peak = collections.Counter()
        self.overfilled = []  # (unix us, jam, users)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.1):
            self.sample()

    def sample(self):
        reports = list(read_reports(self.paths).values())
        if len(reports) < len(self.paths):
            return
        running = [r["written_unix_us"] for r in reports if not r["done"]]
        t_us = (min(running) if running else
                max(r["written_unix_us"] for r in reports))
        self.samples += 1
        for jam, users in occupancy_at(reports, t_us).items():
            self.peak[jam] = max(self.peak[jam], users)
            if users > MAX_USERS:
                self.overfilled.append((t_us, jam, users))

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)


class RestartUnderLoadTest(unittest.TestCase):

    def start_server(self, *flags):
        return harness.launch_server(self, f"--max_users={MAX_USERS}",
                                     "--resync_grace=5s", *flags)

    def listed_jams(self, server):
        """{jam: sorted members} of every jam with members, all pages."""
        pages = json_lines(
            self, harness.jamctl(server.target, "list", "--all",
                                 "--page_size=100"))
        return {
            jam["jamId"]: sorted(jam["userIds"])
            for page in pages for jam in page.get("jams", [])
            if jam.get("userIds")
        }

    def test_front_ends_resync_their_truth_and_no_jam_overfills(self):
        workdir = tempfile.TemporaryDirectory(prefix="restart_under_load_")
        self.addCleanup(workdir.cleanup)
        server = self.start_server()
        server.wait_for_port()
        port = server.port

        paths = [os.path.join(workdir.name, f"{fe}.json") for fe in FRONT_ENDS]
        simulators = []
        for seed, (fe, path) in enumerate(zip(FRONT_ENDS, paths), start=1):
            # Background registers the kill (by the process's PID) with the
            # test. --hold keeps each front end's users connected after its
            # arrivals, until the test kills it.
            simulators.append(
                harness.Background(self, [
                    harness.BINARIES["simulator"], f"--target=127.0.0.1:{port}",
                    f"--frontend_id={fe}", "--lease=3s",
                    f"--users={USERS_PER_FRONT_END}",
                    f"--max_users={MAX_USERS}", "--seconds=90",
                    f"--pace={PACE}", "--hold=90s", f"--seed={seed}",
                    f"--report={path}"
                ]))
        sampler = Sampler(paths)
        self.addCleanup(sampler.stop)

        time.sleep(RESTART_AFTER_S)
        before = read_reports(paths)
        self.assertEqual(len(before), len(paths),
                         "the simulators wrote no report within "
                         f"{RESTART_AFTER_S} s")
        self.assertTrue(all(not r["done"] for r in before.values()),
                        "the load ended before the restart; raise the load")
        server.kill()  # SIGKILL: the balancer forgets everything.
        restart_unix_us = int(time.time() * 1e6)
        restarted_at = time.monotonic()
        for _ in range(RESTART_ATTEMPTS):
            server = self.start_server(f"--listen=127.0.0.1:{port}")
            if server.wait_for_start() is not None:
                break
            time.sleep(0.1)  # The port may not be free yet.
        else:
            self.fail(f"could not listen on port {port} again:\n"
                      f"{server.stderr()}")
        up_s = time.monotonic() - restarted_at

        # Every front end places all its users (bounded).
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        while True:
            reports = read_reports(paths)
            if len(reports) == len(paths) and all(
                    r["done"] for r in reports.values()):
                break
            for sim in simulators:
                self.assertIsNone(sim.process.poll(),
                                  f"a simulator ended early: "
                                  f"{sim.describe()}")
            self.assertLess(time.monotonic(), deadline,
                            f"simulators not done within "
                            f"{FINISH_TIMEOUT_S} s")
            time.sleep(0.1)
        finished_s = time.monotonic() - restarted_at
        reports = [reports[path] for path in paths]

        # (1) The balancer holds exactly the union of the truths.
        truth = union_of_truths(reports)
        deadline = time.monotonic() + CONSISTENT_TIMEOUT_S
        while True:
            listed = self.listed_jams(server)
            if listed == truth:
                break
            if time.monotonic() > deadline:
                self.assertEqual(listed, truth)
            time.sleep(0.05)
        consistent_s = time.monotonic() - restarted_at
        sampler.stop()
        sampler.sample()  # And once more at the end.

        for report in reports:
            with self.subTest(frontend=report["frontend_id"]):
                self.assertFalse(report["timed_out"])
                self.assertEqual(report["errors"], 0, report["last_error"])
                self.assertEqual(report["gave_up"], 0)
                self.assertEqual(report["violations"], 0)
                self.assertEqual(report["arrivals"], USERS_PER_FRONT_END)
                # Start's Sync, then at least one after the restart.
                self.assertGreaterEqual(report["syncs"], 2)

        # (2) No jam ever held more than MAX_USERS users in truth.
        self.assertEqual(sampler.overfilled, [])
        peaks = peak_occupancy(reports)
        overfilled = {j: n for j, n in peaks.items() if n > MAX_USERS}
        self.assertEqual(overfilled, {})

        resyncs = []
        for report in reports:
            after = [ms for ms in report["truth_calls_unix_ms"]
                     if ms * 1000 >= restart_unix_us]
            resyncs.append(f"{report['frontend_id']} "
                           f"{(after[0] * 1000 - restart_unix_us) / 1e6:.2f}"
                           if after else f"{report['frontend_id']} -")
        users = sum(len(u) for u in truth.values())
        print(f"\nrestart under load: balancer listening again "
              f"{up_s:.2f} s after the kill; first resync per front end "
              f"(s after the kill): {', '.join(resyncs)}; all arrivals "
              f"placed {finished_s:.2f} s after; ListJams equal to the "
              f"union of the truths ({len(truth)} jams, {users} users) "
              f"{consistent_s:.2f} s after")
        print(f"occupancy: {sampler.samples} samples, peak sampled "
              f"{max(sampler.peak.values(), default=0)}, peak over all "
              f"stays {max(peaks.values(), default=0)} (max {MAX_USERS}); "
              f"redirects {sum(r['redirects'] for r in reports)}, "
              f"retries {sum(r['retries'] for r in reports)}, "
              f"leaves {sum(r['removed'] for r in reports)}")


if __name__ == "__main__":
    harness.main(extra_binaries=("simulator",))
