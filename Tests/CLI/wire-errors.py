#!/usr/bin/env python3
"""Speaks the sync wire protocol (one JSON object per line over TCP, /work/notes/sync-spec.md, to become
Protocol/PROTOCOL.md section 2) to a running `tierline serve` with raw sockets, and checks the node's
answers to bad input: each on a fresh connection, every read with a socket timeout.

Usage: Tests/CLI/wire-errors.py [PATH/TO/tierline]      (default: .build/debug/tierline)

Standard library only. A valid hello needs a 32-byte public key and nonce as 64 lowercase hex; a
random key is fine wherever no valid signature is needed. The well-formed `blocks` frame is built from
the blocks of a `tierline export` file (section 1.11). Prints one PASS/FAIL line per check; exits 1
if any check fails.
"""
import base64
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib

BIN = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/tierline"
if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
    print(f"FAIL: no executable tierline at {BIN!r} (build it with 'swift build', or pass its path)")
    sys.exit(1)
BIN = os.path.abspath(BIN)
HOST = "127.0.0.1"
TIMEOUT = 30.0         # every socket read (a bound for a busy machine; the node answers in milliseconds)
PRELUDE_LINE = 2 * 1048576 + 4096  # preludeLineBytes, PROTOCOL.md 2.1
MAX_LINE = 8_388_608   # maxLineBytes
HEX64 = re.compile(r"^[0-9a-f]{64}$")

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS: {name}")
    else:
        failed += 1
        print(f"FAIL: {name}")
        if detail:
            for line in str(detail).splitlines()[:25]:
                print(f"      {line[:400]}")
    return ok


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tl(*args, timeout=60):
    """Runs tierline ARGS (bounded); returns the CompletedProcess (returncode 124 on timeout)."""
    try:
        return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, 124, e.stdout or "", f"timed out after {timeout} s")


def uvarint(data, i):
    value = shift = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def put_uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def export_blocks(path):
    """The site keys and raw blocks of an export file (section 1.11)."""
    data = zlib.decompress(open(path, "rb").read())
    assert data[:4] == b"TLX1", f"export magic {data[:4]!r}"
    i = 4
    key_count, i = uvarint(data, i)
    keys = {}
    for _ in range(key_count):
        n, i = uvarint(data, i)  # site: a length-prefixed UTF-8 string (section 1.1)
        site = data[i:i + n].decode()
        i += n
        keys[site] = data[i:i + 32].hex()
        i += 32
    count, i = uvarint(data, i)
    blocks = []
    for _ in range(count):
        n, i = uvarint(data, i)
        blocks.append(data[i:i + n])
        i += n
    assert i == len(data), "trailing bytes after the export's last block"
    return keys, blocks


