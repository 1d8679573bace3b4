#!/usr/bin/env python3
"""The node serves other peers normally while peers send it garbage at full speed.

Usage: Tests/CLI/garbage-peer.py PATH/TO/tierline [SECONDS]      (default: 20 s of garbage)

A node (`tierline serve --listen 127.0.0.1:PORT`, site hub) runs. For SECONDS, threads of this script
connect to it and write as fast as they can:

  random     random bytes in 64 KiB writes, reconnecting whenever the node closes;
  long       one line that never ends ('{"type":"hello","pad":"aaa...'), past the 2 MiB a line may
             hold before the peer has authenticated;
  types      well-formed JSON with wrong types or shapes ({"type": 5}, "protocol": "1", a top-level
             array, a repeated member, ...), one line per connection or the same line over and over;
  hello      a valid hello (a fresh site id, in no roster, and a random key), then at once random
             bytes, a malformed auth, an auth with a wrong signature or a blocks frame before the
             handshake ends: the node refuses the hello itself (auth-failed) before it reads on;
  churn      connections opened and dropped at once (half of them reset), or after reading the hello;
  silent     32 connections at a time held open without a word, until the node closes them (5 s bound).

Meanwhile a well-behaved peer (site field, with tickets of its own) writes a few blocks and runs
`tierline sync` with the node again and again; the node's own store gets a ticket each round. Every
sync must exit 0 and report completed within SYNC_BOUND seconds, the node must hold the peer's blocks
after each, and the peer the node's. Afterwards: the node still runs; its VmRSS (from /proc) grew by at
most RSS_BOUND_MIB over the baseline taken before the garbage, at the end and at every sample during the
run; garbage connections were answered with `error` frames and closed by the node (each kind's codes are
printed; the checks: some error frame came at all, `types` and `hello` connections got the codes
PROTOCOL.md 2.1-2.8 give for what they sent, the silent ones got `timeout`, except those the node closed
to make room in its bounded pool of unauthenticated connections, which all come from 127.0.0.1 here);
a last sync leaves equal digests; the node stops with exit 0 on SIGTERM. (With SECONDS below 12 the
silent connections are not checked.)

Standard library only. Binds 127.0.0.1 only; every wait is bounded; every process started is stopped by
its own pid in a finally block; the temporary folder is removed. Prints PASS/FAIL lines and a summary;
exits 1 if any check failed.
"""
import collections
import json
import os
import random
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (Tests/CLI/harness.py: what the Python CLI scripts share)
from harness import HOST, Stop, check, free_port, procs, require, start, tail, tl  # noqa: E402

harness.find_binary()
GARBAGE_SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
SYNC_BOUND = 60        # seconds one `tierline sync` may take while the garbage runs
RSS_BOUND_MIB = 300    # growth of the node's VmRSS over its baseline
MAX_LINE = 8_388_608   # maxLineBytes

def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# The stores, made by harness.setup_stores: node (hub, served) and peer (field, the well-behaved peer).
STORES = [("node", "hub", "site"), ("peer", "field", "laptop")]


def hello(site):
    return {"type": "hello", "protocol": 1, "minProtocol": 1, "schema": 2, "site": site, "role": "site",
            "publicKey": os.urandom(32).hex(), "nonce": os.urandom(32).hex(), "time": int(time.time() * 1000),
            "software": "garbage-peer.py"}


def line(obj):
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


# Lines with wrong types or shapes, and the code PROTOCOL.md 2.1 gives each (checked in that order:
# UTF-8 and JSON object with a string type, then a known type, then the members, then the state).
WRONG = [
    (b'{"type":5}\n', "bad-json"),
    (b'[{"type":"hello"}]\n', "bad-json"),
    (b'{"type":"hello","type":"hello"}\n', "bad-json"),
    (b'"hello"\n', "bad-json"),
    (b'{"type":"hello"} {"type":"hello"}\n', "bad-json"),
    (line({**hello("wrong-a"), "protocol": "1"}), "bad-field"),
    (line({**hello("wrong-b"), "protocol": 1.0}), "bad-field"),
    (line({**hello("wrong-c"), "time": -1}), "bad-field"),
    (line({**hello("wrong-d"), "site": "UPPER"}), "bad-field"),
    (line({**hello("wrong-e"), "publicKey": "XY" * 32}), "bad-field"),
    (line({**hello("wrong-f"), "software": None}), "bad-field"),
    (line({"type": "ping", "id": "1", "time": 0}), "bad-field"),
    (line({"type": "bye", "reason": 7}), "bad-field"),
    (line({"type": "vector", "vector": [1, 2]}), "bad-field"),
    (line({"type": "blocks", "batch": -1, "count": 1, "size": 1, "data": "AAAA"}), "bad-field"),
    (line({"type": "error", "code": 1, "message": "m", "fatal": "yes"}), "bad-field"),
    (line({"type": "ack", "batch": 1, "vector": {}, "applied": 0, "held": 0, "refused": 0}), "unexpected-frame"),
]


