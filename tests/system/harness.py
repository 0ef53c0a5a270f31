"""Shared fixtures of the system tests: the binaries under test, a server
process on a loopback port, runners for jamctl and buf curl, and Background
for a client left running (a stream, a watch).

Every wait is bounded. Every server is started through start_server(), which
registers its kill with the test case before anything else can fail, so no
server outlives its test.
"""

import argparse
import datetime
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest

# Paths of the binaries, set by main() from the command line.
SERVER = None
JAMCTL = None
BUF = None
# Further binaries a test asked main() for, by flag name.
BINARIES = {}

# How long a server may take to log its port, and a stopped one to exit.
START_TIMEOUT_S = 10
EXIT_TIMEOUT_S = 10
# Ceiling for one jamctl or buf run.
COMMAND_TIMEOUT_S = 30

UUID_V4 = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# The start-up line names the ports as port=N metrics_port=N (text) or
# "port":"N","metrics_port":"N" (--log_format=json).
_PORT_LINE = re.compile(r'\bport=(\d+)\b|"port":"(\d+)"')
_METRICS_PORT = re.compile(r'\bmetrics_port=(\d+)\b|"metrics_port":"(\d+)"')


class Server:
    """One jam-balancer process listening on 127.0.0.1.

    A reader thread drains stderr into lines() so the server never blocks
    on a full pipe, and so tests can wait for a log line.
    """

    def __init__(self, flags, prefix=(), host="127.0.0.1"):
        """Runs `prefix + [SERVER, *flags]` (a prefix that execs the server,
        such as `ip netns exec NAME`, keeps the PID the server's), listening
        on `host`."""
        self.host = host
        self.args = [*prefix, SERVER, *flags]
        self.process = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace")
        self.port = None
        self.metrics_port = None  # 0 if metrics are off.
        self.start_line = None
        self._lines = []
        self._lock = threading.Lock()
        self._new_lines = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stderr:
            with self._lock:
                self._lines.append(line)
            self._new_lines.put(line)
        self._new_lines.put(None)  # End of stderr: the process is exiting.

    def lines(self):
        with self._lock:
            return list(self._lines)

    def stderr(self):
        return "".join(self.lines())

    def wait_for_start(self, timeout=START_TIMEOUT_S):
        """Waits for the start-up log line, sets port, metrics_port and
        start_line from it and returns the port, or returns None if the
        server exits first. Raises AssertionError if `timeout`
        passes with neither."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no port= line within {timeout}s; stderr:\n"
                    f"{self.stderr()}")
            try:
                line = self._new_lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.wait_for_exit()
                return None
            match = _PORT_LINE.search(line)
            if match:
                self.port = int(match.group(1) or match.group(2))
                metrics = _METRICS_PORT.search(line)
                if metrics:
                    self.metrics_port = int(metrics.group(1) or
                                            metrics.group(2))
                self.start_line = line
                return self.port

    def wait_for_port(self, timeout=START_TIMEOUT_S):
        """Returns the port from the start-up log line. Raises AssertionError
        if the server exits or `timeout` passes without one."""
        if self.wait_for_start(timeout) is None:
            raise AssertionError(
                f"server exited with {self.process.returncode} before "
                f"logging its port; stderr:\n{self.stderr()}")
        return self.port

    def wait_for_exit(self, timeout=EXIT_TIMEOUT_S):
        """Returns the exit code; raises subprocess.TimeoutExpired."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=EXIT_TIMEOUT_S)
        return code

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=EXIT_TIMEOUT_S)
        self._reader.join(timeout=EXIT_TIMEOUT_S)
        self.process.stderr.close()

    @property
    def target(self):
        return f"{self.host}:{self.port}"


