"""Calls cancelled before their request message arrives: a raw HTTP/2
client (python3-h2, attack_clients.py) opens unary calls with HEADERS only
and resets them. The server must not parse the missing message as an empty
request: they are counted as Canceled, never as InvalidArgument (which would
set off the invalid-requests alert), and a real call still works after."""

import re
import socket
import time
import unittest
import urllib.request

from hyperframe.frame import HeadersFrame, RstStreamFrame

import attack_clients
import harness

CALLS = 200


def handled(metrics_port):
    """grpc_server_handled_total by (method, code)."""
    text = urllib.request.urlopen(
        f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    counts = {}
    for match in re.finditer(
            r'^grpc_server_handled_total\{([^}]*)\} (\S+)$', text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        counts[(labels["grpc_method"], labels["grpc_code"])] = float(
            match.group(2))
    return counts


class CancelledCallTest(unittest.TestCase):

    def test_cancelled_before_the_message_is_not_invalid(self):
        server = harness.start_server(self, "--resync_grace=0s")
        target = f"127.0.0.1:{server.port}"
        sock = attack_clients.connect("127.0.0.1", server.port)
        self.addCleanup(sock.close)
        attack_clients.handshake(sock)
        # Blocking, so that drain's MSG_DONTWAIT reads return at once (with
        # a timeout Python waits for data first).
        sock.settimeout(None)
        block = attack_clients.header_block(target, "AddUser")
        # In batches within the stream limit: HEADERS only, a pause for the
        # server to start the calls, then RST_STREAM(CANCEL).
        for first in range(0, CALLS, 50):
            ids = [1 + 2 * i for i in range(first, first + 50)]
            sock.sendall(b"".join(
                HeadersFrame(i, block, flags=["END_HEADERS"]).serialize()
                for i in ids))
            time.sleep(0.05)
            sock.sendall(b"".join(
                RstStreamFrame(i, error_code=attack_clients.CANCEL).serialize()
                for i in ids))
            attack_clients.drain(sock)
        deadline = time.monotonic() + 10
        counts = handled(server.metrics_port)
        while (counts.get(("AddUser", "Canceled"), 0) < CALLS and
               time.monotonic() < deadline):
            time.sleep(0.1)
            counts = handled(server.metrics_port)
        print(f"AddUser calls cancelled before their message: {CALLS}; "
              f"counted Canceled {counts.get(('AddUser', 'Canceled'), 0):.0f}, "
              f"InvalidArgument "
              f"{counts.get(('AddUser', 'InvalidArgument'), 0):.0f}")
        self.assertEqual(counts.get(("AddUser", "InvalidArgument"), 0), 0)
        self.assertEqual(counts.get(("AddUser", "Canceled"), 0), CALLS)
        # Nothing was added; a real call works.
        result = harness.jamctl(target, "stats")
        self.assertEqual(result.returncode, 0, harness.describe(result))
        self.assertRegex(result.stdout, r'"userCount":\s*"?0')
        result = harness.jamctl(target, "add-user", "jam-1", "user-1")
        self.assertEqual(result.returncode, 0, harness.describe(result))


if __name__ == "__main__":
    harness.main()
