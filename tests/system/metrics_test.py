"""What an operator relies on, checked with the real tools: the Prometheus
metrics (exact values after known calls, promtool's lint, a real Prometheus
server scraping them), health during shutdown as a health-checking client
sees it, and the log lines of --log_format=json."""

import sys

sys.dont_write_bytecode = True  # Keep __pycache__ out of the source tree.

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import harness
from exposition import Exposition, http_get, scrape
from harness import describe, json_lines

SERVICE = "jambalancer.v1.JamBalancerService"
HEALTH = "grpc.health.v1.Health"
METHODS = ("CurrentJam", "Refresh", "RemoveUser", "HasCapacity", "AddUser",
           "GetStats", "ListJams", "Batch", "ListSessions", "GetJam",
           "KeepAlive", "EndSession", "ListPools", "GetRouting", "Sync")
# gRPC's method types, as the middleware labels them.
CLIENT_STREAMING = ("Sync",)

# A real Prometheus: attempts to find a free port, how long it may take to
# become ready, and to show a value after the calls; how often to ask.
PROMETHEUS_ATTEMPTS = 3
PROMETHEUS_READY_TIMEOUT_S = 30
PROMETHEUS_QUERY_TIMEOUT_S = 30
POLL_INTERVAL_S = 0.5
# Shutdown grace of the server whose health is watched, and how much longer
# than that it may take to exit.
WATCH_GRACE_S = 2
EXIT_SLACK_S = 5


README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "README.md")


def tool(name):
    """Path of a Prometheus tool (Debian installs them in /usr/bin)."""
    return shutil.which(name) or f"/usr/bin/{name}"