class Background:
    """A client process left running while the test goes on (a stream, a
    watch), whose stdout and stderr are read as they come. Its kill is
    registered with the test, so it never outlives it."""

    def __init__(self, test, args):
        self.process = subprocess.Popen(args,
                                        stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE,
                                        text=True,
                                        errors="replace")
        test.addCleanup(self.kill)
        self._changed = threading.Condition()
        self._stdout = []
        self._stderr = []
        self._open_pipes = 2
        self._readers = [
            threading.Thread(target=self._read,
                             args=(self.process.stdout, self._stdout),
                             daemon=True),
            threading.Thread(target=self._read,
                             args=(self.process.stderr, self._stderr),
                             daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, pipe, chunks):
        for line in pipe:
            with self._changed:
                chunks.append(line)
                self._changed.notify_all()
        with self._changed:
            self._open_pipes -= 1
            self._changed.notify_all()

    def stdout(self):
        with self._changed:
            return "".join(self._stdout)

    def stderr(self):
        with self._changed:
            return "".join(self._stderr)

    def wait_for_stdout(self, predicate, timeout=COMMAND_TIMEOUT_S):
        """Waits until predicate(stdout so far) holds; returns whether it
        did, False also if both pipes closed (the process ended) or
        `timeout` passed first."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._open_pipes == 0 or predicate("".join(
                    self._stdout)),
                timeout=timeout)
            return bool(predicate("".join(self._stdout)))

    def wait(self, timeout=EXIT_TIMEOUT_S):
        """Returns the exit code once the process ended and its output was
        read; raises subprocess.TimeoutExpired."""
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=EXIT_TIMEOUT_S)
        return code

    def describe(self):
        return (f"exit {self.process.returncode}\nstdout: {self.stdout()}\n"
                f"stderr: {self.stderr()}")

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.wait()
        self.process.stdout.close()
        self.process.stderr.close()


def launch_server(test, *flags):
    """Starts jam-balancer with `flags` (default --listen=127.0.0.1:0 and
    --metrics_listen=127.0.0.1:0) and registers its kill with `test`. Does
    not wait for it."""
    if not any(flag.startswith("--listen") for flag in flags):
        flags = ("--listen=127.0.0.1:0", *flags)
    if not any(flag.startswith("--metrics_listen") for flag in flags):
        flags = ("--metrics_listen=127.0.0.1:0", *flags)
    server = Server(flags)
    test.addCleanup(server.kill)
    return server


def start_server(test, *flags):
    """launch_server, then waits until the server logged its port."""
    server = launch_server(test, *flags)
    server.wait_for_port()
    return server


def run(args, timeout=COMMAND_TIMEOUT_S):
    return subprocess.run(
        args,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout)


def jamctl(target, *args, deadline="5s"):
    """Runs jamctl against `target`; returns the CompletedProcess."""
    return run([JAMCTL, f"--target={target}", f"--deadline={deadline}",
                *args])


def assert_calls_fail(test, run, cases):
    """For each (args, message) in `cases`: run(*args) exits 1, prints
    nothing on stdout and `message` on stderr."""
    for args, message in cases:
        with test.subTest(args=args):
            result = run(*args)
            test.assertEqual(result.returncode, 1, describe(result))
            test.assertEqual(result.stdout, "")
            test.assertIn(message, result.stderr)


def describe(result):
    return (f"exit {result.returncode}\nstdout: {result.stdout}\n"
            f"stderr: {result.stderr}")


def json_lines(test, result):
    """Asserts `result` succeeded; returns its stdout parsed as JSON lines."""
    test.assertEqual(result.returncode, 0, describe(result))
    lines = result.stdout.splitlines()
    test.assertTrue(lines, describe(result))
    return [json.loads(line) for line in lines]


def buf_curl(*args):
    """Runs `buf curl` with gRPC over plaintext HTTP/2."""
    return run([BUF, "curl", "--timeout", "20s", "--protocol", "grpc",
                "--http2-prior-knowledge", *args])


def epoch_of(target):
    """The jam-balancer-epoch trailer of a GetStats answered by `target`
    (host:port of a replica), as buf curl (a third-party client) shows it;
    None if there is none."""
    result = buf_curl(
        "-v", "-d", "{}",
        f"http://{target}/jambalancer.v1.JamBalancerService/GetStats")
    match = re.search(r"jam-balancer-epoch: (\d+)", result.stderr, re.I)
    return int(match.group(1)) if match else None


def python_protos():
    """The generated Python module of the API (jam_balancer_pb2), made by
    protoc into a temporary folder, for tests that call on grpcio."""
    out = tempfile.mkdtemp(prefix="jam-balancer-pb-")
    proto_root = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "..", "..", "proto")
    subprocess.run(["protoc", f"--python_out={out}", f"-I{proto_root}",
                    "jambalancer/v1/jam_balancer.proto"], check=True,
                   timeout=30)
    sys.path.insert(0, out)
    from jambalancer.v1 import jam_balancer_pb2
    return jam_balancer_pb2


def logged_at(server, message):
    """The Unix times (s) of `server`'s log lines holding `message` (text
    format: 2026-01-01T00:00:00.000Z INFO leadership: ...), in order."""
    times = []
    for line in server.lines():
        if message in line:
            stamp = datetime.datetime.strptime(line.split(" ", 1)[0],
                                               "%Y-%m-%dT%H:%M:%S.%fZ")
            times.append(
                stamp.replace(tzinfo=datetime.timezone.utc).timestamp())
    return times


def main(extra_binaries=()):
    """Reads the binaries' paths (--server, --jamctl, --buf, and --NAME for
    each NAME of `extra_binaries`, kept in BINARIES), then runs the tests."""
    global SERVER, JAMCTL, BUF
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--server", required=True)
    parser.add_argument("--jamctl", required=True)
    parser.add_argument("--buf", required=True)
    for name in extra_binaries:
        parser.add_argument(f"--{name}", required=True)
    known, rest = parser.parse_known_args()
    SERVER, JAMCTL, BUF = (os.path.abspath(path) for path in
                           (known.server, known.jamctl, known.buf))
    for name in extra_binaries:
        BINARIES[name] = os.path.abspath(getattr(known, name))
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
