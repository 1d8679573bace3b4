#!/usr/bin/env python3
"""Strangers who never finish a handshake cannot starve the roster's members, nor the node's memory.

Usage: Tests/CLI/stranger-flood.py PATH/TO/tierline [SECONDS]     (default: 25 s for each flood)

A node (`tierline serve --listen 127.0.0.1:PORT`, site hub) runs; a laptop (site field) is a member of
its roster. Two floods, each of 200 connections from this script that never authenticate, reconnecting
whenever the node closes one:

  slow   each connection writes 10 bytes a second of a hello that never ends (a slow-loris);
  big    each connection writes a line with no line feed as fast as the node reads it.

During each flood the laptop writes a ticket and runs `tierline sync` with the node 10 times (each bounded
by a generous 90 s). Checks: at least 9 of the 10 syncs of each flood exit 0; the node's peak resident
memory (VmHWM, from /proc) stays under 200 MiB; the node logs refusals once per address per interval
with a count, not a line per connection (at most 60 refusal lines over both floods); a stranger that
claims to be `field` in its hello, with a clock an hour ahead, and then sends an error with terminal escape
bytes changes nothing of field's peer record (`status --json`); after the floods a last sync leaves equal
digests and the node stops with exit 0 on SIGTERM.

Figures printed, not asserted: the node's resident memory before, at its peak and at intervals after each
flood, and how long after the flood it was back within 32 MiB of its baseline.

Standard library only. Binds 127.0.0.1 only; every wait is bounded; every process started is stopped by
its own pid in a finally block; the temporary folder is removed.
"""
import json
import re
import os
import select
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, Stop, check, free_port, require, tail, tl  # noqa: E402

harness.find_binary()
FLOOD_SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 25.0
CONNECTIONS = 200
SYNCS = 10
SYNC_BOUND = 90
PEAK_BOUND_MIB = 200
REFUSAL_LINES_BOUND = 60
STRANGER_HOST = "127.0.0.2"


def proc_status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Flood:
    """CONNECTIONS sockets kept open against the node by one thread, each fed by `feed(sock)` every
    `interval` seconds and reopened when the node closes it; what the node writes back is read and
    dropped, so the node is never blocked on a full socket buffer."""

    def __init__(self, port, chunk, interval):
        self.port, self.chunk, self.interval = port, chunk, interval
        self.stop = threading.Event()
        self.socks = []
        self.opened = 0
        self.closed_by_node = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def connect(self):
        s = socket.socket()
        s.settimeout(2)
        try:
            # From another loopback address than the laptop's syncs (127.0.0.1), as a stranger on the
            # network would be: the pool makes room at the address that holds the most of it.
            s.bind((STRANGER_HOST, 0))
            s.connect((HOST, self.port))
        except OSError:
            s.close()
            return None
        s.setblocking(False)
        self.opened += 1
        return s

    def run(self):
        self.socks = [self.connect() for _ in range(CONNECTIONS)]
        while not self.stop.is_set():
            started = time.monotonic()
            for i, s in enumerate(self.socks):
                if s is None:
                    self.socks[i] = self.connect()
                    continue
                try:
                    s.send(self.chunk)
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed_by_node += 1
                    s.close()
                    self.socks[i] = self.connect()
            live = [s for s in self.socks if s is not None]
            try:
                readable, _, _ = select.select(live, [], [], 0) if live else ([], [], [])
            except (OSError, ValueError):
                readable = []
            for s in readable:
                try:
                    if not s.recv(65536):
                        raise OSError("closed")
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed_by_node += 1
                    i = self.socks.index(s)
                    s.close()
                    self.socks[i] = self.connect()
            left = self.interval - (time.monotonic() - started)
            if left > 0:
                self.stop.wait(left)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=30)
        for s in self.socks:
            if s is not None:
                s.close()