def poll(condition, timeout, interval=POLL_INTERVAL_S):
    """Calls condition() until it returns something true or `timeout`
    passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval)


class MetricsTest(unittest.TestCase):
    """Known calls, then exact values on /metrics."""

    def setUp(self):
        self.launched_at = time.time()
        self.server = harness.start_server(self, "--max_users=2")
        self.started_at = time.time()
        self.assertGreater(self.server.metrics_port, 0)

    def jamctl(self, *args, code=0):
        result = harness.jamctl(self.server.target, *args)
        self.assertEqual(result.returncode, code, describe(result))
        return result

    def make_calls(self):
        """With --max_users=2: jam-a full (ann, bob), jam-b with cat and a
        seat reserved for eve, jam-c overfilled by Refresh (x, y, z); dan
        turned away from jam-a; two AddUser calls with an empty id."""
        for jam, user in (("jam-a", "ann"), ("jam-a", "bob"),
                          ("jam-b", "cat")):
            self.assertIs(
                json_lines(self, self.jamctl("add-user", jam,
                                             user))[0]["added"], True)
        turned_away = json_lines(self, self.jamctl("add-user", "jam-a",
                                                   "dan"))[0]
        self.assertIs(turned_away["added"], False)
        self.assertEqual(turned_away["redirectJamId"], "jam-b")
        self.jamctl("add-user", "", "x", code=1)
        self.jamctl("add-user", "jam-a", "", code=1)
        self.assertEqual(
            json_lines(self, self.jamctl("current-jam"))[0]["jamId"], "jam-b")
        reserved = json_lines(self, self.jamctl("current-jam", "eve"))[0]
        self.assertEqual(reserved["jamId"], "jam-b")
        self.assertEqual(
            json_lines(self, self.jamctl("refresh", "jam-c", "x", "y",
                                         "z"))[0], {"userCount": 3})

    def test_rpc_counters_count_each_call_by_method_and_code(self):
        self.make_calls()
        metrics = Exposition(scrape(self, self.server))
        for family, kind in (("grpc_server_started_total", "counter"),
                             ("grpc_server_handled_total", "counter"),
                             ("grpc_server_handling_seconds", "histogram")):
            self.assertEqual(metrics.types.get(family), kind, family)

        calls = {"AddUser": 6, "CurrentJam": 2, "Refresh": 1}
        codes = {
            "AddUser": {
                "OK": 4,
                "InvalidArgument": 2
            },
            "CurrentJam": {
                "OK": 2
            },
            "Refresh": {
                "OK": 1
            },
        }
        for method in METHODS:
            with self.subTest(method=method):
                labels = dict(grpc_method=method,
                              grpc_service=SERVICE,
                              grpc_type="client_stream"
                              if method in CLIENT_STREAMING else "unary")
                self.assertEqual(
                    metrics.value("grpc_server_started_total", **labels),
                    calls.get(method, 0))
                # OK is there from the start; other codes once they occur.
                self.assertEqual(
                    metrics.by_label("grpc_server_handled_total",
                                     "grpc_code", **labels),
                    codes.get(method, {"OK": 0}))
                self.assertEqual(
                    metrics.value("grpc_server_handling_seconds_count",
                                  **labels), calls.get(method, 0))
                self.assertEqual(
                    metrics.value("grpc_server_handling_seconds_bucket",
                                  le="+Inf",
                                  **labels), calls.get(method, 0))
        # Only the balancer's methods: health checks and reflection are not
        # counted.
        for family in ("grpc_server_started_total",
                       "grpc_server_handled_total",
                       "grpc_server_handling_seconds_count"):
            self.assertEqual(
                {dict(key)["grpc_method"] for key in metrics.series(family)},
                set(METHODS), family)
        # The labels the go-grpc-prometheus middleware uses, and no others.
        for (name, labels) in metrics.samples:
            if name.startswith("grpc_server_"):
                self.assertEqual(
                    {label for label, _ in labels} -
                    {"grpc_code", "le"},
                    {"grpc_method", "grpc_service", "grpc_type"}, name)

    def test_collection_metrics_describe_the_jams(self):
        self.make_calls()
        metrics = Exposition(scrape(self, self.server))
        expected = {
            "jam_balancer_jams": ("gauge", 3),
            "jam_balancer_users": ("gauge", 6),
            "jam_balancer_reservations": ("gauge", 1),
            "jam_balancer_full_jams": ("gauge", 2),  # jam-a and jam-c.
            "jam_balancer_overfilled_jams": ("gauge", 1),
            "jam_balancer_max_users": ("gauge", 2),
            "jam_balancer_jams_created_total": ("counter", 3),
            "jam_balancer_users_turned_away_total": ("counter", 1),
            "jam_balancer_overfilled_refreshes_total": ("counter", 1),
            "jam_balancer_reservations_made_total": ("counter", 1),
            "jam_balancer_reservations_expired_total": ("counter", 0),
            "jam_balancer_strand_queue_depth": ("gauge", 0),
        }
        for name, (kind, value) in expected.items():
            with self.subTest(name=name):
                self.assertEqual(metrics.types.get(name), kind)
                self.assertEqual(metrics.value(name, pool="default"), value)

        # Jams by members: jam-b has 1 (plus a seat), jam-a 2, jam-c 3, which
        # is more than max_users and so only in +Inf.
        self.assertEqual(metrics.types["jam_balancer_jam_members"],
                         "histogram")
        self.assertEqual(
            metrics.by_label("jam_balancer_jam_members_bucket", "le",
                             pool="default"), {
                "0": 0,
                "1": 1,
                "2": 2,
                "+Inf": 3
            })
        self.assertEqual(
            metrics.value("jam_balancer_jam_members_count", pool="default"), 3)
        self.assertEqual(
            metrics.value("jam_balancer_jam_members_sum", pool="default"), 6)

        # Each of the 7 valid calls ran an operation on the strand (the
        # scrape's own read may or may not be counted yet).
        for family in ("jam_balancer_strand_wait_seconds",
                       "jam_balancer_strand_run_seconds"):
            with self.subTest(family=family):
                self.assertEqual(metrics.types.get(family), "histogram")
                self.assertGreaterEqual(
                    metrics.value(f"{family}_count", pool="default"), 7)

    def test_build_info_and_process_metrics(self):
        metrics = Exposition(scrape(self, self.server))
        version = re.search(r"\bversion=(\S+)", self.server.start_line)
        self.assertIsNotNone(version, self.server.start_line)
        build = metrics.series("jam_balancer_build_info")
        self.assertEqual(len(build), 1, build)
        [(labels, value)] = build.items()
        labels = dict(labels)
        self.assertEqual(value, 1)
        self.assertEqual(set(labels),
                         {"version", "grpc_version", "protobuf_version"})
        self.assertEqual(labels["version"], version.group(1))
        self.assertRegex(labels["grpc_version"], r"^\d+\.\d+\.\d+")
        self.assertRegex(labels["protobuf_version"], r"^\d+\.\d+\.\d+$")

        types = {
            "process_cpu_seconds_total": "counter",
            "process_resident_memory_bytes": "gauge",
            "process_virtual_memory_bytes": "gauge",
            "process_open_fds": "gauge",
            "process_max_fds": "gauge",
            "process_start_time_seconds": "gauge",
        }
        for name, kind in types.items():
            self.assertEqual(metrics.types.get(name), kind, name)
        resident = metrics.value("process_resident_memory_bytes")
        self.assertGreater(resident, 0)
        self.assertGreaterEqual(metrics.value("process_virtual_memory_bytes"),
                                resident)
        # At most every CPU busy since the launch (plus a clock tick).
        cpu = metrics.value("process_cpu_seconds_total")
        self.assertGreaterEqual(cpu, 0)
        self.assertLessEqual(
            cpu, (time.time() - self.launched_at) * os.cpu_count() + 0.01)
        self.assertGreater(metrics.value("process_open_fds"), 0)
        self.assertLessEqual(metrics.value("process_open_fds"),
                             metrics.value("process_max_fds"))
        # Wall clock: between the launch and the start-up line (1 s of
        # slack for the clocks' resolution).
        start = metrics.value("process_start_time_seconds")
        self.assertGreaterEqual(start, self.launched_at - 1)
        self.assertLessEqual(start, self.started_at + 1)

    def test_every_sample_has_a_family_and_histograms_add_up(self):
        self.make_calls()
        metrics = Exposition(scrape(self, self.server))
        suffixes = ("_bucket", "_count", "_sum")
        for name, _ in metrics.samples:
            family = name
            if family not in metrics.types:
                family = next((name[:-len(s)]
                               for s in suffixes
                               if name.endswith(s) and
                               name[:-len(s)] in metrics.types), name)
            self.assertIn(family, metrics.types, f"{name} has no TYPE")
            self.assertIn(family, metrics.helps, f"{name} has no HELP")
        self.assertEqual(metrics.histogram_problems(), [])

    def test_promtool_check_metrics_passes(self):
        self.make_calls()
        text = scrape(self, self.server)
        result = subprocess.run([tool("promtool"), "check", "metrics"],
                                input=text,
                                capture_output=True,
                                text=True,
                                timeout=harness.COMMAND_TIMEOUT_S)
        self.assertEqual((result.returncode, result.stdout, result.stderr),
                         (0, "", ""),
                         f"promtool check metrics: {describe(result)}")


class PrometheusTest(unittest.TestCase):
    """A real Prometheus server scrapes the balancer every second."""

    JOB = "jam-balancer"

    def setUp(self):
        self.server = harness.start_server(self)
        self.directory = tempfile.mkdtemp(prefix="jam-prometheus-")
        # Registered first, so it runs after Prometheus was killed.
        self.addCleanup(shutil.rmtree, self.directory, ignore_errors=True)
        config = f"{self.directory}/prometheus.yml"
        with open(config, "w") as file:
            file.write(f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: {self.JOB}
    static_configs:
      - targets: ["127.0.0.1:{self.server.metrics_port}"]
""")
        result = harness.run([tool("promtool"), "check", "config", config])
        self.assertEqual(result.returncode, 0, describe(result))
        self.prometheus, self.url = self.start_prometheus(config)

    def start_prometheus(self, config):
        """Starts Prometheus on a free loopback port with everything it
        writes or reads (but its binary) in self.directory; returns it and
        its URL once it is ready."""
        flags = [
            f"--config.file={config}",
            f"--storage.tsdb.path={self.directory}/data",
            f"--web.console.templates={self.directory}/consoles",
            f"--web.console.libraries={self.directory}/console_libraries",
        ]
        help_text = harness.run([tool("prometheus"), "--help"])
        if "--web.local-assets" in help_text.stdout + help_text.stderr:
            # Debian's build reads its web UI from disk.
            flags.append(f"--web.local-assets={self.directory}/web")
        for attempt in range(PROMETHEUS_ATTEMPTS):
            # Another program may take the port before Prometheus binds it.
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            prometheus = harness.Background(self, [
                tool("prometheus"), *flags,
                f"--web.listen-address=127.0.0.1:{port}"
            ])
            url = f"http://127.0.0.1:{port}"

            def ready():
                if prometheus.process.poll() is not None:
                    return "exited"
                try:
                    return http_get(f"{url}/-/ready")[0] == 200
                except OSError:
                    return False  # Not listening yet.

            state = poll(ready, PROMETHEUS_READY_TIMEOUT_S, interval=0.1)
            if state is True:
                return prometheus, url
            prometheus.kill()
            if state == "exited" and "address already in use" in (
                    prometheus.stderr()):
                continue
            self.fail(f"Prometheus not ready within "
                      f"{PROMETHEUS_READY_TIMEOUT_S}s: "
                      f"{prometheus.describe()}")
        self.fail(f"no free port for Prometheus in {PROMETHEUS_ATTEMPTS} "
                  f"attempts")

    def query(self, expression):
        """The instant vector of `expression` as a list of (labels, value)."""
        status, _, body = http_get(
            f"{self.url}/api/v1/query?" +
            urllib.parse.urlencode({"query": expression}))
        self.assertEqual(status, 200, body)
        answer = json.loads(body)
        self.assertEqual(answer["status"], "success", body)
        self.assertEqual(answer["data"]["resultType"], "vector", body)
        return [(sample["metric"], float(sample["value"][1]))
                for sample in answer["data"]["result"]]

    def wait_for_value(self, expression, expected):
        """Asks Prometheus every POLL_INTERVAL_S until `expression` is one
        sample equal to `expected`; fails with the last answer after
        PROMETHEUS_QUERY_TIMEOUT_S."""
        answers = []

        def matches():
            answers.append(self.query(expression))
            return [value for _, value in answers[-1]] == [expected]

        if not poll(matches, PROMETHEUS_QUERY_TIMEOUT_S):
            self.fail(f"{expression} was not {expected} within "
                      f"{PROMETHEUS_QUERY_TIMEOUT_S}s; last answer: "
                      f"{answers[-1]}; Prometheus: "
                      f"{self.prometheus.stderr()[-2000:]}")

    def test_prometheus_scrapes_the_calls(self):
        # Scraped before the calls, so the counts below come from scrapes of
        # a server in use, not from one scrape at the end.
        self.wait_for_value(f'up{{job="{self.JOB}"}}', 1)
        calls = 5
        for n in range(calls - 1):
            result = harness.jamctl(self.server.target, "add-user",
                                    f"jam-{n // 2}", f"user-{n}")
            self.assertEqual(result.returncode, 0, describe(result))
        result = harness.jamctl(self.server.target, "add-user", "", "u")
        self.assertEqual(result.returncode, 1, describe(result))

        self.wait_for_value(
            'sum(grpc_server_handled_total{grpc_method="AddUser"})', calls)
        # The scrape that saw every call also saw their effects.
        self.assertEqual(
            self.query('grpc_server_handled_total{grpc_method="AddUser",'
                       'grpc_code="InvalidArgument"}')[0][1], 1)
        self.assertEqual(
            self.query(f'jam_balancer_users{{job="{self.JOB}"}}')[0][1],
            calls - 1)
        self.assertEqual(self.query(f'up{{job="{self.JOB}"}}')[0][1], 1)

        # Prometheus parsed every scrape without complaint.
        status, _, body = http_get(f"{self.url}/api/v1/targets")
        self.assertEqual(status, 200, body)
        targets = json.loads(body)["data"]["activeTargets"]
        self.assertEqual([(t["labels"]["job"], t["health"], t["lastError"])
                          for t in targets], [(self.JOB, "up", "")], body)

    def test_readme_example_queries_run(self):
        result = harness.jamctl(self.server.target, "add-user", "jam-a", "ann")
        self.assertEqual(result.returncode, 0, describe(result))
        self.wait_for_value("sum(jam_balancer_users)", 1)
        queries = readme_queries()
        self.assertTrue(queries, f"no ```promql block in {README}")
        for query in queries:
            with self.subTest(query=query):
                # query() asserts that Prometheus accepted it.
                self.assertIsInstance(self.query(query), list)


