"""A third-party client (buf curl) discovers and calls the server through
server reflection alone: no .proto files on its side."""

import sys

sys.dont_write_bytecode = True  # Keep __pycache__ out of the source tree.

import json
import time
import unittest

import harness
from exposition import Exposition, scrape
from harness import buf_curl, describe

SERVICE = "jambalancer.v1.JamBalancerService"
HEALTH = "grpc.health.v1.Health"


class ReflectionTest(unittest.TestCase):

    def setUp(self):
        self.server = harness.start_server(self)
        self.url = f"http://{self.server.target}"

    def call(self, method, request, *flags):
        result = buf_curl(*flags, "-d", json.dumps(request),
                          f"{self.url}/{method}")
        self.assertEqual(result.returncode, 0, describe(result))
        return json.loads(result.stdout)

    def test_lists_the_services(self):
        result = buf_curl("--list-services", self.url)
        self.assertEqual(result.returncode, 0, describe(result))
        services = result.stdout.split()
        self.assertIn(SERVICE, services)
        self.assertIn(HEALTH, services)
        self.assertTrue(
            any(s.startswith("grpc.reflection.") and
                s.endswith(".ServerReflection") for s in services), services)

    def test_describes_the_methods_of_every_service(self):
        # Listing methods needs each service's file descriptor, so this shows
        # that reflection can resolve the health proto too.
        result = buf_curl("--list-methods", self.url)
        self.assertEqual(result.returncode, 0, describe(result))
        methods = set(result.stdout.split())
        for method in ("AddUser", "CurrentJam", "GetStats", "HasCapacity",
                       "ListJams", "Refresh", "RemoveUser"):
            self.assertIn(f"{SERVICE}/{method}", methods)
        self.assertIn(f"{HEALTH}/Check", methods)
        self.assertIn(f"{HEALTH}/Watch", methods)

    def test_balancer_service_has_exactly_the_api_methods(self):
        # buf curl lists methods only for the whole server (a URL naming the
        # service is refused with reflection), so filter by the service.
        result = buf_curl("--list-methods", self.url)
        self.assertEqual(result.returncode, 0, describe(result))
        methods = {
            m for m in result.stdout.split() if m.startswith(f"{SERVICE}/")
        }
        self.assertEqual(
            methods, {
                f"{SERVICE}/{method}"
                for method in ("AddUser", "Batch", "CurrentJam", "EndSession",
                               "GetJam", "GetRouting", "GetStats",
                               "HasCapacity", "KeepAlive", "ListJams",
                               "ListPools", "ListSessions", "Refresh",
                               "RemoveUser", "Sync")
            })

    def test_request_schema_comes_from_reflection(self):
        # buf curl turns JSON into protobuf with the descriptors reflection
        # gave it: known fields and methods pass, others fail on the client
        # side (exit 1, not a gRPC code) before any call is made.
        self.assertRegex(
            self.call(f"{SERVICE}/CurrentJam", {"user_id": "u"})["jamId"],
            harness.UUID_V4)
        cases = [
            (f"{SERVICE}/CurrentJam", {
                "no_such_field": 1
            }, 'unknown field "no_such_field"'),
            (f"{SERVICE}/CurrentJam", {
                "user_id": 5
            }, "invalid value for string field userId"),
            (f"{SERVICE}/NoSuchMethod", {},
             f'service "{SERVICE}" contains no such method'),
        ]
        for method, request, message in cases:
            with self.subTest(method=method, request=request):
                result = buf_curl("-d", json.dumps(request),
                                  f"{self.url}/{method}")
                self.assertEqual(result.returncode, 1, describe(result))
                self.assertIn(message, result.stderr)
        # Only the valid call reached the server.
        metrics = Exposition(scrape(self, self.server))
        self.assertEqual(
            metrics.series("grpc_server_started_total",
                           grpc_method="CurrentJam").popitem()[1], 1)
        self.assertEqual(
            sum(metrics.series("grpc_server_started_total").values()), 1)

    def test_current_jam_from_json(self):
        response = self.call(f"{SERVICE}/CurrentJam", {}, "--emit-defaults")
        self.assertIs(response["newJam"], True)
        self.assertRegex(response["jamId"], harness.UUID_V4)
        self.assertEqual(response["userCount"], 0)

    def test_current_jam_with_user_reserves_from_json(self):
        before = time.time() * 1000
        response = self.call(f"{SERVICE}/CurrentJam", {"user_id": "u1"})
        after = time.time() * 1000
        self.assertRegex(response["jamId"], harness.UUID_V4)
        self.assertIs(response["newJam"], True)
        # uint64 is a JSON string; the server's default TTL is 15 s.
        expires = int(response["reservationExpiresUnixMs"])
        self.assertGreaterEqual(expires, before + 15_000 - 2_000)
        self.assertLessEqual(expires, after + 15_000 + 2_000)
        # An explicit TTL (ms) is honoured; the jam is packed, not new.
        before = time.time() * 1000
        response2 = self.call(f"{SERVICE}/CurrentJam", {
            "user_id": "u2",
            "reservation_ttl_ms": 60_000
        })
        after = time.time() * 1000
        self.assertEqual(response2["jamId"], response["jamId"])
        expires = int(response2["reservationExpiresUnixMs"])
        self.assertGreaterEqual(expires, before + 60_000 - 2_000)
        self.assertLessEqual(expires, after + 60_000 + 2_000)
        self.assertEqual(
            self.call(f"{SERVICE}/GetStats", {})["reservationCount"], "2")
        self.assertEqual(
            self.call(f"{SERVICE}/ListJams", {})["jams"], [{
                "jamId": response["jamId"],
                "reservedCount": 2
            }])

    def test_add_user_then_list_from_json(self):
        added = self.call(f"{SERVICE}/AddUser", {
            "jam_id": "jam-a",
            "user_id": "ann"
        })
        self.assertEqual(added, {"added": True, "userCount": 1})
        listed = self.call(f"{SERVICE}/ListJams", {})
        self.assertEqual(listed["jams"], [{
            "jamId": "jam-a",
            "userIds": ["ann"]
        }])

    def test_bad_request_reports_invalid_argument(self):
        result = buf_curl("-d", '{"jam_id": "", "user_id": "u"}',
                          f"{self.url}/{SERVICE}/AddUser")
        # buf curl exits with the gRPC code shifted left by 3.
        self.assertEqual(result.returncode, 3 << 3, describe(result))
        error = json.loads(result.stdout or result.stderr)
        self.assertEqual(error["code"], "invalid_argument")
        self.assertIn("jam_id", error["message"])

    def test_health_check_serving(self):
        self.assertEqual(self.call(f"{HEALTH}/Check", {}),
                         {"status": "SERVING"})
        self.assertEqual(self.call(f"{HEALTH}/Check", {"service": SERVICE}),
                         {"status": "SERVING"})


if __name__ == "__main__":
    harness.main()
