#!/usr/bin/env python3
"""Failover and handover times of replicated jam-balancers (issue 13), for
tools/benchmark.sh.

Starts three etcd members on loopback with fast timings
(tests/system/etcd_cluster.py: --heartbeat-interval 50 --election-timeout
500) and two jam-balancer replicas (--etcd_endpoints, --election_ttl=1s,
--resync_grace=0s), then measures:

  failover_kill     --runs times: kill -9 of the leader, then the time until
                    the standby answers a balancer call (GetStats, polled
                    every --poll_interval); the killed replica is started
                    again as the new standby.
  handover_sigterm  --runs times: the same with SIGTERM (the leader resigns
                    first, then drains and exits).
  failover_kill_client, handover_sigterm_client
                    once each: the time from the kill (or SIGTERM) until
                    `jamctl --target=LEADER,STANDBY --deadline=5s stats`,
                    started right after it, exits with the answer.

The poll is an in-process gRPC call over HTTP/2 (h2c) with the standard
library only: one GetStats on a fresh connection, answered when the reply
holds a message and grpc-status 0. It is checked first against the leader
(answers) and the standby (UNAVAILABLE); if the check fails (or with
--probe=jamctl) each poll is a `jamctl stats` process instead. The time
counts until the first answered poll returned.

Prints one JSON line per measurement on stdout, then a summary line
({"kind": "summary", ...}: per workload the list of times). Progress goes to
stderr. Every process is started here and killed by its PID at the end, also
on failure or on SIGTERM/SIGINT; every wait is bounded.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "system"))
from etcd_cluster import EtcdCluster  # noqa: E402

SERVICE = "jambalancer.v1.JamBalancerService"
TTL = "1s"
# Bounds of the waits.
START_TIMEOUT_S = 20  # a replica logs its port and stands by
LEADER_TIMEOUT_S = 20  # one replica leads after the start
ANSWER_TIMEOUT_S = 10  # the standby answers after the kill
EXIT_TIMEOUT_S = 15  # a SIGTERM'd replica exits
CLIENT_TIMEOUT_S = 15  # jamctl --deadline=5s, with room to start
PROBE_TIMEOUT_S = 1.0  # one in-process call
# After a replica stands by again, before the next kill: the leader's
# keepalives and the new standby's campaign settle.
SETTLE_S = 0.5


def log(message):
    print(f"failover: {message}", file=sys.stderr, flush=True)


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--bin_dir", required=True,
                        help="build directory: server/jam-balancer, "
                        "client/jamctl")
    parser.add_argument("--runs", type=int, default=5,
                        help="kill -9 runs and SIGTERM runs (5 each)")
    parser.add_argument("--poll_interval", type=float, default=None,
                        help="seconds between polls (0.005 in process, "
                        "0.02 with jamctl)")
    parser.add_argument("--probe", choices=("auto", "inprocess", "jamctl"),
                        default="auto")
    parser.add_argument("--work_dir", default=None,
                        help="the replicas' logs (default: a temporary "
                        "folder, removed unless a run fails)")
    return parser.parse_args()


# --- A gRPC unary call over HTTP/2 without TLS, standard library only. ---

_STATIC_TABLE = [
    (":authority", ""), (":method", "GET"), (":method", "POST"),
    (":path", "/"), (":path", "/index.html"), (":scheme", "http"),
    (":scheme", "https"), (":status", "200"), (":status", "204"),
    (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate")] + [(name, "") for name in (
        "accept-language accept-ranges accept access-control-allow-origin "
        "age allow authorization cache-control content-disposition "
        "content-encoding content-language content-length content-location "
        "content-range content-type cookie date etag expect expires from "
        "host if-match if-modified-since if-none-match if-range "
        "if-unmodified-since last-modified link location max-forwards "
        "proxy-authenticate proxy-authorization range referer refresh "
        "retry-after server set-cookie strict-transport-security "
        "transfer-encoding user-agent vary via www-authenticate").split()]
assert len(_STATIC_TABLE) == 61

_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY, _CONTINUATION = (
    0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x9)
_END_STREAM, _ACK, _END_HEADERS, _PADDED, _PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20


class _Hpack:
    """HPACK decoding (RFC 7541) of the response's header blocks. Strings
    sent Huffman-coded come out as None: grpc-status and grpc-message are
    not (gRPC sends only -bin values so), and the self-check of the probe
    would see it if they were."""

    def __init__(self):
        self.dynamic = []
        self.size = 0
        self.max_size = 4096

    @staticmethod
    def _int(data, pos, prefix_bits):
        mask = (1 << prefix_bits) - 1
        value = data[pos] & mask
        pos += 1
        if value < mask:
            return value, pos
        shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, pos

    def _string(self, data, pos):
        huffman = data[pos] & 0x80
        length, pos = self._int(data, pos, 7)
        raw = data[pos:pos + length]
        return (None if huffman else raw.decode("latin-1")), pos + length

    def _entry(self, index):
        if 1 <= index <= len(_STATIC_TABLE):
            return _STATIC_TABLE[index - 1]
        return self.dynamic[index - len(_STATIC_TABLE) - 1]

    def _evict(self):
        while self.size > self.max_size and self.dynamic:
            name, value = self.dynamic.pop()
            self.size -= len(name or "") + len(value or "") + 32

    def decode(self, block):
        headers = []
        pos = 0
        while pos < len(block):
            byte = block[pos]
            if byte & 0x80:  # Indexed.
                index, pos = self._int(block, pos, 7)
                headers.append(self._entry(index))
                continue
            if byte & 0xE0 == 0x20:  # Dynamic table size update.
                self.max_size, pos = self._int(block, pos, 5)
                self._evict()
                continue
            indexing = byte & 0x40
            index, pos = self._int(block, pos, 6 if indexing else 4)
            if index:
                name = self._entry(index)[0]
            else:
                name, pos = self._string(block, pos)
            value, pos = self._string(block, pos)
            headers.append((name, value))
            if indexing:
                self.dynamic.insert(0, (name, value))
                self.size += len(name or "") + len(value or "") + 32
                self._evict()
        return headers


def _frame(kind, flags, stream, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) +
            struct.pack(">I", stream) + payload)


def _literal(name, value):
    """A header as a literal without indexing, new name, plain strings."""
    out = b"\x00"
    for text in (name, value):
        raw = text.encode()
        assert len(raw) < 127
        out += bytes((len(raw),)) + raw
    return out


def _read_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def grpc_call(target, method, timeout=PROBE_TIMEOUT_S):
    """One unary call with an empty request on a fresh connection. Returns
    (answered, grpc_status, grpc_message): answered when a message came and
    grpc-status is 0; grpc_status None if the call got no status (no
    connection, reset, timeout)."""
    host, port = target.rsplit(":", 1)
    request = (b"\x83\x86" +  # :method POST, :scheme http
               b"\x04" + bytes((len(method),)) + method.encode() +  # :path
               b"\x01" + bytes((len(target),)) + target.encode() +
               _literal("content-type", "application/grpc") +
               _literal("te", "trailers"))
    try:
        with socket.create_connection((host, int(port)),
                                      timeout=timeout) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(timeout)
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
                         _frame(_SETTINGS, 0, 0) +
                         _frame(_HEADERS, _END_HEADERS, 1, request) +
                         _frame(_DATA, _END_STREAM, 1, b"\0\0\0\0\0"))
            hpack = _Hpack()
            headers, message, block, ended = {}, b"", b"", False
            while not ended or block:
                head = _read_exact(sock, 9)
                length = int.from_bytes(head[:3], "big")
                kind, flags = head[3], head[4]
                stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                payload = _read_exact(sock, length)
                if kind == _SETTINGS and not flags & _ACK:
                    sock.sendall(_frame(_SETTINGS, _ACK, 0))
                    continue
                if kind == _PING and not flags & _ACK:
                    sock.sendall(_frame(_PING, _ACK, 0, payload))
                    continue
                if kind == _GOAWAY and int.from_bytes(payload[:4],
                                                      "big") < 1:
                    return False, None, "GOAWAY"
                if stream != 1:
                    continue
                if kind == _RST_STREAM:
                    return False, None, "RST_STREAM"
                if kind in (_DATA, _HEADERS) and flags & _PADDED:
                    payload = payload[1:len(payload) - payload[0]]
                if kind == _HEADERS and flags & _PRIORITY:
                    payload = payload[5:]
                if kind == _DATA:
                    message += payload
                elif kind in (_HEADERS, _CONTINUATION):
                    block += payload
                    if flags & _END_HEADERS:
                        headers.update(hpack.decode(block))
                        block = b""
                if kind in (_DATA, _HEADERS) and flags & _END_STREAM:
                    ended = True
    except (OSError, ConnectionError, IndexError, ValueError) as error:
        return False, None, type(error).__name__
    status = headers.get("grpc-status")
    status = int(status) if status and status.isdigit() else None
    return (status == 0 and len(message) >= 5, status,
            headers.get("grpc-message") or "")


# --- The replicas and the measurements. ---


class Cleanups:
    """What EtcdCluster registers (as a test case's addCleanup), run in
    reverse at the end."""

    def __init__(self):
        self.calls = []
        self.keep_files = False

    def addCleanup(self, function, *args):  # noqa: N802 (unittest's name)
        self.calls.append((function, args))

    def run(self):
        for function, args in reversed(self.calls):
            if self.keep_files and function is shutil.rmtree:
                continue
            try:
                function(*args)
            except Exception as error:  # Go on killing the others.
                log(f"cleanup: {error!r}")


class Replica:
    """One jam-balancer process on 127.0.0.1, its stderr in a log file."""

    count = 0

    def __init__(self, bench):
        Replica.count += 1
        self.name = f"replica{Replica.count}"
        self.log_path = os.path.join(bench.work_dir, f"{self.name}.log")
        self.args = [bench.server, "--listen=127.0.0.1:0", "--metrics_listen=",
                     f"--etcd_endpoints={bench.etcd.endpoints}",
                     f"--election_ttl={TTL}", "--resync_grace=0s"]
        with open(self.log_path, "w") as log_file:
            self.process = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log_file)
        bench.processes.append(self.process)
        self.port = None

    def text(self):
        with open(self.log_path, errors="replace") as log_file:
            return log_file.read()

    def wait_for(self, predicate, what, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if predicate(text):
                return text
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with "
                                   f"{self.process.returncode} before {what}"
                                   f"; log:\n{text}")
            time.sleep(0.01)
        raise RuntimeError(f"{self.name}: not {what} within {timeout} s; "
                           f"log:\n{self.text()}")

    def wait_for_port(self):
        text = self.wait_for(lambda t: " port=" in t, "logging its port",
                             START_TIMEOUT_S)
        self.port = int(text.split(" port=", 1)[1].split()[0])

    @property
    def target(self):
        return f"127.0.0.1:{self.port}"

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=EXIT_TIMEOUT_S)


class Bench:

    def __init__(self, args, cleanups):
        self.args = args
        self.server = os.path.join(args.bin_dir, "server", "jam-balancer")
        self.jamctl = os.path.join(args.bin_dir, "client", "jamctl")
        for binary in (self.server, self.jamctl):
            if not os.access(binary, os.X_OK):
                raise RuntimeError(f"{binary} is not built")
        self.cleanups = cleanups
        self.processes = []
        cleanups.addCleanup(self.kill_all)
        if args.work_dir:
            os.makedirs(args.work_dir, exist_ok=True)
            self.work_dir = args.work_dir
        else:
            self.work_dir = tempfile.mkdtemp(prefix="jam-failover-")
            cleanups.addCleanup(shutil.rmtree, self.work_dir, True)
        self.probe = args.probe
        self.poll_interval = args.poll_interval
        self.etcd = None
        self.results = {}

    def kill_all(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            try:
                process.wait(timeout=EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log(f"process {process.pid} did not exit after SIGKILL")

    def jamctl_run(self, *args, timeout=CLIENT_TIMEOUT_S):
        process = subprocess.Popen(
            [self.jamctl, *args], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.processes.append(process)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            raise RuntimeError(f"jamctl {' '.join(args)}: no exit within "
                               f"{timeout} s")
        finally:
            self.processes.remove(process)
        return process.returncode, out, err

    def answers(self, target):
        """Whether `target` answers GetStats."""
        if self.probe == "jamctl":
            return self.jamctl_run(f"--target={target}", "--deadline=1s",
                                   "stats")[0] == 0
        return grpc_call(target, f"/{SERVICE}/GetStats")[0]

    def leader(self, replicas):
        """(leading replica, epoch) as `jamctl leader` given every replica
        says."""
        code, out, err = self.jamctl_run(
            "--target=" + ",".join(r.target for r in replicas),
            "--deadline=5s", "leader")
        if code != 0:
            raise RuntimeError(f"jamctl leader failed: {err.strip()}")
        answer = json.loads(out.splitlines()[0])
        for replica in replicas:
            if replica.target == answer["leader"]:
                return replica, int(answer["epoch"])
        raise RuntimeError(f"jamctl leader named {answer['leader']}, not one "
                           f"of {[r.target for r in replicas]}")

    def start_standby(self):
        """Starts a replica and waits until it stands by behind the
        leader."""
        replica = Replica(self)
        replica.wait_for_port()
        replica.wait_for(lambda t: "leadership: standing by" in t,
                         "standing by", START_TIMEOUT_S)
        return replica

    def check_probe(self, leader, standby):
        """The in-process call must tell the leader from the standby as
        jamctl does; else polls use jamctl."""
        if self.probe == "jamctl":
            return
        method = f"/{SERVICE}/GetStats"
        on_leader = grpc_call(leader.target, method)
        on_standby = grpc_call(standby.target, method)
        if on_leader[0] and not on_standby[0] and on_standby[1] == 14:
            self.probe = "inprocess"
            log(f"the standby refuses: UNAVAILABLE {on_standby[2]!r}")
            return
        if self.probe == "inprocess":
            raise RuntimeError(f"in-process GetStats: leader {on_leader}, "
                               f"standby {on_standby}")
        log(f"in-process GetStats not usable (leader {on_leader}, standby "
            f"{on_standby}): polling with jamctl")
        self.probe = "jamctl"

    def call_latency_ms(self, target, calls=20):
        """Median time of one poll against a leader: the poll's own part of
        each measured time."""
        times = []
        for _ in range(calls):
            began = time.monotonic()
            if not self.answers(target):
                raise RuntimeError(f"{target} stopped answering")
            times.append((time.monotonic() - began) * 1e3)
        return statistics.median(times)

    def wait_until_answers(self, replica, since):
        """Polls `replica` until it answers; returns (seconds from `since`
        until the answered poll returned, seconds until it was sent,
        polls)."""
        polls = 0
        while True:
            sent = time.monotonic()
            polls += 1
            if self.answers(replica.target):
                return time.monotonic() - since, sent - since, polls
            if sent - since > ANSWER_TIMEOUT_S:
                raise RuntimeError(
                    f"{replica.name} did not answer within "
                    f"{ANSWER_TIMEOUT_S} s; log:\n{replica.text()}")
            time.sleep(max(0.0, sent + self.poll_interval - time.monotonic()))

    def stop(self, replica, kind):
        if kind == "kill":
            replica.process.kill()
        else:
            replica.process.send_signal(signal.SIGTERM)

    def finish_stop(self, replica, kind, since):
        """Waits for the stopped replica to exit; returns its exit code and
        when it exited (s after `since`), None for kill -9."""
        try:
            code = replica.process.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{replica.name} did not exit within "
                               f"{EXIT_TIMEOUT_S} s of SIGTERM; log:\n"
                               f"{replica.text()}")
        exited = time.monotonic() - since
        self.processes.remove(replica.process)
        if kind == "sigterm" and code != 0:
            raise RuntimeError(f"{replica.name} exited {code} after SIGTERM; "
                               f"log:\n{replica.text()}")
        return code, (exited if kind == "sigterm" else None)

    def one_run(self, replicas, kind, run, client):
        """Stops the leader (kill -9 or SIGTERM), measures, starts it again
        as the standby; returns the measurement and the new replicas."""
        leader, epoch = self.leader(replicas)
        standby = replicas[1 - replicas.index(leader)]
        workload = ("failover_kill" if kind == "kill" else
                    "handover_sigterm") + ("_client" if client else "")
        stopped = time.monotonic()
        self.stop(leader, kind)
        row = {"kind": workload, "run": run}
        if client:
            # A client given both replicas, the old leader first, started
            # right after the stop.
            code, out, err = self.jamctl_run(
                f"--target={leader.target},{standby.target}",
                "--deadline=5s", "stats")
            row["answered_s"] = round(time.monotonic() - stopped, 4)
            if code != 0:
                raise RuntimeError(f"jamctl --target=A,B stats after the "
                                   f"{kind}: exit {code}: {err.strip()}")
            if not self.answers(standby.target):
                raise RuntimeError(f"{standby.name} did not answer after "
                                   "jamctl --target=A,B did")
        else:
            answered, sent, polls = self.wait_until_answers(standby, stopped)
            row.update(answered_s=round(answered, 4),
                       answered_poll_sent_s=round(sent, 4), polls=polls)
        code, exited = self.finish_stop(leader, kind, stopped)
        if exited is not None:
            row["old_leader_exited_s"] = round(exited, 4)
        new_leader, new_epoch = self.leader([standby])
        if new_epoch <= epoch:
            raise RuntimeError(f"epoch {new_epoch} after {epoch}")
        row.update(epoch_before=epoch, epoch_after=new_epoch)
        print(json.dumps(row), flush=True)
        log(f"{workload} {run}: answered {row['answered_s'] * 1e3:,.0f} ms "
            f"after the {'kill -9' if kind == 'kill' else 'SIGTERM'}"
            + (f" (old leader exited after {exited * 1e3:,.0f} ms)"
               if exited is not None else ""))
        self.results.setdefault(workload, []).append(row)
        restarted = self.start_standby()
        time.sleep(SETTLE_S)
        return [standby, restarted]

    def run(self):
        began = time.monotonic()
        self.etcd = EtcdCluster(self.cleanups)
        etcd_version = subprocess.run(
            [self.etcd.etcd, "--version"], capture_output=True, text=True,
            timeout=10).stdout.split("\n")[0].removeprefix("etcd Version: ")
        log(f"etcd {etcd_version} at {self.etcd.endpoints}")
        replicas = [Replica(self), Replica(self)]
        for replica in replicas:
            replica.wait_for_port()
        deadline = time.monotonic() + LEADER_TIMEOUT_S
        while True:
            leading = [r for r in replicas
                       if self.jamctl_run(f"--target={r.target}",
                                          "--deadline=1s", "stats")[0] == 0]
            if len(leading) == 1:
                break
            if len(leading) > 1:
                raise RuntimeError("both replicas answered")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no leader within {LEADER_TIMEOUT_S} s")
            time.sleep(0.05)
        standby = replicas[1 - replicas.index(leading[0])]
        standby.wait_for(lambda t: "leadership: standing by" in t,
                         "standing by", START_TIMEOUT_S)
        self.check_probe(leading[0], standby)
        if self.poll_interval is None:
            self.poll_interval = 0.005 if self.probe == "inprocess" else 0.02
        latency = self.call_latency_ms(leading[0].target)
        log(f"polls: {self.probe} GetStats every "
            f"{self.poll_interval * 1e3:g} ms (one takes {latency:.1f} ms)")
        time.sleep(SETTLE_S)
        for kind in ("kill", "sigterm"):
            for run in range(1, self.args.runs + 1):
                replicas = self.one_run(replicas, kind, run, client=False)
            replicas = self.one_run(replicas, kind, 1, client=True)
        common = {"runs": self.args.runs, "ttl": TTL, "probe": self.probe,
                  "poll_interval_ms": self.poll_interval * 1e3,
                  "poll_ms": round(latency, 2), "etcd": etcd_version}
        summary = {"kind": "summary",
                   "elapsed_s": round(time.monotonic() - began, 1)}
        for workload, rows in self.results.items():
            summary[workload] = {
                "times_s": [row["answered_s"] for row in rows], **common}
            exited = [row["old_leader_exited_s"] for row in rows
                      if "old_leader_exited_s" in row]
            if exited:
                summary[workload]["old_leader_exited_s"] = exited
        print(json.dumps(summary), flush=True)


def main():
    args = parse_args()
    if args.runs < 1:
        sys.exit("failover: --runs must be at least 1")

    def terminated(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminated)
    cleanups = Cleanups()
    bench = None
    try:
        bench = Bench(args, cleanups)
        bench.run()
    except Exception as error:
        cleanups.keep_files = True
        log(f"FAILED: {error}")
        if bench is not None:
            log(f"logs kept in {bench.work_dir}"
                + (f" and {bench.etcd.dir}" if bench.etcd else ""))
        return 1
    finally:
        cleanups.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