def readme_queries():
    """The PromQL examples of the README (```promql blocks, one query per
    line that is not a comment)."""
    with open(README) as file:
        blocks = re.findall(r"^```promql\n(.*?)^```", file.read(),
                            re.MULTILINE | re.DOTALL)
    return [
        line.strip() for block in blocks for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def health_statuses(text):
    """The `status` of each JSON object buf curl printed (pretty-printed,
    one after the other)."""
    decoder = json.JSONDecoder()
    statuses = []
    position = 0
    text = text.strip()
    while position < len(text):
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            break  # An object still being written.
        statuses.append(value.get("status"))
        while position < len(text) and text[position].isspace():
            position += 1
    return statuses


class HealthDuringShutdownTest(unittest.TestCase):
    """A health-checking client (a load balancer) watching the server sees
    it turn NOT_SERVING when it starts draining, before it exits. A new Check
    during the drain cannot show that: a draining server refuses new calls,
    but a Watch stream opened before is still served."""

    def test_watch_sees_not_serving_before_the_server_exits(self):
        server = harness.start_server(self,
                                      f"--shutdown_grace={WATCH_GRACE_S}s")
        watches = {}
        for service in ("", SERVICE):
            watches[service] = harness.Background(self, [
                harness.BUF, "curl", "--timeout", "60s", "--protocol", "grpc",
                "--http2-prior-knowledge", "-d",
                json.dumps({"service": service}),
                f"http://{server.target}/{HEALTH}/Watch"
            ])
        for service, watch in watches.items():
            with self.subTest(service=service):
                self.assertTrue(
                    watch.wait_for_stdout(
                        lambda out: health_statuses(out) == ["SERVING"]),
                    watch.describe())

        signaled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        for service, watch in watches.items():
            with self.subTest(service=service):
                # The server sent this on the stream, so it was still up.
                self.assertTrue(
                    watch.wait_for_stdout(
                        lambda out: "NOT_SERVING" in health_statuses(out),
                        timeout=WATCH_GRACE_S + EXIT_SLACK_S),
                    watch.describe())
        try:
            code = server.wait_for_exit(timeout=WATCH_GRACE_S + EXIT_SLACK_S)
        except subprocess.TimeoutExpired:
            self.fail(f"still running {WATCH_GRACE_S + EXIT_SLACK_S}s after "
                      f"SIGTERM; stderr:\n{server.stderr()}")
        elapsed = time.monotonic() - signaled
        self.assertEqual(code, 0, server.stderr())
        for service, watch in watches.items():
            with self.subTest(service=service):
                # The server ends the streams when it exits; nothing after
                # NOT_SERVING.
                watch.wait()
                self.assertEqual(health_statuses(watch.stdout()),
                                 ["SERVING", "NOT_SERVING"], watch.describe())
        # Open Watch streams are calls in flight: the server waits the grace
        # out before cancelling them (buf reports that as "unavailable").
        print(f"down {elapsed:.2f}s after SIGTERM with two Watch streams "
              f"open (--shutdown_grace={WATCH_GRACE_S}s); buf: "
              f"{' '.join(watches[''].stderr().split())}",
              file=sys.stderr)


class LogTest(unittest.TestCase):
    """--log_format and what the start-up line says."""

    TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_json_log_is_one_object_per_line_without_per_call_lines(self):
        server = harness.start_server(self, "--log_format=json",
                                      "--max_users=3", "--reservation_ttl=20s",
                                      "--max_reservation_ttl=3m",
                                      "--shutdown_grace=4s")
        # 50 calls of every kind, failed ones too: none of them is logged.
        commands = [
            ("add-user", "jam-{n}", "user-{n}"),
            ("add-user", "", "user-{n}"),
            ("current-jam", "guest-{n}"),
            ("has-capacity", "jam-{n}"),
            ("stats",),
        ]
        for n in range(50):
            command = commands[n % len(commands)]
            result = harness.jamctl(server.target,
                                    *(arg.format(n=n) for arg in command))
            self.assertIn(result.returncode, (0, 1), describe(result))
        server.process.send_signal(signal.SIGTERM)
        self.assertEqual(server.wait_for_exit(), 0, server.stderr())

        lines = server.lines()
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as error:
                self.fail(f"not JSON ({error}): {line!r}")
        for entry in entries:
            self.assertRegex(entry.get("time", ""), self.TIME, entry)
            self.assertEqual(entry.get("level"), "info", entry)
            self.assertIsInstance(entry.get("msg"), str, entry)
        self.assertEqual([entry["msg"] for entry in entries], [
            "jam-balancer started",
            "received Terminated, shutting down: health NOT_SERVING, "
            "draining calls", "jam-balancer stopped"
        ], lines)

        start = entries[0]
        effective = {
            "listen": "127.0.0.1:0",
            "port": str(server.port),
            "metrics_listen": "127.0.0.1:0",
            "metrics_port": str(server.metrics_port),
            "max_users": "3",
            "reservation_ttl": "20s",
            "max_reservation_ttl": "3m",
            "shutdown_grace": "4s",
        }
        self.assertEqual({key: start.get(key) for key in effective}, effective,
                         start)
        self.assertNotEqual(start["metrics_port"], "0")
        self.assertTrue(start.get("version"), start)

    def test_unknown_log_format_is_refused(self):
        server = harness.launch_server(self, "--log_format=xml")
        self.assertIsNone(server.wait_for_start(), server.stderr())
        self.assertEqual(server.process.returncode, 1, server.stderr())
        self.assertIn("log_format must be text or json", server.stderr())
        self.assertIn("log_format=xml", server.stderr())

    def test_empty_metrics_listen_turns_metrics_off(self):
        for log_format, expected in (
            ("text", "metrics_listen=off metrics_port=0"),
            ("json", '"metrics_listen":"off","metrics_port":"0"'),
        ):
            with self.subTest(log_format=log_format):
                server = harness.start_server(self, "--metrics_listen=",
                                              f"--log_format={log_format}")
                self.assertEqual(server.metrics_port, 0)
                self.assertIn(expected, server.start_line)
                # Still serving gRPC.
                json_lines(self, harness.jamctl(server.target, "stats"))


if __name__ == "__main__":
    harness.main()
