"""jamctl against a real server: what each command prints, and how it exits
on bad requests, wrong usage and an unreachable server."""

import sys

sys.dont_write_bytecode = True  # Keep __pycache__ out of the source tree.

import json
import signal
import socket
import subprocess
import time
import unittest

import harness
from exposition import Exposition, scrape
from harness import describe, json_lines


class JamctlCase(unittest.TestCase):
    """jamctl against self.server, which setUp starts."""

    def jamctl(self, *args, **kwargs):
        return harness.jamctl(self.server.target, *args, **kwargs)

    def one_json(self, *args):
        """Runs jamctl; asserts it printed exactly one JSON object."""
        objects = json_lines(self, self.jamctl(*args))
        self.assertEqual(len(objects), 1, objects)
        return objects[0]


class JamctlTest(JamctlCase):

    def setUp(self):
        self.server = harness.start_server(self, "--max_users=2")

    def assert_usage_error(self, result, message):
        self.assertEqual(result.returncode, 2, describe(result))
        self.assertEqual(result.stdout, "")
        self.assertIn(message, result.stderr)
        self.assertIn("Usage: jamctl", result.stderr)

    def test_current_jam_on_an_empty_server_is_new(self):
        response = self.one_json("current-jam")
        self.assertIs(response["newJam"], True)
        self.assertEqual(response["userCount"], 0)
        self.assertRegex(response["jamId"], harness.UUID_V4)
        # Without a user nothing is reserved, and the fresh id is not stored.
        self.assertEqual(response["reservationExpiresUnixMs"], "0")
        self.assertEqual(self.one_json("stats")["jamCount"], "0")

    def test_add_user_fills_a_jam_and_redirects(self):
        self.assertEqual(self.one_json("add-user", "jam-a", "ann"), {
            "added": True,
            "userCount": 1,
            "redirectJamId": ""
        })
        self.assertEqual(
            self.one_json("current-jam"), {
                "jamId": "jam-a",
                "userCount": 1,
                "newJam": False,
                "reservationExpiresUnixMs": "0"
            })
        self.assertEqual(
            self.one_json("add-user", "jam-a", "bob")["userCount"], 2)
        turned_away = self.one_json("add-user", "jam-a", "cat")
        self.assertIs(turned_away["added"], False)
        self.assertEqual(turned_away["userCount"], 2)
        self.assertRegex(turned_away["redirectJamId"], harness.UUID_V4)

    def test_add_user_then_list_shows_the_jam(self):
        self.one_json("add-user", "jam-b", "bob")
        self.one_json("add-user", "jam-a", "ann")
        self.assertEqual(
            self.one_json("list"), {
                "jams": [{
                    "jamId": "jam-a",
                    "userIds": ["ann"],
                    "reservedCount": 0
                }, {
                    "jamId": "jam-b",
                    "userIds": ["bob"],
                    "reservedCount": 0
                }],
                "nextPageToken": ""
            })

    def test_list_pages(self):
        for jam in ("j1", "j2", "j3"):
            self.one_json("add-user", jam, f"u-{jam}")
        first = self.one_json("list", "--page_size=2")
        self.assertEqual([jam["jamId"] for jam in first["jams"]],
                         ["j1", "j2"])
        self.assertNotEqual(first["nextPageToken"], "")
        second = self.one_json("list", "--page_size=2",
                               f"--page_token={first['nextPageToken']}")
        self.assertEqual(second, {
            "jams": [{
                "jamId": "j3",
                "userIds": ["u-j3"],
                "reservedCount": 0
            }],
            "nextPageToken": ""
        })
        pages = json_lines(self, self.jamctl("list", "--page_size=1",
                                             "--all"))
        self.assertEqual([[jam["jamId"] for jam in page["jams"]]
                          for page in pages], [["j1"], ["j2"], ["j3"]])
        self.assertEqual(pages[-1]["nextPageToken"], "")

    def test_list_of_no_jams(self):
        self.assertEqual(self.one_json("list"), {
            "jams": [],
            "nextPageToken": ""
        })

    def test_refresh_replaces_and_deletes(self):
        self.assertEqual(self.one_json("refresh", "jam-a", "x", "y", "z", "x"),
                         {"userCount": 3})
        self.assertEqual(
            self.one_json("has-capacity", "jam-a"), {
                "hasCapacity": False,
                "userCount": 3,
                "maxUsers": 2
            })
        self.assertEqual(self.one_json("refresh", "jam-a"), {"userCount": 0})
        self.assertEqual(
            self.one_json("has-capacity", "jam-a"), {
                "hasCapacity": True,
                "userCount": 0,
                "maxUsers": 2
            })

    def test_remove_user(self):
        self.one_json("refresh", "jam-a", "ann", "bob")
        self.assertEqual(self.one_json("remove-user", "jam-a", "ann"), {
            "removed": True,
            "userCount": 1
        })
        self.assertEqual(self.one_json("remove-user", "jam-a", "ann"), {
            "removed": False,
            "userCount": 1
        })

    def test_stats(self):
        self.one_json("refresh", "full", "a", "b")
        self.one_json("add-user", "half", "c")
        # uint64 fields are JSON strings in protobuf's JSON mapping.
        self.assertEqual(
            self.one_json("stats"), {
                "jamCount": "2",
                "userCount": "3",
                "maxUsers": 2,
                "fullJamCount": "1",
                "reservationCount": "0",
                "sessionCount": "0"
            })

    def test_batch_runs_json_operations_in_order(self):
        batch = ('{"operations":['
                 '{"addUser":{"jamId":"j","userId":"a"}},'
                 '{"addUser":{"jamId":"j","userId":"b"}},'
                 '{"hasCapacity":{"jamId":"j"}},'
                 '{"getStats":{}}]}')
        self.assertEqual(
            self.one_json("batch", batch), {
                "results": [
                    {"addUser": {"added": True, "userCount": 1,
                                 "redirectJamId": ""}},
                    {"addUser": {"added": True, "userCount": 2,
                                 "redirectJamId": ""}},
                    {"hasCapacity": {"hasCapacity": False, "userCount": 2,
                                     "maxUsers": 2}},
                    {"getStats": {"jamCount": "1", "userCount": "2",
                                  "maxUsers": 2, "fullJamCount": "1",
                                  "reservationCount": "0",
                                  "sessionCount": "0"}},
                ]
            })

    def test_batch_errors(self):
        self.assert_usage_error(self.jamctl("batch", "{not json"),
                                "JSON is not a jambalancer.v1.BatchRequest")
        result = self.jamctl("batch", '{"operations":[{"getStats":{}},{}]}')
        self.assertEqual(result.returncode, 1, describe(result))
        self.assertIn(
            "jamctl: batch failed: INVALID_ARGUMENT: operations[1] must set "
            "one operation", result.stderr)

    def test_ids_that_look_like_flags_after_double_dash(self):
        self.assertEqual(
            self.one_json("add-user", "--", "-jam", "--user")["added"], True)
        self.assertEqual(
            self.one_json("list")["jams"], [{
                "jamId": "-jam",
                "userIds": ["--user"],
                "reservedCount": 0
            }])

    def test_health(self):
        for args in ([], ["jambalancer.v1.JamBalancerService"]):
            result = self.jamctl("health", *args)
            self.assertEqual(json_lines(self, result), [{
                "status": "SERVING"
            }])

    def test_health_of_an_unknown_service_fails(self):
        result = self.jamctl("health", "no.such.Service")
        self.assertEqual(result.returncode, 1, describe(result))
        self.assertIn("jamctl: health failed: NOT_FOUND", result.stderr)

    def test_bad_request_exits_1_naming_the_field(self):
        cases = [
            (["add-user", "", "u"], "jamctl: add-user failed: "
             "INVALID_ARGUMENT: jam_id must not be empty"),
            (["add-user", "j", ""], "INVALID_ARGUMENT: user_id"),
            (["remove-user", "j", "x" * 129], "INVALID_ARGUMENT: user_id"),
            (["has-capacity", ""], "INVALID_ARGUMENT: jam_id"),
            (["refresh", "j", "ok", "bad\x01"],
             "INVALID_ARGUMENT: user_ids[1]"),
            (["list", "--page_token=not-a-token"],
             "INVALID_ARGUMENT: page_token"),
        ]
        harness.assert_calls_fail(self, self.jamctl, cases)

    def test_invalid_utf8_id_exits_1_naming_the_field(self):
        # Protobuf refuses to parse a proto3 string holding invalid UTF-8;
        # the server must still answer INVALID_ARGUMENT naming the field.
        result = self.jamctl("add-user", "jam-a", b"bad\xff")
        self.assertEqual(result.returncode, 1, describe(result))
        self.assertIn("INVALID_ARGUMENT: user_id", result.stderr)

    def test_wrong_usage_exits_2(self):
        cases = [
            ([], "missing COMMAND"),
            (["frobnicate"], "unknown command 'frobnicate'"),
            (["add-user", "jam-a"], "wrong number of arguments for add-user"),
            (["stats", "extra"], "wrong number of arguments for stats"),
            (["refresh"], "wrong number of arguments for refresh"),
            (["--no_such_flag", "stats"], "unknown flag --no_such_flag"),
            (["--page_size=ten", "list"], "--page_size"),
            (["--page_size=2", "stats"], "apply only to list"),
            (["current-jam", "u1", "u2"],
             "wrong number of arguments for current-jam"),
            (["has-capacity", "j", "u", "v"],
             "wrong number of arguments for has-capacity"),
            (["--ttl=5s", "current-jam"], "--ttl needs USER"),
            (["--ttl=5s", "stats"], "--ttl applies only to current-jam USER"),
            (["--ttl=-1s", "current-jam", "u"], "--ttl must be 0"),
            (["--ttl=500us", "current-jam", "u"], "--ttl must be 0"),
            (["--ttl=soon", "current-jam", "u"], "--ttl"),
            (["current-jam", ""], "USER must not be empty"),
            (["has-capacity", "j", ""], "USER must not be empty"),
            (["watch-stats", "extra"],
             "wrong number of arguments for watch-stats"),
            (["--interval=0s", "watch-stats"], "--interval must be positive"),
            (["--interval=-1s", "watch-stats"], "--interval must be positive"),
            (["--interval=often", "watch-stats"], "--interval"),
            (["--count=-1", "watch-stats"], "--count"),
            (["--count=2", "stats"], "apply only to watch-stats"),
            (["--interval=5s", "list"], "apply only to watch-stats"),
            (["keepalive"], "keepalive needs --frontend=ID"),
            (["end-session"], "end-session needs --frontend=ID"),
            (["sync", "j=a"], "sync needs --frontend=ID"),
            (["--frontend=", "sync"], "sync needs --frontend=ID"),
            (["--frontend=fe", "stats"],
             "--frontend applies only to current-jam, refresh, remove-user, "
             "add-user, keepalive, end-session, sync, not to stats"),
            (["--frontend=fe", "has-capacity", "j"],
             "--frontend applies only to"),
            (["--frontend=fe", "sessions"], "--frontend applies only to"),
            (["--frontend=fe", "keepalive", "extra"],
             "wrong number of arguments for keepalive"),
            (["--frontend=fe", "end-session", "extra"],
             "wrong number of arguments for end-session"),
            (["sessions", "extra"], "wrong number of arguments for sessions"),
            (["--frontend=fe", "sync", "j1=a", "j2"],
             "sync: 'j2' is not JAM=USER,USER..."),
            (["--frontend=fe", "--lease=-1s", "sync"], "--lease must be 0"),
            (["--frontend=fe", "--lease=500us", "sync"], "--lease must be 0"),
            (["--frontend=fe", "--lease=soon", "sync"], "--lease"),
            (["--frontend=fe", "--lease=10s", "keepalive"],
             "--lease applies only to sync, not to keepalive"),
            (["--hold=5s", "add-user", "j", "u"],
             "--hold applies only to remove-user, not to add-user"),
            (["--hold=-1s", "remove-user", "j", "u"], "--hold must be 0"),
            (["--hold=500us", "remove-user", "j", "u"], "--hold must be 0"),
            (["--hold=later", "remove-user", "j", "u"], "--hold"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assert_usage_error(self.jamctl(*args), message)
        self.assert_usage_error(self.jamctl("stats", deadline="soon"),
                                "--deadline")
        self.assert_usage_error(self.jamctl("stats", deadline="0s"),
                                "--deadline must be positive")

    def test_help_lists_commands_and_flags(self):
        result = harness.run([harness.JAMCTL, "--help"])
        # Abseil 20220623 exits 1 after --help; only the text matters here.
        for command in ("current-jam", "refresh", "remove-user",
                        "has-capacity", "add-user", "stats", "list", "batch",
                        "health", "watch-stats", "sync", "keepalive",
                        "end-session", "sessions", "jam", "leader", "pools",
                        "routing"):
            self.assertIn(f"  {command}", result.stdout, describe(result))
        for synopsis in ("current-jam [USER] [--ttl=DURATION]",
                         "has-capacity JAM [USER]",
                         "remove-user JAM USER [--hold=DURATION]",
                         "watch-stats [--interval=1s] [--count=N]",
                         "sync [--lease=DURATION] [JAM=USER,USER...]...",
                         "[--frontend=ID]", "[--pool=NAME]"):
            self.assertIn(synopsis, result.stdout, describe(result))
        # Abseil documents each flag as "--name (description); default: ...".
        for flag in ("target", "deadline", "page_size", "page_token", "all",
                     "ttl", "interval", "count", "frontend", "hold", "lease",
                     "pool"):
            self.assertIn(f"--{flag} (", result.stdout, describe(result))


class FrontEndTest(JamctlCase):
    """jamctl for a front end: --frontend on its calls, and sync,
    keepalive, end-session and sessions."""

    def setUp(self):
        # No resync window after the start: a front end's new users join at
        # once.
        self.server = harness.start_server(self, "--max_users=2",
                                           "--resync_grace=0")

    def front_end(self, *args):
        """One JSON object of jamctl --frontend=fe-1 ARGS."""
        return self.one_json("--frontend=fe-1", *args)

    def list_jams(self):
        return {
            jam["jamId"]: (jam["userIds"], jam["reservedCount"])
            for jam in self.one_json("list")["jams"]
        }

    def test_calls_of_a_front_end_need_its_session(self):
        cases = [
            (["--frontend=fe-1", "add-user", "j1", "ann"],
             "jamctl: add-user failed: FAILED_PRECONDITION: front end fe-1 "
             "has no live session"),
            (["--frontend=fe-1", "current-jam", "ann"],
             "jamctl: current-jam failed: FAILED_PRECONDITION"),
            (["--frontend=fe-1", "refresh", "j1", "ann"],
             "jamctl: refresh failed: FAILED_PRECONDITION"),
            (["--frontend=fe-1", "remove-user", "j1", "ann"],
             "jamctl: remove-user failed: FAILED_PRECONDITION"),
            (["--frontend=fe-1", "keepalive"],
             "jamctl: keepalive failed: FAILED_PRECONDITION"),
            (["--frontend=fe-1", "end-session"],
             "jamctl: end-session failed: FAILED_PRECONDITION"),
        ]
        harness.assert_calls_fail(self, self.jamctl, cases)
        self.assertEqual(self.list_jams(), {})

        synced = self.front_end("sync")
        self.assertEqual(synced["jamCount"], "0")
        self.assertEqual(synced["userCount"], "0")
        self.assertEqual(
            self.front_end("add-user", "j1", "ann"), {
                "added": True,
                "userCount": 1,
                "redirectJamId": ""
            })
        self.assertEqual(self.front_end("refresh", "j2", "bob"),
                         {"userCount": 1})
        self.assertEqual(self.front_end("current-jam", "cat")["jamId"], "j1")
        self.assertEqual(
            self.front_end("remove-user", "j2", "bob"), {
                "removed": True,
                "userCount": 0
            })
        self.assertEqual(self.list_jams(), {"j1": (["ann"], 1)})
        sessions = self.one_json("sessions")["sessions"]
        self.assertEqual(len(sessions), 1, sessions)
        self.assertEqual(sessions[0]["frontendId"], "fe-1")
        self.assertEqual(sessions[0]["memberCount"], "1")
        self.assertEqual(sessions[0]["reservationCount"], "1")
        self.assertEqual(
            self.one_json("jam", "j1"), {
                "jamId": "j1",
                "members": [{
                    "userId": "ann",
                    "frontendId": "fe-1"
                }],
                "reservedCount": 1,
                "maxUsers": 2
            })
        # Another front end is still fenced; anonymous calls never are.
        result = self.jamctl("--frontend=fe-2", "add-user", "j1", "dan")
        self.assertEqual(result.returncode, 1, describe(result))
        self.assertIn("front end fe-2 has no live session", result.stderr)
        self.assertIs(self.one_json("add-user", "j3", "eve")["added"], True)

    def test_sync_keepalive_sessions_end_session(self):
        before_ms = int(time.time() * 1000)
        synced = self.front_end("--lease=30s", "sync", "j1=ann,bob", "j2=cat",
                                "j3=")
        after_ms = int(time.time() * 1000)
        self.assertEqual(synced["jamCount"], "2")
        self.assertEqual(synced["userCount"], "3")
        # Whole milliseconds: allow the clock's rounding on both sides.
        self.assertGreaterEqual(int(synced["leaseExpiresUnixMs"]),
                                before_ms + 30_000 - 1)
        self.assertLessEqual(int(synced["leaseExpiresUnixMs"]),
                             after_ms + 30_000 + 1)
        self.assertEqual(self.list_jams(), {
            "j1": (["ann", "bob"], 0),
            "j2": (["cat"], 0)
        })

        renewed = self.front_end("keepalive")
        self.assertEqual(set(renewed), {"leaseExpiresUnixMs"})
        self.assertGreaterEqual(int(renewed["leaseExpiresUnixMs"]),
                                int(synced["leaseExpiresUnixMs"]))
        self.assertEqual(
            self.one_json("sessions"), {
                "sessions": [{
                    "frontendId": "fe-1",
                    "leaseExpiresUnixMs": renewed["leaseExpiresUnixMs"],
                    "memberCount": "3",
                    "reservationCount": "0"
                }]
            })
        self.assertEqual(self.one_json("stats")["sessionCount"], "1")

        # A second sync replaces all the front end has.
        self.assertEqual(
            self.front_end("sync", "j2=bob,cat")["userCount"], "2")
        self.assertEqual(self.list_jams(), {"j2": (["bob", "cat"], 0)})

        self.assertEqual(self.front_end("end-session"),
                         {"removedUserCount": "2"})
        self.assertEqual(self.one_json("sessions"), {"sessions": []})
        self.assertEqual(self.list_jams(), {})

    def test_sync_with_the_servers_default_lease(self):
        before_ms = int(time.time() * 1000)
        synced = self.front_end("sync", "j1=ann")
        # --lease_ttl's default, 10 s.
        self.assertGreaterEqual(int(synced["leaseExpiresUnixMs"]),
                                before_ms + 10_000 - 1)
        self.assertLess(int(synced["leaseExpiresUnixMs"]),
                        before_ms + 10_000 + harness.COMMAND_TIMEOUT_S * 1000)

    def test_remove_user_with_hold_keeps_the_seat(self):
        self.front_end("sync", "j1=ann,bob", "j2=cat,dan")
        self.assertEqual(
            self.front_end("remove-user", "--hold=30s", "j1", "ann"), {
                "removed": True,
                "userCount": 1
            })
        self.assertEqual(self.list_jams(), {
            "j1": (["bob"], 1),
            "j2": (["cat", "dan"], 0)
        })
        # The page reload lands in the same jam.
        self.assertEqual(self.front_end("current-jam", "ann")["jamId"], "j1")

    def test_sync_errors_exit_1_naming_the_field(self):
        cases = [
            (["--frontend=fe-1", "--lease=100ms", "sync"],
             "jamctl: sync failed: INVALID_ARGUMENT: messages[0].lease_ttl_ms"
             " must be 0 (the server's default) or at least 500, got 100"),
            (["--frontend=fe-1", "sync", "=ann"],
             "INVALID_ARGUMENT: messages[0].jams[0].jam_id"),
            (["--frontend=fe-1", "sync", "j1=ann", "j2=bob,,cat"],
             "INVALID_ARGUMENT: messages[0].jams[1].user_ids[1]"),
            (["--frontend=bad\x01", "sync"],
             "INVALID_ARGUMENT: messages[0].frontend_id"),
            (["--frontend=bad\x01", "add-user", "j", "u"],
             "INVALID_ARGUMENT: frontend_id"),
        ]
        harness.assert_calls_fail(self, self.jamctl, cases)
        # Nothing was applied.
        self.assertEqual(self.one_json("sessions"), {"sessions": []})
        self.assertEqual(self.list_jams(), {})


class WatchStatsTest(unittest.TestCase):
    """jamctl watch-stats: GetStats as a JSON line every --interval, until
    --count lines or Ctrl-C."""

    STATS_FIELDS = {
        "jamCount", "userCount", "maxUsers", "fullJamCount",
        "reservationCount", "sessionCount"
    }
    # How long jamctl may take to print its first line, and to exit after
    # SIGINT.
    FIRST_LINE_TIMEOUT_S = 10
    EXIT_TIMEOUT_S = 5

    def setUp(self):
        self.server = harness.start_server(self)

    def watch(self, *flags):
        return [
            harness.JAMCTL, f"--target={self.server.target}", "watch-stats",
            *flags
        ]

    def test_count_prints_that_many_lines_an_interval_apart(self):
        json_lines(self,
                   harness.jamctl(self.server.target, "add-user", "jam-a",
                                  "ann"))
        started = time.monotonic()
        result = harness.run(self.watch("--interval=100ms", "--count=3"))
        elapsed = time.monotonic() - started
        lines = json_lines(self, result)
        self.assertEqual(len(lines), 3, describe(result))
        for line in lines:
            self.assertEqual(set(line), self.STATS_FIELDS, line)
            self.assertEqual(line["jamCount"], "1")
            self.assertEqual(line["userCount"], "1")
        self.assertEqual(result.stderr, "")
        # Two intervals between three calls, and no wait after the last.
        self.assertGreaterEqual(elapsed, 0.2)
        # Each line is a call of its own.
        metrics = Exposition(scrape(self, self.server))
        self.assertEqual(
            metrics.series("grpc_server_started_total",
                           grpc_method="GetStats").popitem()[1], 3)

    def test_sigint_ends_the_watch_with_status_0(self):
        watch = harness.Background(self, self.watch("--interval=100ms"))
        self.assertTrue(
            watch.wait_for_stdout(lambda out: out.count("\n") >= 2,
                                  timeout=self.FIRST_LINE_TIMEOUT_S),
            watch.describe())
        watch.process.send_signal(signal.SIGINT)
        try:
            code = watch.wait(timeout=self.EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.fail(f"still running {self.EXIT_TIMEOUT_S}s after SIGINT: "
                      f"{watch.describe()}")
        self.assertEqual(code, 0, watch.describe())
        self.assertEqual(watch.stderr(), "")
        lines = watch.stdout().splitlines()
        self.assertGreaterEqual(len(lines), 2)
        for line in lines:
            self.assertEqual(set(json.loads(line)), self.STATS_FIELDS, line)

    def test_sigint_during_a_long_interval_ends_it_at_once(self):
        watch = harness.Background(self, self.watch("--interval=1h"))
        self.assertTrue(
            watch.wait_for_stdout(lambda out: out.endswith("\n"),
                                  timeout=self.FIRST_LINE_TIMEOUT_S),
            watch.describe())
        watch.process.send_signal(signal.SIGINT)
        self.assertEqual(watch.wait(timeout=self.EXIT_TIMEOUT_S), 0,
                         watch.describe())
        self.assertEqual(len(watch.stdout().splitlines()), 1)

    def test_a_failed_call_ends_the_watch_with_status_1(self):
        watch = harness.Background(self, self.watch("--interval=100ms"))
        self.assertTrue(
            watch.wait_for_stdout(lambda out: out.endswith("\n"),
                                  timeout=self.FIRST_LINE_TIMEOUT_S),
            watch.describe())
        self.server.kill()
        self.assertEqual(watch.wait(timeout=harness.COMMAND_TIMEOUT_S), 1,
                         watch.describe())
        self.assertIn("jamctl: watch-stats failed: UNAVAILABLE:",
                      watch.stderr())


class PoolsTest(JamctlCase):
    """jamctl on a server with pools: --pool on the commands of one pool,
    and pools and routing."""

    def setUp(self):
        self.server = harness.start_server(self, "--max_users=2",
                                           "--pools=duo:2,rock:4",
                                           "--resync_grace=0")

    def jam_ids(self, pool):
        listed = self.one_json("list", f"--pool={pool}")
        return [jam["jamId"] for jam in listed["jams"]]

    def test_pool_flag_scopes_each_command(self):
        for user in ("ann", "bob", "cat"):
            self.assertIs(
                self.one_json("--pool=rock", "add-user", "j", user)["added"],
                True)
        self.assertIs(
            self.one_json("--pool=duo", "add-user", "j", "ann")["added"],
            True)
        self.assertEqual(self.one_json("--pool=rock", "stats")["userCount"],
                         "3")
        self.assertEqual(self.one_json("--pool=rock", "stats")["maxUsers"], 4)
        self.assertEqual(self.one_json("stats")["userCount"], "0")
        self.assertEqual(self.one_json("--pool=default", "stats")["maxUsers"],
                         2)
        self.assertEqual(self.jam_ids("rock"), ["j"])
        self.assertEqual(self.jam_ids("duo"), ["j"])
        self.assertEqual(self.one_json("list")["jams"], [])
        capacity = self.one_json("--pool=rock", "has-capacity", "j")
        self.assertEqual(capacity, {
            "hasCapacity": True,
            "userCount": 3,
            "maxUsers": 4
        })
        self.assertEqual(
            self.one_json("--pool=rock", "current-jam")["jamId"], "j")
        seat = self.one_json("--pool=rock", "current-jam", "dan")
        self.assertEqual(seat["jamId"], "j")
        self.assertNotEqual(seat["reservationExpiresUnixMs"], "0")
        jam = self.one_json("--pool=rock", "jam", "j")
        self.assertEqual([m["userId"] for m in jam["members"]],
                         ["ann", "bob", "cat"])
        self.assertEqual(jam["reservedCount"], 1)
        self.assertEqual(
            self.one_json("--pool=rock", "remove-user", "j", "cat"), {
                "removed": True,
                "userCount": 2
            })
        self.assertEqual(
            self.one_json("--pool=duo", "refresh", "k", "x", "y")["userCount"],
            2)
        self.assertEqual(sorted(self.jam_ids("duo")), ["j", "k"])
        batch = self.one_json(
            "--pool=duo", "batch",
            '{"operations":[{"addUser":{"jamId":"k","userId":"z"}},'
            '{"getStats":{}}]}')
        self.assertIs(batch["results"][0]["addUser"]["added"], False)
        self.assertEqual(batch["results"][1]["getStats"]["maxUsers"], 2)
        self.assertEqual(self.one_json("--pool=rock", "leader"), {
            "leader": self.server.target,
            "epoch": "0"
        })
        lines = json_lines(
            self, self.jamctl("--pool=rock", "watch-stats", "--count=1"))
        self.assertEqual([line["userCount"] for line in lines], ["2"])

    def test_sync_puts_the_jams_in_the_pool(self):
        synced = self.one_json("--frontend=fe", "--pool=rock", "sync",
                               "r1=ann,bob", "r2=cat")
        self.assertEqual(synced["jamCount"], "2")
        self.assertEqual(synced["userCount"], "3")
        self.assertEqual(self.jam_ids("rock"), ["r1", "r2"])
        self.assertEqual(self.one_json("list")["jams"], [])
        for pool in ("default", "duo", "rock"):
            sessions = self.one_json(f"--pool={pool}", "sessions")["sessions"]
            self.assertEqual([s["frontendId"] for s in sessions], ["fe"])
        self.one_json("--frontend=fe", "--pool=duo", "add-user", "d", "dan")
        self.assertNotEqual(
            self.one_json("--frontend=fe", "keepalive")["leaseExpiresUnixMs"],
            "0")
        self.assertEqual(self.one_json("--frontend=fe", "end-session"),
                         {"removedUserCount": "4"})

    def test_an_unknown_pool_exits_1_with_not_found(self):
        harness.assert_calls_fail(
            self, self.jamctl,
            [(["--pool=nope", "stats"], "stats failed: NOT_FOUND:"),
             (["--pool=nope", "add-user", "j", "u"],
              "add-user failed: NOT_FOUND:"),
             (["--frontend=fe", "--pool=nope", "sync", "j=u"],
              "sync failed: NOT_FOUND:")])
        result = self.jamctl("--pool=nope", "list")
        self.assertIn('"nope"', result.stderr)

    def test_pools_lists_every_pool(self):
        pools = self.one_json("pools")["pools"]
        self.assertEqual([pool["name"] for pool in pools],
                         ["default", "duo", "rock"])
        self.assertEqual([pool["maxUsers"] for pool in pools], [2, 2, 4])
        for pool in pools:
            self.assertIs(pool["serving"], True)
            self.assertEqual(pool["leaderAddress"], "")
            self.assertEqual(pool["epoch"], "0")
        self.one_json("--pool=duo", "add-user", "j", "ann")
        counts = {
            pool["name"]: pool["userCount"]
            for pool in self.one_json("pools")["pools"]
        }
        self.assertEqual(counts, {"default": "0", "duo": "1", "rock": "0"})

    def test_routing_of_a_lone_server(self):
        self.assertEqual(
            self.one_json("routing"), {
                "routes": [{
                    "pool": pool,
                    "leaderAddress": "",
                    "epoch": "0"
                } for pool in ("default", "duo", "rock")]
            })

    def test_pool_flag_usage_errors_exit_2(self):
        for args, message in [
            (["--pool=rock", "health"], "--pool applies only to"),
            (["--pool=rock", "pools"], "not to pools"),
            (["--pool=rock", "routing"], "not to routing"),
            (["--pool=rock", "--frontend=fe", "keepalive"],
             "not to keepalive"),
            (["--pool=rock", "--frontend=fe", "end-session"],
             "not to end-session"),
            (["pools", "extra"], "wrong number of arguments for pools"),
            (["routing", "extra"], "wrong number of arguments for routing"),
            (["--pool=rock", "batch", '{"pool":"duo"}'],
             'the JSON\'s pool "duo" is not --pool=rock'),
        ]:
            with self.subTest(args=args):
                result = self.jamctl(*args)
                self.assertEqual(result.returncode, 2, describe(result))
                self.assertEqual(result.stdout, "")
                self.assertIn(message, result.stderr)


class NoServerTest(unittest.TestCase):

    def test_call_to_a_closed_port_is_unavailable(self):
        # A bound socket that never listens: connections are refused, and no
        # other process can take the port meanwhile.
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            target = f"127.0.0.1:{closed.getsockname()[1]}"
            for args in (["stats"], ["add-user", "j", "u"], ["health"]):
                with self.subTest(args=args):
                    result = harness.jamctl(target, *args, deadline="1s")
                    self.assertEqual(result.returncode, 1, describe(result))
                    self.assertEqual(result.stdout, "")
                    self.assertIn(f"jamctl: {args[0]} failed: UNAVAILABLE:",
                                  result.stderr)


if __name__ == "__main__":
    harness.main()