class Sampler:
    """The node's VmRSS every 100 ms, in KiB."""

    def __init__(self, pid):
        self.pid, self.stop, self.samples = pid, threading.Event(), []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            v = proc_status(self.pid, "VmRSS")
            if v is not None:
                self.samples.append((time.monotonic(), v))
            self.stop.wait(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def line(obj):
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def main():
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tierline-strangers-")
    node = None
    try:
        harness.private_copy(work)
        stores = harness.setup_stores(work, [("node", "hub", "site"), ("lap", "field", "laptop")])
        node_dir, lap_dir = stores["node"][0], stores["lap"][0]
        port = free_port()
        log_path = os.path.join(work, "node.log")
        # --allow-plain: the floods' plain lines then reach the line protocol, the worst case for the
        # node's memory (a node without it refuses them at the first byte); TLS strangers come too, and
        # the laptop's syncs use TLS.
        node = harness.start_node(["serve", "--listen", f"{HOST}:{port}", "--store", node_dir, "--allow-plain", "field"], log_path, "the node")

        def sync():
            return tl("sync", f"{HOST}:{port}", "--store", lap_dir, "--json", "--quiet", timeout=SYNC_BOUND)

        r = sync()
        require("a first sync before any flood exits 0", r.returncode == 0, r.stderr + r.stdout)
        baseline = proc_status(node.pid, "VmRSS")
        print(f"figure: node VmRSS before the floods {baseline} KiB")

        # tls: a TLS record header announcing a 16 KiB ClientHello, then 10 bytes a second of it.
        for name, chunk, interval in [("slow", b'{"type":"hel', 1.0), ("big", b"a" * 65536, 0.0),
                                      ("tls", b"\x16\x03\x01\x40\x00" + b"\x01" * 5, 1.0)]:
            with Sampler(node.pid) as sampler, Flood(port, chunk, interval) as flood:
                time.sleep(2)  # the flood takes its connections first
                ok, failures, flood_started = 0, [], time.monotonic()
                for i in range(SYNCS):
                    w = tl("ticket", "create", "--subject", f"{name} flood ticket {i}", "--store", lap_dir)
                    require(f"{name}: the laptop writes ticket {i}", w.returncode == 0, w.stderr)
                    r = sync()
                    if r.returncode == 0:
                        ok += 1
                    else:
                        failures.append(f"sync {i}: exit {r.returncode}: {(r.stderr or r.stdout).strip()[:300]}")
                # The flood runs at least FLOOD_SECONDS in all.
                while time.monotonic() - flood_started < FLOOD_SECONDS and node.poll() is None:
                    time.sleep(0.5)
                opened, closed = flood.opened, flood.closed_by_node
            check(f"{name} flood of {CONNECTIONS} unauthenticated connections: at least {SYNCS - 1} of {SYNCS} "
                  f"honest syncs exit 0 ({ok} did)", ok >= SYNCS - 1, "\n".join(failures) + "\n" + tail(log_path))
            print(f"figure: {name} flood: {opened} connections opened, {closed} closed by the node")
            peak = max((v for _, v in sampler.samples), default=0)
            print(f"figure: {name} flood: node VmRSS peak {peak // 1024} MiB (sampled every 100 ms)")
            # Memory given back: VmRSS after the flood, until it is within 32 MiB of the baseline (30 s bound).
            ended, back = time.monotonic(), None
            while time.monotonic() - ended < 30:
                v = proc_status(node.pid, "VmRSS") or 0
                if v <= baseline + 32 * 1024:
                    back = time.monotonic() - ended
                    break
                time.sleep(0.2)
            after = proc_status(node.pid, "VmRSS")
            print(f"figure: {name} flood: node VmRSS {after // 1024} MiB after it; "
                  + (f"back within 32 MiB of the baseline after {back:.1f} s" if back is not None
                     else "not back within 32 MiB of the baseline after 30 s"))

        hwm = proc_status(node.pid, "VmHWM")
        check(f"the node's peak resident memory over both floods stays under {PEAK_BOUND_MIB} MiB "
              f"(VmHWM {hwm // 1024} MiB)", hwm is not None and hwm < PEAK_BOUND_MIB * 1024)


        # A stranger claims field's site id, with a clock an hour ahead, then sends an error frame
        # with terminal escapes: nothing of it may reach field's peer record.
        before = json.loads(tl("status", "--json", "--store", node_dir).stdout)
        s = socket.create_connection((HOST, port), timeout=10)
        try:
            s.sendall(line({"type": "hello", "protocol": 1, "minProtocol": 1, "schema": 2, "site": "field",
                            "role": "laptop", "publicKey": os.urandom(32).hex(), "nonce": os.urandom(32).hex(),
                            "time": int(time.time() * 1000) + 3_600_000, "software": "stranger"}))
            s.sendall(line({"type": "error", "code": "internal", "message": "\x1b[2J\x1b[31mpwned\x1b[0m",
                            "fatal": True}))
            s.settimeout(10)
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
        finally:
            s.close()
        time.sleep(1.5)
        after = json.loads(tl("status", "--json", "--store", node_dir).stdout)

        def field_record(status):
            return next((p for p in status.get("peers", []) if p.get("site") == "field"), None)

        b, a = field_record(before), field_record(after)
        check("a stranger that claims field's site id changes nothing of field's peer record "
              "(address, skew, last error)",
              b is not None and a is not None and all(a.get(k) == b.get(k) for k in ("address", "skewMillis", "lastError")),
              f"before {b}\nafter  {a}")

        r = sync()
        check("a last sync after the floods exits 0", r.returncode == 0, r.stderr)
        d1 = tl("digest", "--store", node_dir).stdout.strip()
        d2 = tl("digest", "--store", lap_dir).stdout.strip()
        check("node and laptop end with equal digests", d1 == d2 and len(d1) == 64, f"{d1} vs {d2}")
        harness.check_stops(node, log_path)
        # The counts of the last interval are logged as the node stops.
        with open(log_path, errors="replace") as f:
            log = f.read().splitlines()
        refusals = [l for l in log if "refus" in l.lower()]
        check(f"refusals are logged per address and interval, not per connection "
              f"({len(refusals)} refusal lines, at most {REFUSAL_LINES_BOUND})",
              len(refusals) <= REFUSAL_LINES_BOUND, "\n".join(refusals[:10]))
        check("a refusal line says how many connections of the address were refused",
              any(re.search(r"refused \d+ more connection", l) for l in refusals), "\n".join(refusals[:10]))
    except Stop:
        pass
    finally:
        harness.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    harness.summary("stranger-flood", started)
    sys.exit(1 if harness.failed else 0)


if __name__ == "__main__":
    main()
