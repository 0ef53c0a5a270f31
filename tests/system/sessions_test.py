"""Front-end sessions against the real binary, with jamctl speaking for the
front ends: a restart (kill -9) and the resync that follows, a front end
that dies, two front ends sharing a jam, a user who reconnects elsewhere,
and a front end paused past its lease. Times are measured and printed;
only generous bounds are asserted."""

import json
import time
import unittest

import harness
from harness import describe, json_lines

MAX_USERS = 7


class SessionsTest(unittest.TestCase):

    def start(self, *flags):
        """A server; without the resync window unless `flags` ask for it
        (every start opens one, and most tests are not about it)."""
        if not any(flag.startswith("--resync_grace") for flag in flags):
            flags = ("--resync_grace=0s", *flags)
        return harness.start_server(self, f"--max_users={MAX_USERS}", *flags)

    def call(self, server, frontend, *args):
        """jamctl as `frontend` ("" for anonymous); the CompletedProcess."""
        flags = [f"--frontend={frontend}"] if frontend else []
        return harness.jamctl(server.target, *flags, *args)

    def ok(self, server, frontend, *args):
        result = self.call(server, frontend, *args)
        self.assertEqual(result.returncode, 0, describe(result))
        objects = json_lines(self, result)
        self.assertEqual(len(objects), 1, objects)
        return objects[0]

    def fenced(self, server, frontend, *args):
        result = self.call(server, frontend, *args)
        self.assertEqual(result.returncode, 1, describe(result))
        self.assertIn("FAILED_PRECONDITION", result.stderr)
        self.assertIn(f"front end {frontend}", result.stderr)

    def jams(self, server):
        """{jam id: sorted members} of every jam with members."""
        listed = self.ok(server, "", "list", "--page_size=1000")
        return {
            jam["jamId"]: sorted(jam.get("userIds", []))
            for jam in listed.get("jams", []) if jam.get("userIds")
        }

    def wait_until(self, predicate, timeout_s):
        """Polls every 50 ms; returns the seconds it took, or fails."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if predicate():
                return time.monotonic() - start
            time.sleep(0.05)
        self.fail(f"not within {timeout_s} s")

    def test_restart_fences_the_front_ends_until_they_resync(self):
        server = self.start("--resync_grace=3s")
        truth = {"jx": ["a1", "a2", "a3", "a4", "a5"]}
        self.ok(server, "A", "sync", "jx=" + ",".join(truth["jx"]))
        port = server.port
        server.kill()  # SIGKILL: nothing is saved.
        server.wait_for_exit()
        restarted_at = time.monotonic()
        server = self.start(f"--listen=127.0.0.1:{port}", "--resync_grace=3s")
        # The front end learns of the restart at its next call ...
        self.fenced(server, "A", "add-user", "jx", "late")
        # ... and resyncs its truth, then retries. During the resync window
        # the jam it resupplied takes no newcomer, not even from it: the
        # newcomer gets a seat in a fresh jam instead.
        self.ok(server, "A", "sync", "jx=" + ",".join(truth["jx"]))
        resynced_s = time.monotonic() - restarted_at
        self.assertEqual(self.jams(server), {"jx": sorted(truth["jx"])})
        retried = self.ok(server, "A", "add-user", "jx", "late")
        self.assertFalse(retried["added"])
        fresh = retried["redirectJamId"]
        self.assertRegex(fresh, harness.UUID_V4)
        self.assertTrue(self.ok(server, "A", "add-user", fresh, "late")["added"])
        # Another front end's arrivals never go into the resupplied jam
        # while the window lasts: jx holds 6 of 7 users in truth.
        self.ok(server, "B", "sync")
        for n in range(7):
            answer = self.ok(server, "B", "current-jam", f"n{n}")
            self.assertNotEqual(answer["jamId"], "jx")
            self.assertTrue(
                self.ok(server, "B", "add-user", answer["jamId"],
                        f"n{n}")["added"])
        refused = self.ok(server, "B", "add-user", "jx", "pushy")
        self.assertFalse(refused["added"])
        self.assertRegex(refused["redirectJamId"], harness.UUID_V4)
        for members in self.jams(server).values():
            self.assertLessEqual(len(members), MAX_USERS)
        print(f"restart: consistent with the front end's truth "
              f"{resynced_s:.2f} s after the restart began")

    def test_a_dead_front_ends_users_go_within_its_lease(self):
        server = self.start()
        self.ok(server, "dead", "sync", "--lease=1s", "j=d1,d2,d3")
        self.ok(server, "alive", "sync", "--lease=60s", "j=e1")
        started = time.monotonic()
        took = self.wait_until(lambda: self.jams(server) == {"j": ["e1"]},
                               timeout_s=10)
        print(f"dead front end: users gone {took:.2f} s after its last "
              f"call (lease 1 s)")
        self.assertLess(time.monotonic() - started, 1 + 1 + 3)
        sessions = self.ok(server, "", "sessions")["sessions"]
        self.assertEqual([s["frontendId"] for s in sessions], ["alive"])

    def test_two_front_ends_share_a_jam(self):
        server = self.start()
        self.ok(server, "A", "sync")
        self.ok(server, "B", "sync")
        self.ok(server, "A", "refresh", "j", "a1", "a2")
        self.ok(server, "B", "refresh", "j", "b1")
        self.ok(server, "A", "refresh", "j", "a2")
        self.assertEqual(self.jams(server), {"j": ["a2", "b1"]})
        self.ok(server, "B", "refresh", "j")
        self.assertEqual(self.jams(server), {"j": ["a2"]})

    def test_a_late_remove_user_of_the_old_front_end_removes_nothing(self):
        server = self.start()
        self.ok(server, "A", "sync")
        self.ok(server, "B", "sync")
        self.assertTrue(self.ok(server, "A", "add-user", "j", "u")["added"])
        self.assertTrue(self.ok(server, "B", "add-user", "j", "u")["added"])
        self.assertFalse(
            self.ok(server, "A", "remove-user", "j", "u")["removed"])
        self.assertEqual(self.jams(server), {"j": ["u"]})

    def test_a_paused_front_end_resyncs_without_double_counting(self):
        server = self.start()
        self.ok(server, "P", "sync", "--lease=1s", "j=p1,p2", "k=p3")
        time.sleep(2)  # Paused past its lease: no keepalive.
        self.fenced(server, "P", "refresh", "j", "p1", "p2", "p4")
        self.fenced(server, "P", "keepalive")
        synced = self.ok(server, "P", "sync", "--lease=60s", "j=p1,p2,p4",
                         "k=p3")
        self.assertEqual((synced["jamCount"], synced["userCount"]),
                         ("2", "4"))
        self.assertEqual(self.jams(server), {
            "j": ["p1", "p2", "p4"],
            "k": ["p3"]
        })
        self.assertEqual(self.ok(server, "", "stats")["userCount"], "4")


if __name__ == "__main__":
    harness.main()