def made_room(err):
    """The node closed this stranger to make room for newer ones (its pool of unauthenticated
    connections is bounded per address, and everything here comes from 127.0.0.1): a legitimate end
    for any garbage connection, whatever it sent."""
    return isinstance(err, dict) and err.get("code") == "internal" and "waiting to authenticate" in str(err.get("message"))


class Tally:
    """What one kind of garbage did and got back."""

    def __init__(self, kind):
        self.kind = kind
        self.lock = threading.Lock()
        self.connections = self.bytes = self.closed_by_node = self.connect_failed = 0
        self.codes = collections.Counter()
        self.mismatch = []  # (what was sent, the code expected, what came)

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def summary(self):
        codes = ", ".join(f"{c} {n}" for c, n in sorted(self.codes.items())) or "none"
        return (f"{self.kind:7s} {self.connections:6d} connections, {self.bytes / 1048576:8.1f} MiB sent, "
                f"{self.closed_by_node:6d} closed by the node; error frames: {codes}")


class Garbage:
    """One connection of a garbage sender: writes, and reads whatever the node answers."""

    def __init__(self, port, tally):
        self.tally = tally
        self.buf = b""
        self.frames = []
        self.closed = False
        # From 127.0.0.2, not the well-behaved peer's 127.0.0.1, as a stranger elsewhere on the network:
        # the node's pool for unauthenticated connections makes room at the address holding the most.
        self.sock = socket.create_connection((HOST, port), timeout=2, source_address=("127.0.0.2", 0))
        self.sock.settimeout(2)
        tally.add(connections=1)

    def _record(self, data):
        self.buf += data
        while b"\n" in self.buf:
            raw, self.buf = self.buf.split(b"\n", 1)
            try:
                f = json.loads(raw)
            except ValueError:
                f = {"type": "not-json"}
            self.frames.append(f)
            if isinstance(f, dict) and f.get("type") == "error":
                with self.tally.lock:
                    self.tally.codes[str(f.get("code"))] += 1

    def _closed(self):
        if not self.closed:
            self.closed = True
            self.tally.add(closed_by_node=1)

    def poll(self):
        """Reads what is there without waiting; notes a close by the node."""
        while not self.closed:
            r, _, _ = select.select([self.sock], [], [], 0)
            if not r:
                return
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, OSError):
                self._closed()
                return
            if not data:
                self._closed()
                return
            self._record(data)

    def send(self, data):
        """Writes DATA; False when the node has closed the connection."""
        try:
            self.sock.sendall(data)
            self.tally.add(bytes=len(data))
        except socket.timeout:
            pass  # the node stopped reading for a moment (TCP flow control): go on
        except (BrokenPipeError, ConnectionResetError, OSError):
            self._closed()
        self.poll()
        return not self.closed

    def wait_closed(self, timeout):
        """Reads until the node closes the connection (True) or TIMEOUT passes (False)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            r, _, _ = select.select([self.sock], [], [], min(0.2, max(0.0, deadline - time.monotonic())))
            if r:
                self.poll()
        return self.closed

    def first_error(self):
        return next((f for f in self.frames if isinstance(f, dict) and f.get("type") == "error"), None)

    def close(self, reset=False):
        try:
            if reset:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass


def connect(port, tally):
    try:
        return Garbage(port, tally)
    except OSError:
        tally.add(connect_failed=1)
        time.sleep(0.05)
        return None


def g_random(port, stop, tally):
    blob = os.urandom(1 << 20)
    while not stop.is_set():
        g = connect(port, tally)
        if g is None:
            continue
        off = 0
        while not stop.is_set() and g.send(blob[off:off + 65536]):
            off = (off + 65536) % len(blob)
        g.wait_closed(0.5)
        g.close()


def g_long(port, stop, tally):
    chunk = b"a" * 65536
    limit = MAX_LINE + (64 << 20)  # far more than the socket buffers between us and the node hold
    while not stop.is_set():
        g = connect(port, tally)
        if g is None:
            continue
        sent = 0
        ok = g.send(b'{"type":"hello","pad":"')
        while ok and not stop.is_set() and sent <= limit and not g.first_error():
            ok = g.send(chunk)
            sent += len(chunk)
        g.wait_closed(2)
        err = g.first_error()
        if sent > limit or (err and err.get("code") != "line-too-long" and not made_room(err)):
            with tally.lock:
                tally.mismatch.append((f"{sent} bytes without LF", "line-too-long",
                                       err or "no error, connection still open"))
        g.close()


def g_types(port, stop, tally):
    n = 0
    while not stop.is_set():
        data, code = WRONG[n % len(WRONG)]
        repeat = n % 2 == 1
        n += 1
        g = connect(port, tally)
        if g is None:
            continue
        if repeat:  # the same line, over and over, as fast as the node takes it
            burst = data * max(1, 65536 // len(data))
            while not stop.is_set() and g.send(burst):
                pass
            g.wait_closed(1)
        else:       # one line; the answer must be its code
            g.send(data)
            closed = g.wait_closed(30)
            err = g.first_error()
            if not stop.is_set() and not made_room(err) and (not closed or not err or err.get("code") != code or err.get("fatal") is not True):
                with tally.lock:
                    tally.mismatch.append((data[:80], code, f"{err or 'no error frame'}; closed: {closed}"))
        g.close()


def g_hello(port, stop, tally):
    blob = os.urandom(1 << 20)
    n = 0
    while not stop.is_set():
        variant = n % 4
        n += 1
        g = connect(port, tally)
        if g is None:
            continue
        site = f"junk-{os.getpid() % 1000}-{n}"
        if variant == 0:    # hello, then random bytes at full speed
            g.send(line(hello(site)))
            off = 0
            while not stop.is_set() and g.send(blob[off:off + 65536]):
                off = (off + 65536) % len(blob)
            g.wait_closed(1)
            g.close()
            continue
        # The junk site is in no roster: the node refuses its hello (auth-failed) before it proves
        # anything or reads what follows, whatever that is (PROTOCOL.md 2.12).
        follow, code = {1: (line({"type": "auth", "signature": "zz"}), "auth-failed"),
                        2: (line({"type": "auth", "signature": "0" * 128}), "auth-failed"),
                        3: (line({"type": "blocks", "batch": 1, "count": 1, "size": 1, "data": "AAAA"}),
                            "auth-failed")}[variant]
        g.send(line(hello(site)) + follow)
        closed = g.wait_closed(30)
        err = g.first_error()
        if not stop.is_set() and not made_room(err) and (not closed or not err or err.get("code") != code):
            with tally.lock:
                tally.mismatch.append((follow[:60], code, f"{err or 'no error frame'}; closed: {closed}; "
                                       f"frames: {[f.get('type') for f in g.frames if isinstance(f, dict)]}"))
        g.close()


def g_churn(port, stop, tally):
    n = 0
    while not stop.is_set():
        n += 1
        g = connect(port, tally)
        if g is None:
            continue
        if n % 3 == 0:  # read the node's hello first
            deadline = time.monotonic() + 2
            while not g.frames and not g.closed and time.monotonic() < deadline:
                g.wait_closed(0.05)
        g.close(reset=n % 2 == 0)
        time.sleep(0.002)  # ~300 a second: enough churn, without using up the ephemeral ports


def g_silent(port, stop, tally):
    while not stop.is_set():
        conns = [g for g in (connect(port, tally) for _ in range(32)) if g]
        deadline = time.monotonic() + 15
        while not stop.is_set() and time.monotonic() < deadline and not all(g.closed for g in conns):
            for g in conns:
                g.wait_closed(0.05)
        for g in conns:
            if g.closed and (g.first_error() or {}).get("code") != "timeout" and not made_room(g.first_error()):
                with tally.lock:
                    tally.mismatch.append(("nothing", "timeout", g.first_error() or "closed without an error frame"))
            g.close()


KINDS = [("random", g_random), ("long", g_long), ("types", g_types), ("hello", g_hello),
         ("churn", g_churn), ("silent", g_silent)]


def vector(store):
    r = tl("vector", "--store", store, "--json")
    return json.loads(r.stdout) if r.returncode == 0 else {}


def run():
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tierline-garbage-peer.")
    node = None
    stop = threading.Event()
    threads = []
    try:
        print(f"tierline: {harness.private_copy(work)} ({GARBAGE_SECONDS:.0f} s of garbage)")
        stores = harness.setup_stores(work, STORES)
        hub, hub_site = stores["node"]
        peer, peer_site = stores["peer"]
        for i in range(1, 4):
            r = tl("ticket", "create", "--store", hub, "--subject", f"hub ticket {i}", "--tag", "hub")
            require(f"hub: ticket {i}", r.returncode == 0, r.stderr)
        for i in range(1, 6):
            r = tl("ticket", "create", "--store", peer, "--subject", f"field ticket {i}", "--tag", "field",
                   "--message", f"customer message {i}")
            require(f"field: ticket {i}", r.returncode == 0, r.stderr)
        r = tl("ticket", "comment", f"{peer_site.upper()}-1", "--body", "on my way", "--store", peer)
        require("field: a comment", r.returncode == 0, r.stderr)

        port = free_port()
        node_log = os.path.join(work, "node.log")
        # --allow-plain: the garbage is written without TLS, so that it reaches the line protocol (a node
        # without the setting refuses it at the first byte); the peer's syncs use TLS all the same.
        node = start(["serve", "--store", hub, "--listen", f"{HOST}:{port}", "--allow-plain", "field"], node_log, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and node.poll() is None and "listening" not in tail(node_log, 50):
            time.sleep(0.05)
        require(f"node hub listens on {HOST}:{port} within 10 s", node.poll() is None and "listening" in tail(node_log, 50),
                tail(node_log))

        syncs = []  # (round, seconds, ok)

        def sync_round(name):
            t0 = time.monotonic()
            try:
                r = subprocess.run([harness.BIN, "sync", f"{HOST}:{port}", "--store", peer, "--json", "--quiet"],
                                   capture_output=True, text=True, timeout=SYNC_BOUND)
            except subprocess.TimeoutExpired:
                r = subprocess.CompletedProcess([], 124, "", f"no end after {SYNC_BOUND} s")
            took = time.monotonic() - t0
            try:
                rep = json.loads(r.stdout)
            except ValueError:
                rep = {}
            ok = r.returncode == 0 and rep.get("completed") is True
            v_hub, v_peer = vector(hub), vector(peer)
            got = v_hub.get(peer_site, 0) == v_peer.get(peer_site, 0) > 0 and v_peer.get(hub_site, 0) == v_hub.get(hub_site, 0) > 0
            syncs.append((name, took, ok and got))
            what = (f"{name}: sync exits 0, completed, in {took:.2f} s (bound {SYNC_BOUND} s); the node holds the "
                    f"peer's {v_peer.get(peer_site, 0)} blocks and the peer the node's {v_hub.get(hub_site, 0)}")
            detail = f"exit {r.returncode}; report {r.stdout[-600:]}\nstderr {r.stderr[-600:]}\nhub {v_hub}, field {v_peer}"
            if "under" not in name or not (ok and got):  # the rounds under garbage pass as one line, below
                check(what, ok and got, detail)

        sync_round("before the garbage")
        time.sleep(0.5)
        rss_before = rss_kib(node.pid)
        require("VmRSS of the node readable", rss_before is not None)

        tallies = {kind: Tally(kind) for kind, _ in KINDS}
        for kind, fn in KINDS:
            t = threading.Thread(target=fn, args=(port, stop, tallies[kind]), daemon=True, name=kind)
            threads.append(t)
        rss_samples = []

        def sampler():
            while not stop.is_set():
                v = rss_kib(node.pid)
                if v is not None:
                    rss_samples.append(v)
                stop.wait(0.2)
        threads.append(threading.Thread(target=sampler, daemon=True, name="rss"))
        g0 = time.monotonic()
        for t in threads:
            t.start()

        n = 0
        while time.monotonic() - g0 < GARBAGE_SECONDS or n < 3:
            n += 1
            r1 = tl("ticket", "create", "--store", peer, "--subject", f"field during garbage {n}", "--tag", "noisy")
            r2 = tl("ticket", "comment", f"{peer_site.upper()}-{n}", "--body", f"round {n}", "--store", peer)
            r3 = tl("ticket", "create", "--store", hub, "--subject", f"hub during garbage {n}")
            if r1.returncode or r2.returncode or r3.returncode:
                require(f"round {n}: new blocks written on the peer and on the node's store", False,
                        r1.stderr + r2.stderr + r3.stderr)
            sync_round(f"round {n} under garbage")
            if node.poll() is not None:
                break
            time.sleep(0.5)
        stop.set()
        garbage_s = time.monotonic() - g0
        under = [x for x in syncs if "under" in x[0]]
        if all(x[2] for x in under):
            check(f"{len(under)} syncs under garbage: each exited 0, completed within {SYNC_BOUND} s, and left the "
                  "node holding the peer's new blocks and the peer the node's "
                  f"({min(x[1] for x in under):.2f} to {max(x[1] for x in under):.2f} s)", len(under) >= 3,
                  f"only {len(under)} rounds")
        for t in threads:
            t.join(timeout=20)
        stuck = [t.name for t in threads if t.is_alive()]
        check("every garbage thread ended within 20 s of the stop", not stuck, f"still running: {stuck}")

        check("the node is still running after the garbage", node.poll() is None, f"exit {node.poll()}\n{tail(node_log)}")
        time.sleep(1.0)
        rss_after = rss_kib(node.pid) if node.poll() is None else None
        peak = max(rss_samples) if rss_samples else rss_before
        print(f"      node VmRSS: {rss_before / 1024:.0f} MiB before, peak {peak / 1024:.0f} MiB during, "
              f"{(rss_after or 0) / 1024:.0f} MiB after ({len(rss_samples)} samples)")
        check(f"the node's VmRSS grew by at most {RSS_BOUND_MIB} MiB (after and at the peak)",
              rss_after is not None and rss_after - rss_before <= RSS_BOUND_MIB * 1024
              and peak - rss_before <= RSS_BOUND_MIB * 1024,
              f"before {rss_before} KiB, peak {peak} KiB, after {rss_after} KiB")

        print(f"      garbage for {garbage_s:.1f} s:")
        for kind, _ in KINDS:
            print(f"      {tallies[kind].summary()}")
        all_codes = sum((t.codes for t in tallies.values()), collections.Counter())
        check("garbage connections were answered with error frames", sum(all_codes.values()) > 0,
              "no error frame read on any garbage connection")
        check("the node closed garbage connections", sum(t.closed_by_node for t in tallies.values()) > 0)
        # Silent connections are closed at the 5 s handshake bound (or to make room): a short run may not see it.
        for kind in ("types", "hello", "long") + (("silent",) if GARBAGE_SECONDS >= 12 else ()):
            t = tallies[kind]
            check(f"{kind}: every checked connection got its error code and was closed ({t.connections} connections)",
                  t.connections > 0 and not t.mismatch and sum(t.codes.values()) > 0,
                  "\n".join(f"sent {s!r}: want {c}, got {g}" for s, c, g in t.mismatch[:10])
                  + ("" if sum(t.codes.values()) else "\nno error frame at all"))

        sync_round("after the garbage")
        d_hub = tl("digest", "--store", hub).stdout.strip()
        d_peer = tl("digest", "--store", peer).stdout.strip()
        check("after the last sync the node and the peer have equal digests", d_hub == d_peer and len(d_hub) == 64,
              f"hub {d_hub!r}, field {d_peer!r}")
        print(f"      syncs: {len(syncs)} ({len(under)} under garbage, all ok: {all(s[2] for s in syncs)}); "
              f"before {syncs[0][1]:.2f} s, under garbage max {max((s[1] for s in under), default=0):.2f} s, "
              f"after {syncs[-1][1]:.2f} s; node log {os.path.getsize(node_log) // 1024} KiB")
        reasons = collections.Counter()
        with open(node_log, errors="replace") as f:
            for entry in f:
                if "session ended:" in entry:
                    reasons[entry.split("session ended:", 1)[1].strip().split(":")[0]] += 1
                elif " critical " in entry or " error " in entry:
                    reasons[entry.strip()[:120]] += 1
        print("      node log, sessions ended with: " + ", ".join(f"{r} {n}" for r, n in reasons.most_common(12)))
        harness.check_stops(node, node_log)
    except Stop:
        print("(stopping: later checks depend on this step)")
    except Exception:  # a crash of this script is a failure, with its traceback
        import traceback
        check("the script ran to the end", False, traceback.format_exc())
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        harness.stop_all()
        if harness.failed:
            print("node log (last lines):\n" + tail(os.path.join(work, "node.log")))
        shutil.rmtree(work, ignore_errors=True)
        harness.summary("garbage-peer", started)


run()
sys.exit(1 if harness.failed else 0)
