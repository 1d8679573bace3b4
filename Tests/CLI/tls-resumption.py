#!/usr/bin/env python3
"""A peer that resumes a TLS session is known by the key it proved, like on a full handshake.

Usage: Tests/CLI/tls-resumption.py PATH/TO/tierline

A node (site hub, coordinator, `tierline serve --listen …`) runs; its roster admits a site `probe` whose
key is an Ed25519 key this script makes with openssl, with a self-signed certificate for it. The node's
TLS (BoringSSL) issues session tickets, and TLS 1.3 lets a client resume with one: then no certificate
crosses the wire and the node's certificate callback does not run. Tierline's own dialers never resume,
but any TLS client may. With Python's ssl module this script:

  * connects with the certificate (a full handshake), reads the node's hello, writes a hello naming
    the certificate's key, and gets the node's `auth` (the node took the key as proven and found probe
    in its roster); it keeps the TLS session and its ticket;
  * connects again with that session: the node resumes it, and answers the same hello with its `auth`
    too, not with `auth-failed` ("not the key its TLS certificate proved");
  * resumes once more with a hello that names another key: `auth-failed`, the binding of hello to TLS
    key holds on a resumed session too;
  * does the same in protocol 4, where neither side writes `auth` over TLS on the sites' keys: the node
    answers a hello naming the proved key with its `vector`, on a full and on a resumed handshake, and
    one naming another key with `auth-failed`.

Standard library and the openssl command only. Binds 127.0.0.1 only; every wait is bounded; every
process started is stopped by its own pid in a finally block; the temporary folder is removed.
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, Stop, check, free_port, require, tl  # noqa: E402

harness.find_binary()
TIMEOUT = 60.0


def openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, timeout=60)


def make_identity(work):
    """An Ed25519 key and a self-signed certificate for it, and the key as 64 hex digits."""
    key, cert = os.path.join(work, "probe-key.pem"), os.path.join(work, "probe.pem")
    r = openssl("genpkey", "-algorithm", "ed25519", "-out", key)
    require("openssl makes an Ed25519 key", r.returncode == 0, r.stderr.decode(errors="replace"))
    r = openssl("req", "-x509", "-key", key, "-out", cert, "-subj", "/CN=tierline site probe", "-days", "2")
    require("openssl makes a self-signed certificate for it", r.returncode == 0, r.stderr.decode(errors="replace"))
    r = openssl("pkey", "-in", key, "-pubout", "-outform", "DER")
    require("openssl gives the public key", r.returncode == 0 and len(r.stdout) == 44, r.stderr.decode(errors="replace"))
    return key, cert, r.stdout[-32:].hex()


class Session:
    """One TLS connection to the node, reading whole lines with a deadline."""

    def __init__(self, context, port, session=None):
        raw = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.sock = context.wrap_socket(raw, session=session)
        self.buf = b""

    def frame(self):
        """The next frame as a dict, or "EOF" / "TIMEOUT"."""
        deadline = time.monotonic() + TIMEOUT
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return "TIMEOUT"
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return "TIMEOUT"
            except (ConnectionError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return "EOF"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def send(self, obj):
        self.sock.sendall((json.dumps(obj, separators=(",", ":")) + "\n").encode())

    def answer_to_hello(self, key, protocol=2):
        """Reads the node's hello, writes ours naming KEY and PROTOCOL, and returns the node's answer: its
        `auth` (protocols 2 and 3), its `vector` (protocol 4: TLS proved the keys, so no `auth`) or an
        `error` frame (or "EOF" / "TIMEOUT")."""
        theirs = self.frame()
        if not isinstance(theirs, dict) or theirs.get("type") != "hello":
            return theirs
        self.send({"type": "hello", "protocol": protocol, "minProtocol": 1, "schema": 3, "site": "probe", "role": "site",
                   "publicKey": key, "nonce": os.urandom(32).hex(), "time": int(time.time() * 1000),
                   "roster": theirs.get("roster", 0), "software": "tls-resumption.py"})
        while True:
            f = self.frame()
            if not isinstance(f, dict) or f.get("type") in ("auth", "vector", "error"):
                return f

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def main():
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tierline-resume-")
    try:
        harness.private_copy(work)
        key_file, cert_file, key = make_identity(work)
        hub = os.path.join(work, "hub")
        require("init the node (site hub, coordinator)", tl("init", "--store", hub, "--site", "hub", "--role", "coordinator").returncode == 0)
        r = tl("roster", "add", "probe", "--key", key, "--role", "site", "--store", hub)
        require("hub admits probe with the certificate's key", r.returncode == 0, r.stderr)
        port = free_port()
        log_path = os.path.join(work, "hub.log")
        node = harness.start_node(["serve", "--listen", f"{HOST}:{port}", "--store", hub], log_path, "hub")

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the node's certificate is self-signed: its key is what counts
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(cert_file, key_file)

        first = Session(context, port)
        answer = first.answer_to_hello(key)
        check("a full handshake: the node answers probe's hello with its auth", isinstance(answer, dict) and answer.get("type") == "auth",
              repr(answer))
        ticket = first.sock.session
        first.close()
        require("the node issued a session ticket", ticket is not None and ticket.has_ticket, repr(ticket))
        lean = Session(context, port)
        answer = lean.answer_to_hello(key, protocol=4)
        lean.close()
        check("protocol 4, full handshake: the node answers probe's hello with its vector, writing no auth",
              isinstance(answer, dict) and answer.get("type") == "vector", repr(answer))

        again = Session(context, port, session=ticket)
        resumed = again.sock.session_reused
        answer = again.answer_to_hello(key)
        again.close()
        if not resumed:
            # A node that stops issuing or accepting tickets leaves nothing to check here.
            print("note: the node did not resume the TLS session; the resumed-session checks are skipped")
        else:
            check("a resumed session: the node answers the same hello with its auth, knowing the key probe proved",
                  isinstance(answer, dict) and answer.get("type") == "auth", repr(answer))
            other = Session(context, port, session=ticket)
            answer = other.answer_to_hello(os.urandom(32).hex())
            other.close()
            check("a resumed session whose hello names another key is refused with auth-failed",
                  isinstance(answer, dict) and answer.get("code") == "auth-failed" and "TLS certificate" in answer.get("message", ""),
                  repr(answer))
            lean = Session(context, port, session=ticket)
            answer = lean.answer_to_hello(key, protocol=4)
            lean.close()
            check("protocol 4, resumed session: the node answers with its vector, the key proved by the resumption",
                  isinstance(answer, dict) and answer.get("type") == "vector", repr(answer))
            stranger = Session(context, port, session=ticket)
            answer = stranger.answer_to_hello(os.urandom(32).hex(), protocol=4)
            stranger.close()
            check("protocol 4, resumed session naming another key: auth-failed, and no vector",
                  isinstance(answer, dict) and answer.get("code") == "auth-failed", repr(answer))
        harness.check_stops(node, log_path)
    except Stop:
        pass
    finally:
        harness.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    harness.summary("tls-resumption", started)
    sys.exit(1 if harness.failed else 0)


if __name__ == "__main__":
    main()
