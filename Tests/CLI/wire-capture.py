#!/usr/bin/env python3
"""What a listener on the wire sees of a sync: TLS records, never a ticket.

Usage: Tests/CLI/wire-capture.py PATH/TO/tierline

A node (site north, `tierline serve --listen …`) runs; a laptop (site field) writes tickets whose subjects
and messages carry a marker, then runs `tierline sync` with the node through a TCP relay in this script
that records every byte in both directions. Checks: the sync exits 0 and the node holds the tickets; the
recorded bytes of each direction begin with a TLS handshake record (0x16 0x03); neither the marker, nor a
subject, nor any frame type (`"type":"hello"`, `"blocks"`) appears in them. Then the control that shows
the check can fail: through the same relay, a plain protocol-1 peer (a raw socket) talks to the node
restarted with --allow-plain, and the recorded bytes show the node's hello, its site id, in clear.

Standard library only. Binds 127.0.0.1 only; every wait is bounded; every process started is stopped by
its own pid in a finally block; the temporary folder is removed.
"""
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, Stop, check, free_port, require, tl  # noqa: E402

harness.find_binary()
MARKER = "zq-secret-subject-7731"


class Relay:
    """Accepts connections on its own port and relays each to TARGET, recording what passes each way."""

    def __init__(self, target_port):
        self.target = target_port
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((HOST, 0))
        self.server.listen(8)
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.up = bytearray()    # client -> node
        self.down = bytearray()  # node -> client
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.accept, daemon=True)]

    def pump(self, src, dst, record):
        try:
            while not self.stop.is_set():
                try:
                    data = src.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                record.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def accept(self):
        while not self.stop.is_set():
            try:
                client, _ = self.server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            node = socket.create_connection((HOST, self.target), timeout=10)
            for s in (client, node):
                s.settimeout(0.5)
            for args in ((client, node, self.up), (node, client, self.down)):
                t = threading.Thread(target=self.pump, args=args, daemon=True)
                t.start()
                self.threads.append(t)

    def __enter__(self):
        self.threads[0].start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.server.close()
        for t in self.threads:
            t.join(timeout=10)


def main():
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tierline-capture-")
    try:
        harness.private_copy(work)
        stores = harness.setup_stores(work, [("north", "north", "site"), ("lap", "field", "laptop")])
        north, lap = stores["north"][0], stores["lap"][0]
        for i in range(3):
            r = tl("ticket", "create", "--subject", f"{MARKER} printer {i}", "--message", f"{MARKER} body {i}", "--store", lap)
            require(f"the laptop writes ticket {i}", r.returncode == 0, r.stderr)
        port = free_port()
        node = harness.start_node(["serve", "--listen", f"{HOST}:{port}", "--store", north], os.path.join(work, "north.log"), "north")

        with Relay(port) as relay:
            r = tl("sync", f"{HOST}:{relay.port}", "--store", lap, "--json", "--quiet", timeout=120)
            require("the laptop's sync through the relay exits 0", r.returncode == 0, r.stderr + r.stdout)
            time.sleep(0.5)
        up, down = bytes(relay.up), bytes(relay.down)
        print(f"figure: {len(up)} bytes laptop -> node, {len(down)} bytes node -> laptop on the wire")
        listed = json.loads(tl("ticket", "list", "--json", "--store", north).stdout)
        check("north holds the laptop's three tickets", sum(MARKER in t["subject"] for t in listed) == 3, listed)
        check("both directions begin with a TLS handshake record", up[:2] == b"\x16\x03" and down[:2] == b"\x16\x03",
              f"{up[:8].hex()} / {down[:8].hex()}")
        for what in (MARKER.encode(), b"printer", b'"type":"hello"', b'"type":"blocks"', b'"type":"vector"', b"field"):
            check(f"{what.decode()!r} appears nowhere on the wire", what not in up and what not in down)

        # The control: the same relay shows a plain exchange in clear. A node that admits plain sessions
        # answers a plain peer's first line with its own hello, readable by anyone on the path.
        harness.check_stops(node, os.path.join(work, "north.log"))
        node = harness.start_node(["serve", "--listen", f"{HOST}:{port}", "--store", north, "--allow-plain", "field"],
                                  os.path.join(work, "north-plain.log"), "north with --allow-plain")
        with Relay(port) as relay:
            s = socket.create_connection((HOST, relay.port), timeout=10)
            s.sendall(b'{"type":"ping","id":1,"time":0}\n')
            deadline, got = time.monotonic() + 30, b""
            s.settimeout(1)
            while time.monotonic() < deadline and b'"type":"hello"' not in got:
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    break
                got += data
            s.close()
            time.sleep(0.5)
        check("control: a plain session through the same relay shows the node's hello in clear",
              b'"type":"hello"' in bytes(relay.down) and b'"site":"north"' in bytes(relay.down), bytes(relay.down)[:200])
        harness.check_stops(node, os.path.join(work, "north-plain.log"))
    except Stop:
        pass
    finally:
        harness.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    harness.summary("wire-capture", started)
    sys.exit(1 if harness.failed else 0)


if __name__ == "__main__":
    main()
