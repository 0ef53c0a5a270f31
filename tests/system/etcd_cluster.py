"""Three real etcd members on loopback (or on another address of this
machine, `host`) for the system tests of replicated balancers: ports asked
of the OS, data in a temporary folder, etcd's fast timings
(--heartbeat-interval 50 --election-timeout 500), so that a 1 s lease works.
Every member is killed by the PID started here, by the test's cleanup, also
when the test fails.

With `tls` (a certs.Certs), clients reach the members over TLS only
(https:// client URLs, the server certificate, --client-cert-auth with the
CA: a client certificate that CA signed is required); peers stay plain.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

# How long the members may take to form a healthy cluster.
HEALTHY_TIMEOUT_S = 20


def _free_ports(count, host="127.0.0.1"):
    """`count` distinct ports on `host` that were free a moment ago."""
    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind((host, 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


def _binary(name):
    path = shutil.which(name) or f"/usr/bin/{name}"
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"{name} not found: install the Debian packages etcd-server and "
            "etcd-client (tools/install-deps.sh does)")
    return path


class EtcdCluster:
    """Three etcd members listening on `host` (an IPv4 address of this
    machine; loopback by default). endpoints: "HOST:P,..." for
    --etcd_endpoints."""

    def __init__(self, test, members=3, host="127.0.0.1", tls=None):
        self.host = host
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.etcd = _binary("etcd")
        self.etcdctl = _binary("etcdctl")
        self.dir = tempfile.mkdtemp(prefix="jam-etcd-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        ports = _free_ports(2 * members, host)
        self.client_ports = ports[:members]
        self.peer_ports = ports[members:]
        self.names = [f"m{i}" for i in range(members)]
        self.initial_cluster = ",".join(
            f"{name}=http://{host}:{port}"
            for name, port in zip(self.names, self.peer_ports))
        self.processes = [None] * members
        test.addCleanup(self.kill_all)
        for i in range(members):
            self.start(i)
        self.wait_healthy()

    @property
    def endpoints(self):
        return ",".join(f"{self.host}:{port}" for port in self.client_ports)

    def start(self, i):
        """Starts (or restarts, keeping its data) member i."""
        client = f"{self.scheme}://{self.host}:{self.client_ports[i]}"
        peer = f"http://{self.host}:{self.peer_ports[i]}"
        tls = []
        if self.tls:
            tls = ["--cert-file", self.tls.server_crt,
                   "--key-file", self.tls.server_key,
                   "--trusted-ca-file", self.tls.ca_crt,
                   "--client-cert-auth"]
        log = open(os.path.join(self.dir, f"{self.names[i]}.log"), "a")
        self.processes[i] = subprocess.Popen(
            [self.etcd, "--name", self.names[i],
             "--data-dir", os.path.join(self.dir, self.names[i]),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", self.initial_cluster,
             "--initial-cluster-state", "new",
             "--initial-cluster-token", os.path.basename(self.dir),
             "--heartbeat-interval", "50", "--election-timeout", "500",
             *tls],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()

    def etcdctl_run(self, *args, endpoints=None, timeout=10):
        tls = []
        if self.tls:
            tls = [f"--cacert={self.tls.ca_crt}",
                   f"--cert={self.tls.client_crt}",
                   f"--key={self.tls.client_key}"]
        return subprocess.run(
            [self.etcdctl, f"--endpoints={endpoints or self.endpoints}",
             "--dial-timeout=2s", "--command-timeout=3s", *tls, *args],
            env={**os.environ, "ETCDCTL_API": "3"},
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout)

    def wait_healthy(self, timeout=HEALTHY_TIMEOUT_S):
        """Waits until every running member reports healthy."""
        running = [f"{self.host}:{port}" for port, p in
                   zip(self.client_ports, self.processes)
                   if p is not None and p.poll() is None]
        deadline = time.monotonic() + timeout
        result = None
        while time.monotonic() < deadline:
            result = self.etcdctl_run("endpoint", "health",
                                      endpoints=",".join(running))
            if result.returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError(
            f"etcd not healthy after {timeout} s: {result.stderr.strip()}; "
            f"logs in {self.dir}")

    def signal(self, i, sig):
        process = self.processes[i]
        if process is not None and process.poll() is None:
            process.send_signal(sig)

    def kill(self, i):
        """kill -9 of member i (by its PID), waited for."""
        process = self.processes[i]
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def kill_all(self):
        for i, process in enumerate(self.processes):
            if process is None:
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # A stopped one too.
                process.kill()
            process.wait(timeout=10)
