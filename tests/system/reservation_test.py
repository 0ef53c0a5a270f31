"""Seat reservations through jamctl: CurrentJam with a user id reserves a
seat, later arrivals are packed beside it, AddUser turns it into membership,
and an unused one lapses on its own."""

import sys

sys.dont_write_bytecode = True  # Keep __pycache__ out of the source tree.

import time
import unittest

import harness
from harness import json_lines

# The server's default --reservation_ttl.
DEFAULT_TTL_MS = 15_000
# Slack when comparing the server's expiry time with this process's clock
# (same machine, but jamctl start-up and scheduling take time).
CLOCK_SLACK_MS = 2_000
# How long to poll for a short reservation to lapse, and how often.
EXPIRY_POLL_TIMEOUT_S = 5
EXPIRY_POLL_INTERVAL_S = 0.05


def now_ms():
    return int(time.time() * 1000)


class ReservationTest(unittest.TestCase):

    def start(self, *flags):
        self.server = harness.start_server(self, *flags)

    def jamctl(self, *args):
        return harness.jamctl(self.server.target, *args)

    def one_json(self, *args):
        """Runs jamctl; asserts it printed exactly one JSON object."""
        objects = json_lines(self, self.jamctl(*args))
        self.assertEqual(len(objects), 1, objects)
        return objects[0]

    def reserve(self, user, *flags):
        """current-jam USER; returns the response and the local time window
        (ms) in which the server handled it."""
        before = now_ms()
        response = self.one_json("current-jam", *flags, user)
        return response, (before, now_ms())

    def assert_expires_in(self, response, window, ttl_ms):
        # uint64 fields are JSON strings in protobuf's JSON mapping.
        expires = int(response["reservationExpiresUnixMs"])
        self.assertGreaterEqual(expires, window[0] + ttl_ms - CLOCK_SLACK_MS,
                                response)
        self.assertLessEqual(expires, window[1] + ttl_ms + CLOCK_SLACK_MS,
                             response)

    def stats(self):
        return self.one_json("stats")

    def test_reservations_pack_into_one_jam(self):
        self.start()
        first, window = self.reserve("u1")
        self.assertRegex(first["jamId"], harness.UUID_V4)
        self.assertIs(first["newJam"], True)
        self.assertEqual(first["userCount"], 0)
        self.assert_expires_in(first, window, DEFAULT_TTL_MS)

        second, window = self.reserve("u2")
        self.assertEqual(second["jamId"], first["jamId"])
        self.assertIs(second["newJam"], False)
        self.assertEqual(second["userCount"], 0)
        self.assert_expires_in(second, window, DEFAULT_TTL_MS)

        self.assertEqual(
            self.stats(), {
                "jamCount": "1",
                "userCount": "0",
                "maxUsers": 7,
                "fullJamCount": "0",
                "reservationCount": "2",
                "sessionCount": "0"
            })
        self.assertEqual(
            self.one_json("list"), {
                "jams": [{
                    "jamId": first["jamId"],
                    "userIds": [],
                    "reservedCount": 2
                }],
                "nextPageToken": ""
            })
        # Without a user id, current-jam answers the same jam and reserves
        # nothing.
        self.assertEqual(
            self.one_json("current-jam"), {
                "jamId": first["jamId"],
                "userCount": 0,
                "newJam": False,
                "reservationExpiresUnixMs": "0"
            })
        self.assertEqual(self.stats()["reservationCount"], "2")

    def test_asking_again_renews_the_one_reservation(self):
        self.start()
        first, _ = self.reserve("u1")
        again, window = self.reserve("u1")
        self.assertEqual(again["jamId"], first["jamId"])
        self.assert_expires_in(again, window, DEFAULT_TTL_MS)
        self.assertEqual(self.stats()["reservationCount"], "1")

    def test_add_user_consumes_the_reservation(self):
        self.start()
        reserved, _ = self.reserve("u1")
        jam = reserved["jamId"]
        self.assertEqual(self.one_json("add-user", jam, "u1"), {
            "added": True,
            "userCount": 1,
            "redirectJamId": ""
        })
        self.assertEqual(
            self.stats(), {
                "jamCount": "1",
                "userCount": "1",
                "maxUsers": 7,
                "fullJamCount": "0",
                "reservationCount": "0",
                "sessionCount": "0"
            })
        self.assertEqual(
            self.one_json("list")["jams"], [{
                "jamId": jam,
                "userIds": ["u1"],
                "reservedCount": 0
            }])
        # A member asking again keeps its seat: nothing is reserved.
        self.assertEqual(
            self.one_json("current-jam", "u1"), {
                "jamId": jam,
                "userCount": 1,
                "newJam": False,
                "reservationExpiresUnixMs": "0"
            })
        self.assertEqual(self.stats()["reservationCount"], "0")

    def test_remove_user_releases_the_reservation(self):
        self.start()
        jam = self.reserve("u1")[0]["jamId"]
        self.assertEqual(self.one_json("remove-user", jam, "u1"), {
            "removed": True,
            "userCount": 0
        })
        self.assertEqual(self.stats()["reservationCount"], "0")
        self.assertEqual(self.stats()["jamCount"], "0")

    def test_reserved_seats_are_kept_from_others(self):
        self.start("--max_users=2")
        jam = self.reserve("u1")[0]["jamId"]
        self.assertEqual(self.reserve("u2")[0]["jamId"], jam)
        # Two seats reserved, no members: full for anyone else.
        self.assertEqual(
            self.one_json("has-capacity", jam), {
                "hasCapacity": False,
                "userCount": 0,
                "maxUsers": 2
            })
        self.assertIs(
            self.one_json("has-capacity", jam, "u3")["hasCapacity"], False)
        turned_away = self.one_json("add-user", jam, "u3")
        self.assertIs(turned_away["added"], False)
        self.assertRegex(turned_away["redirectJamId"], harness.UUID_V4)
        self.assertNotEqual(turned_away["redirectJamId"], jam)
        # But not for the holders.
        self.assertEqual(
            self.one_json("has-capacity", jam, "u1"), {
                "hasCapacity": True,
                "userCount": 0,
                "maxUsers": 2
            })
        self.assertEqual(
            self.one_json("add-user", jam, "u1")["userCount"], 1)
        self.assertEqual(
            self.one_json("add-user", jam, "u2")["userCount"], 2)
        self.assertEqual(
            self.stats(), {
                "jamCount": "1",
                "userCount": "2",
                "maxUsers": 2,
                "fullJamCount": "1",
                "reservationCount": "0",
                "sessionCount": "0"
            })

    def test_short_reservation_lapses_on_its_own(self):
        self.start()
        reserved, window = self.reserve("u1", "--ttl=300ms")
        self.assert_expires_in(reserved, window, 300)
        expires = int(reserved["reservationExpiresUnixMs"])
        # Only stats from here on: nothing else touches the reservation.
        deadline = time.monotonic() + EXPIRY_POLL_TIMEOUT_S
        while True:
            stats = self.stats()
            seen_at = now_ms()
            if stats["reservationCount"] == "0" and stats["jamCount"] == "0":
                break
            self.assertLess(
                time.monotonic(), deadline,
                f"reservation still held {EXPIRY_POLL_TIMEOUT_S}s later: "
                f"{stats}")
            time.sleep(EXPIRY_POLL_INTERVAL_S)
        # Not before its time (this clock may lag the server's a little).
        self.assertGreaterEqual(seen_at, expires - CLOCK_SLACK_MS)
        self.assertEqual(self.one_json("list")["jams"], [])

    def test_long_ttl_is_capped_by_the_server(self):
        self.start("--reservation_ttl=1s", "--max_reservation_ttl=3s")
        reserved, window = self.reserve("u1", "--ttl=1h")
        self.assert_expires_in(reserved, window, 3_000)

    def test_server_reservation_ttl_is_the_default(self):
        self.start("--reservation_ttl=40s")
        reserved, window = self.reserve("u1")
        self.assert_expires_in(reserved, window, 40_000)

    def test_bad_user_exits_1_naming_the_field(self):
        self.start()
        cases = [
            (["current-jam", "x" * 129], "jamctl: current-jam failed: "
             "INVALID_ARGUMENT: user_id"),
            (["current-jam", "bad\x01"], "INVALID_ARGUMENT: user_id"),
            (["has-capacity", "j", "x" * 129],
             "jamctl: has-capacity failed: INVALID_ARGUMENT: user_id"),
        ]
        harness.assert_calls_fail(self, self.jamctl, cases)
        self.assertEqual(self.stats()["reservationCount"], "0")


if __name__ == "__main__":
    harness.main()