class Conn:
    """One TCP connection to the node, reading whole lines with a timeout."""

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.sock.settimeout(TIMEOUT)
        self.buf = b""
        self.eof = False
        self.reset = False

    def send(self, obj):
        line = obj if isinstance(obj, bytes) else (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        self.sock.sendall(line)

    def readline(self, timeout=TIMEOUT):
        """The next line as bytes; b"" at EOF (or reset); None on timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                return b""
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except ConnectionResetError:
                self.eof = self.reset = True
                continue
            if not chunk:
                self.eof = True
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def frame(self, timeout=TIMEOUT):
        """The next frame as a dict; "EOF", "TIMEOUT", or ("NOT-JSON", line)."""
        line = self.readline(timeout)
        if line is None:
            return "TIMEOUT"
        if line == b"":
            return "EOF"
        try:
            return json.loads(line)
        except ValueError:
            return ("NOT-JSON", line[:300])

    def error(self, timeout=TIMEOUT):
        """Reads frames until an error frame (returned) or EOF/timeout (returned as a string); other
        frames (the node's own auth, vector, ...) are collected in self.skipped."""
        self.skipped = []
        deadline = time.monotonic() + timeout
        while True:
            f = self.frame(max(0.0, deadline - time.monotonic()))
            if isinstance(f, dict) and f.get("type") == "error":
                return f
            if not isinstance(f, dict):
                return f
            self.skipped.append(f)

    def closed(self, timeout=TIMEOUT):
        """True when the node closes the connection (EOF or reset) within timeout, with no further frame."""
        f = self.frame(timeout)
        return f == "EOF", f

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def hello(site, **overrides):
    h = {"type": "hello", "protocol": 1, "minProtocol": 1, "schema": 1, "site": site, "role": "site",
         "publicKey": os.urandom(32).hex(), "nonce": os.urandom(32).hex(), "time": int(time.time() * 1000),
         "software": "wire-errors.py"}
    h.update(overrides)
    return h


def expect_error(name, conn, code, fatal=True, closes=True):
    """Checks that the node's next error frame has CODE (and FATAL), then that it closes if CLOSES."""
    err = conn.error()
    ok = check(f"{name}: error frame with code {code!r}",
               isinstance(err, dict) and err.get("code") == code,
               f"got {err!r}" + (f" after frames {conn.skipped!r}" if getattr(conn, "skipped", None) else ""))
    if ok:
        check(f"{name}: the error says fatal {str(fatal).lower()} and has a message",
              err.get("fatal") is fatal and isinstance(err.get("message"), str) and err["message"],
              f"got {err!r}")
    if closes:
        is_closed, what = conn.closed()
        check(f"{name}: the node closes the connection after the error", is_closed, f"next read: {what!r}")
    return err


def main(work, port, proc, node_site, node_key):
    def connect():
        c = Conn(port)
        first = c.frame()
        return c, first

    # 1. the node's hello comes first, unasked
    c, h = connect()
    ok = isinstance(h, dict)
    check("the node sends a hello line first", ok and h.get("type") == "hello", f"first frame: {h!r}")
    if ok:
        problems = []
        if h.get("protocol") != 5 or h.get("minProtocol") != 1:
            problems.append(f"protocol {h.get('protocol')!r}…{h.get('minProtocol')!r}, want 5 (speaking 1…5)")
        if not isinstance(h.get("minProtocol"), int) or not 1 <= h["minProtocol"] <= 1:
            problems.append(f"minProtocol {h.get('minProtocol')!r}")
        if h.get("schema") != 4:
            problems.append(f"schema {h.get('schema')!r}")
        if h.get("site") != node_site:
            problems.append(f"site {h.get('site')!r}, want {node_site!r}")
        if h.get("publicKey") != node_key:
            problems.append(f"publicKey {h.get('publicKey')!r}, want the store's key {node_key}")
        if not (isinstance(h.get("nonce"), str) and HEX64.match(h["nonce"])):
            problems.append(f"nonce {h.get('nonce')!r} is not 64 lowercase hex")
        if not isinstance(h.get("time"), int) or abs(h["time"] - time.time() * 1000) > 60_000:
            problems.append(f"time {h.get('time')!r} is not the node's wall clock in ms")
        if h.get("role") not in ("site", "coordinator", "laptop"):
            problems.append(f"role {h.get('role')!r}")
        check("the hello has protocol 5 (minProtocol 1), the node's site, publicKey and a 64-hex nonce", not problems,
              "; ".join(problems) + f"\nhello: {h!r}")
    c.close()

    # 2. protocol 99..99 -> unsupported-protocol
    c, _ = connect()
    c.send(hello("probe-proto", protocol=99, minProtocol=99))
    expect_error("hello with protocol 99, minProtocol 99", c, "unsupported-protocol")
    c.close()

    # 3. schema 99 -> unsupported-schema
    c, _ = connect()
    c.send(hello("probe-schema", schema=99))
    expect_error("hello with schema 99", c, "unsupported-schema")
    c.close()

    # 4. not JSON -> bad-json
    c, _ = connect()
    c.send(b"not json\n")
    expect_error("the line 'not json'", c, "bad-json")
    c.close()

    # 5. unknown frame type -> unknown-frame, not fatal; the session goes on
    c, _ = connect()
    c.send({"type": "gossip"})
    expect_error("an unknown frame type 'gossip'", c, "unknown-frame", fatal=False, closes=False)
    c.send({"type": "ping", "id": 1, "time": 0})
    f = c.frame()
    check("after unknown-frame the connection stays open: ping id 1 gets pong id 1",
          isinstance(f, dict) and f.get("type") == "pong" and f.get("id") == 1 and isinstance(f.get("time"), int),
          f"answer to the ping: {f!r}")
    c.close()

    # 6. a blocks frame before the handshake -> unexpected-frame. The frame is well-formed (a real,
    #    signed block taken from an export file), so only the state of the session is wrong.
    keys, blocks = export_blocks(os.path.join(work, "src.tlx"))
    content = b"".join(put_uvarint(len(b)) + b for b in blocks)
    well_formed = {"type": "blocks", "batch": 1, "count": len(blocks), "size": len(content), "keys": keys,
                   "data": base64.b64encode(zlib.compress(content)).decode()}
    c, _ = connect()
    c.send(well_formed)
    expect_error("a well-formed blocks frame before the handshake", c, "unexpected-frame")
    c.close()
    v = tl("vector", "--store", os.path.join(work, "node"), "--json")
    check("the blocks sent before the handshake were not applied",
          v.returncode == 0 and "src" not in json.loads(v.stdout or "{}"), f"node's vector: {v.stdout} {v.stderr}")

    # 6b. the same with data that is no zlib stream: the session's state is checked before the payload
    #     is decoded (PROTOCOL.md 2.4), so an unauthenticated peer cannot make the node inflate anything.
    c, _ = connect()
    c.send({"type": "blocks", "batch": 1, "count": 1, "size": 1, "data": "AAAA"})
    err = c.error()
    check("a blocks frame with bad data before the handshake: fatal unexpected-frame",
          isinstance(err, dict) and err.get("code") == "unexpected-frame" and err.get("fatal") is True,
          f"got {err!r}")
    is_closed, what = c.closed()
    check("a blocks frame with bad data before the handshake: the node closes", is_closed, f"next read: {what!r}")
    c.close()

    # 7. a line without a newline from a peer that has not authenticated -> line-too-long once it passes
    #    preludeLineBytes (2 MiB + 4 KiB, PROTOCOL.md 2.1), well before maxLineBytes (8 MiB). Sent in
    #    chunks; between chunks, look for the node's answer, and stop sending once it came (or the node
    #    closed). (The 8 MiB limit of an open session is checked by the Swift LimitsTests.)
    c, _ = connect()
    chunk = b"x" * 65536
    sent = 0
    send_error = None
    while sent < MAX_LINE + 4 * len(chunk):
        readable, _, _ = select.select([c.sock], [], [], 0)
        if readable:
            break
        try:
            c.sock.settimeout(TIMEOUT)
            c.sock.sendall(chunk)
            sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError) as e:
            send_error = e
            break
        except socket.timeout:
            send_error = "send timed out (the node stopped reading?)"
            break
    err = c.error()
    detail = f"sent {sent} bytes without a newline" + (f", then {send_error!r}" if send_error else "") + f"; got {err!r}"
    check("a line longer than 2 MiB before the session opened: error frame with code 'line-too-long'",
          isinstance(err, dict) and err.get("code") == "line-too-long", detail)
    check("the line-too-long names the 2101248-byte limit before authentication, and came only after that many bytes",
          isinstance(err, dict) and "2101248" in str(err.get("message")) and (sent > PRELUDE_LINE - len(chunk) or send_error is not None),
          detail)
    if isinstance(err, dict):
        check("line-too-long is fatal", err.get("fatal") is True, f"got {err!r}")
        is_closed, what = c.closed()
        check("after line-too-long the node closes the connection", is_closed, f"next read: {what!r}")
    c.close()

    # 8. a hello with the node's own site id -> duplicate-site
    c, _ = connect()
    c.send(hello(node_site))
    expect_error(f"a hello claiming the node's own site {node_site!r}", c, "duplicate-site")
    c.close()

    # 9. a correct hello with a random key, then an auth with a wrong signature -> auth-failed
    c, _ = connect()
    c.send(hello("probe-auth"))
    c.send({"type": "auth", "signature": "0" * 128})
    err = expect_error("a valid hello, then an auth frame with 128 hex zeros", c, "auth-failed")
    if isinstance(err, dict) and err.get("code") == "auth-failed":
        check("the node sent no vector before failing the auth",
              not any(f.get("type") == "vector" for f in c.skipped), f"frames before the error: {c.skipped!r}")
    c.close()

    # 9b. a peer that connects and says nothing gets a timeout error when the 5 s handshake bound passes
    # (not before it; the upper bound is generous, for a loaded machine)
    # (timed from before the connection: the node's timer starts before its hello reaches us)
    started = time.monotonic()
    c, _ = connect()
    err = c.error(timeout=60)
    waited = time.monotonic() - started
    check("a silent peer gets a fatal timeout error after the 5 s handshake bound",
          isinstance(err, dict) and err.get("code") == "timeout" and err.get("fatal") is True and 4.5 <= waited <= 60,
          f"got {err!r} after {waited:.1f} s")
    is_closed, what = c.closed()
    check("a silent peer's connection is closed", is_closed, f"next read: {what!r}")
    c.close()

    # 10. the node survived all of that, and a normal sync still works
    check("the node is still running", proc.poll() is None, f"exit code {proc.poll()}")
    r = tl("sync", f"{HOST}:{port}", "--store", os.path.join(work, "src"), "--json", "--quiet", timeout=30)
    check("a normal `tierline sync` from another store exits 0", r.returncode == 0,
          f"exit {r.returncode}\nstdout: {r.stdout[:600]}\nstderr: {r.stderr[-600:]}")
    d1 = tl("digest", "--store", os.path.join(work, "src")).stdout.strip()
    d2 = tl("digest", "--store", os.path.join(work, "node")).stdout.strip()
    check("after that sync the node and the other store have equal digests", d1 == d2 and len(d1) == 64,
          f"src {d1!r}, node {d2!r}")


def run():
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tierline-wire-errors.")
    proc = None
    log = None
    try:
        # A private copy, so a `swift build` relinking the binary meanwhile cannot disturb the run.
        global BIN
        shutil.copy2(BIN, os.path.join(work, "tierline"))
        print(f"tierline: {BIN}")
        BIN = os.path.join(work, "tierline")
        node = os.path.join(work, "node")
        src = os.path.join(work, "src")
        r = tl("init", "--store", node, "--site", "west", "--role", "coordinator", "--json")
        if not check("init the node's store (site west)", r.returncode == 0, r.stderr):
            return
        node_key = json.loads(r.stdout)["publicKey"]
        r = tl("init", "--store", src, "--site", "src", "--coordinator-key", node_key, "--json")
        check("init another store (site src)", r.returncode == 0, r.stderr)
        # west is the coordinator: its roster admits src, and src takes the roster file.
        src_key = json.loads(r.stdout or "{}").get("publicKey", "")
        roster = os.path.join(work, "roster.json")
        for args in (["roster", "add", "src", "--key", src_key, "--store", node],
                     ["roster", "export", "--out", roster, "--store", node], ["roster", "import", roster, "--store", src]):
            r = tl(*args)
            check(f"setup: {' '.join(args[:2])}", r.returncode == 0, r.stderr)
        for args in (["ticket", "create", "--subject", "wire check", "--tag", "wire"],
                     ["ticket", "comment", "SRC-1", "--body", "a comment"]):
            r = tl(*args, "--store", src)
            check(f"src: {' '.join(args[:2])}", r.returncode == 0, r.stderr)
        r = tl("export", "--store", src, "--out", os.path.join(work, "src.tlx"))
        if not check("src: export its blocks (for a well-formed blocks frame)", r.returncode == 0, r.stderr):
            return
        port = free_port()
        log = open(os.path.join(work, "node.log"), "w+")
        # --allow-plain: these raw sockets speak the line protocol without TLS (protocol 1's framing is
        # protocol 2's, inside TLS); the TLS side is tested by the Swift suites and wire-capture.py.
        proc = subprocess.Popen([BIN, "serve", "--store", node, "--listen", f"{HOST}:{port}", "--allow-plain", "src"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 60
        listening = False
        while time.monotonic() < deadline and proc.poll() is None:
            with open(os.path.join(work, "node.log")) as f:
                if "listening" in f.read():
                    listening = True
                    break
            time.sleep(0.05)
        if not check(f"the node listens on {HOST}:{port} within 10 s", listening,
                     open(os.path.join(work, "node.log")).read()[-1500:]):
            return
        main(work, port, proc, "west", node_key)
    except Exception:  # a crash of this script is a failure, with its traceback
        import traceback
        check("the script ran to the end", False, traceback.format_exc())
    finally:
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            if failed and log is not None:
                log.seek(0)
                print("node log (last lines):")
                for line in log.read().splitlines()[-15:]:
                    print(f"      {line}")
        if log is not None:
            log.close()
        shutil.rmtree(work, ignore_errors=True)
        print(f"---- {passed} passed, {failed} failed ({int((time.monotonic() - started) * 1000)} ms)")


run()
sys.exit(1 if failed else 0)
