#!/usr/bin/env python3
"""The node's HTTP server under a connection flood and a slowloris, with real sockets and processes.

Usage: Tests/CLI/http-hardening.py [PATH/TO/tierline]      (default: .build/debug/tierline)

An attack on the old server held 1,100 idle connections to the HTTP port: the node ran out of file
descriptors and its sync port went down with it. Here a node (site north) runs `tierline serve --listen
… --http … --config node.json`, started with a soft open-file limit of 1000 (below a service's usual
default of 1024, and below the flood plus the node's own descriptors), so that the flood below fits
only if the node raises its own limit as it starts.

Part 1 (workspace.headerTimeoutMillis 600000, so that idle connections are held, not closed):
  - the node logs its open-file limit, raised above 1000 (when the hard limit allows);
  - 1,000 idle TCP connections to the HTTP port are opened and held; the node accepts them all (its
    /proc/PID/fd count) and closes none while they are held;
  - meanwhile (a) the intake API opens a ticket with an intake token (`tierline intake token add`);
    (b) a laptop (site field) syncs over the sync port (`tierline sync`) and north holds its ticket;
    (d) the security headers are on / (a 303 to /login), /login, /api/summary (a 401 in JSON) and
    /static/app.css.
Part 2 (workspace.headerTimeoutMillis 1000, the node restarted):
  - (c) a slowloris connection that sends half a request head, then a byte every 200 ms, is closed
    without an answer; 200 silent connections are closed too and the node's descriptors go back down;
    a client that sends whole requests on one connection is answered each time.

Standard library only. Binds 127.0.0.1 only. No check depends on how fast anything is: every wait is a
bounded poll that ends as soon as its condition holds (the bounds are generous, for a machine with every
core busy). The node is stopped by its own pid in a finally block; the temporary folder is removed.
Prints PASS/FAIL lines and a summary; exits 1 if any check failed.
"""
import http.client
import json
import os
import re
import resource
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (Tests/CLI/harness.py: what the Python CLI scripts share)
from harness import HOST, Stop, check, free_port, require, tail, tl  # noqa: E402

harness.find_binary()
FLOOD = 1000              # idle connections held in part 1
SILENT = 200              # silent connections in part 2
NODE_SOFT_LIMIT = 1000    # the soft open-file limit the node is started with
BOUND = 120               # seconds: the bound of every poll (a loaded machine must not fail a check)
HTTP_TIMEOUT = 60         # seconds: every HTTP request
SECURITY_HEADERS = {"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def raise_own_limit(need):
    """This script holds NEED sockets: its soft open-file limit goes up to the hard one. Returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def start_node(args, log_path, name):
    """`tierline ARGS` with a soft open-file limit of NODE_SOFT_LIMIT (the hard one as it is), logging to
    LOG_PATH; waits until it logs that it listens. Returns the process (in harness.procs)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft = min(NODE_SOFT_LIMIT, hard)
    with open(log_path, "w") as log:
        node = subprocess.Popen([harness.BIN, *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)))
    harness.procs.append(node)
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline and node.poll() is None and "dashboard listening" not in tail(log_path, 80):
        time.sleep(0.1)
    require(f"{name} listens within {BOUND} s", node.poll() is None and "dashboard listening" in tail(log_path, 80), tail(log_path))
    return node


def serve_north(work, north, part, header_timeout):
    """North's node with a node.json whose workspace.headerTimeoutMillis is HEADER_TIMEOUT, on free ports.
    Returns (node, sync port, HTTP port, log path, config path)."""
    config = os.path.join(work, f"node-{part}.json")
    with open(config, "w") as f:
        json.dump({"workspace": {"headerTimeoutMillis": header_timeout, "idleTimeoutMillis": 600000}}, f)
    port, http_port = free_port(), free_port()
    log_path = os.path.join(work, f"north-{part}.log")
    node = start_node(["serve", "--listen", f"{HOST}:{port}", "--http", f"{HOST}:{http_port}", "--config", config, "--store", north],
                      log_path, f"north (part {part}, headerTimeoutMillis {header_timeout})")
    return node, port, http_port, log_path, config


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def wait_until(condition, bound=BOUND, every=0.1):
    """Polls CONDITION until it holds or BOUND seconds pass; its last value."""
    deadline = time.monotonic() + bound
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = condition()
    return value


def is_closed(sock):
    """Whether the peer has closed SOCK (a read would give end of file or a reset), without blocking (a
    socket with a timeout would wait for data first; select() cannot take descriptors past 1023)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def request(method, url, body=None, headers=None):
    """(status, headers, body text) of one request; redirects are not followed; status None on no answer."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=HTTP_TIMEOUT) as r:
            return r.status, r.headers, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")
    except OSError as e:
        return None, {}, repr(e)


def security_headers_missing(headers):
    return [f"{name}: {want}" for name, want in SECURITY_HEADERS.items() if want not in (headers.get(name) or "")]


def part_one(work, north, lap, intake_token):
    node, port, http_port, log_path, _ = serve_north(work, north, 1, 600000)
    base = f"http://{HOST}:{http_port}"
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    m = re.search(r"nofile\.soft=(\d+)", tail(log_path, 80))
    logged = int(m.group(1)) if m else None
    check(f"the node logs its open-file limit, raised from {NODE_SOFT_LIMIT} to the hard limit ({hard})",
          logged is not None and (logged == hard or hard == resource.RLIM_INFINITY) and (logged > NODE_SOFT_LIMIT or hard <= NODE_SOFT_LIMIT),
          f"logged {logged}\n{tail(log_path)}")
    before = open_fds(node.pid)
    held = []
    try:
        for i in range(FLOOD):
            try:
                held.append(socket.create_connection((HOST, http_port), timeout=HTTP_TIMEOUT))
            except OSError as e:
                check(f"open {FLOOD} idle connections to the HTTP port", False, f"connection {i}: {e!r}")
                raise Stop("the flood")
        check(f"open {FLOOD} idle connections to the HTTP port", len(held) == FLOOD)
        accepted = wait_until(lambda: open_fds(node.pid) >= before + FLOOD)
        check(f"the node accepts all {FLOOD} (its descriptors: {before} before, {open_fds(node.pid)} now)", accepted,
              f"{open_fds(node.pid)} open descriptors\n{tail(log_path)}")

        # (a) intake still answers.
        status, _, text = request("POST", base + "/api/intake/tickets",
                                  {"channel": "email", "subject": "Printer offline during the flood", "message": "It says PC LOAD LETTER.",
                                   "customer": {"email": "kim@example.com"}},
                                  {"Authorization": f"Bearer {intake_token}", "Content-Type": "application/json"})
        check(f"(a) with {FLOOD} connections held, the intake API opens a ticket (201)", status == 201, f"{status} {text[:500]}")

        # (b) the sync port still works: the laptop's ticket reaches north.
        require("the laptop writes a ticket", tl("ticket", "create", "--subject", "synced during the flood", "--store", lap).returncode == 0)
        r = tl("sync", f"{HOST}:{port}", "--store", lap, "--json", "--quiet", timeout=BOUND)
        check(f"(b) with {FLOOD} connections held, `tierline sync` with north's sync port exits 0", r.returncode == 0, r.stderr[-1500:])
        r = tl("ticket", "list", "--json", "--store", north)
        subjects = {t["subject"] for t in json.loads(r.stdout)} if r.returncode == 0 else set()
        check("(b) north holds the laptop's ticket and the intake ticket", {"synced during the flood", "Printer offline during the flood"} <= subjects,
              sorted(subjects))

        # (d) the security headers, on refusals and public routes alike.
        status, headers, _ = request("GET", base + "/")
        check("(d) GET / signed out: 303 to /login?next=%2F with the security headers",
              status == 303 and headers.get("Location") == "/login?next=%2F" and not security_headers_missing(headers),
              f"{status} Location {headers.get('Location')!r}; missing {security_headers_missing(headers)}")
        status, headers, text = request("GET", base + "/login")
        check("(d) GET /login: 200 HTML with the security headers and no-store",
              status == 200 and "text/html" in (headers.get("Content-Type") or "") and not security_headers_missing(headers)
              and headers.get("Cache-Control") == "no-store", f"{status}; missing {security_headers_missing(headers)}")
        status, headers, text = request("GET", base + "/api/summary")
        body = json.loads(text) if status == 401 else {}
        check("(d) GET /api/summary signed out: 401 JSON naming Authorization, with the security headers",
              status == 401 and body.get("field") == "Authorization" and (headers.get("Content-Type") or "").startswith("application/json")
              and not security_headers_missing(headers), f"{status} {text[:300]}; missing {security_headers_missing(headers)}")
        status, headers, text = request("GET", base + "/static/app.css")
        check("(d) GET /static/app.css: 200 text/css with the security headers",
              status == 200 and (headers.get("Content-Type") or "").startswith("text/css") and not security_headers_missing(headers),
              f"{status}; missing {security_headers_missing(headers)}")

        still = sum(1 for s in held if not is_closed(s))
        check(f"the node closed none of the {FLOOD} held connections (headerTimeoutMillis 600000)", still == FLOOD, f"{FLOOD - still} closed")
        check("the node still runs", node.poll() is None, tail(log_path))
    finally:
        for s in held:
            s.close()
    # A client that sends whole requests is answered on one connection, again and again (on this
    # node, whose 600 s header bound no pause of a busy machine between two requests reaches).
    conn = http.client.HTTPConnection(HOST, http_port, timeout=HTTP_TIMEOUT)
    statuses = []
    try:
        for _ in range(3):
            conn.request("GET", "/login")
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
    except OSError as e:
        statuses.append(repr(e))
    finally:
        conn.close()
    check("a keep-alive client that sends whole requests gets every answer (200, 200, 200)", statuses == [200, 200, 200], statuses)
    harness.check_stops(node, log_path)


def part_two(work, north):
    node, _, http_port, log_path, config = serve_north(work, north, 2, 1000)
    r = tl("serve", "--config", config, "--store", north, "--http", f"{HOST}:0", "--check", "--json")
    shown = json.loads(r.stdout).get("workspace", {}) if r.returncode == 0 else {}
    check("serve --check --json shows the workspace settings read from node.json",
          shown.get("headerTimeoutMillis") == 1000 and shown.get("idleTimeoutMillis") == 600000 and shown.get("maxConnections") == 4096
          and shown.get("metricsTokenFile") is None and shown.get("secureCookies") is False, f"{r.returncode} {r.stdout[:600]} {r.stderr[:300]}")

    # (c) slowloris: half a request head, then one byte every 200 ms, never the blank line.
    slow = socket.create_connection((HOST, http_port), timeout=HTTP_TIMEOUT)
    slow.sendall(b"GET /api/summary HTTP/1.1\r\nHost: north\r\nX-Slow: ")
    received = b""
    closed = False
    deadline = time.monotonic() + BOUND
    sent = 0
    try:
        while time.monotonic() < deadline and not closed:
            ready, _, _ = select.select([slow], [], [], 0.2)
            if ready:
                try:
                    chunk = slow.recv(4096)
                except OSError:
                    chunk = b""
                received += chunk
                closed = chunk == b""
            else:
                try:
                    slow.sendall(b"x")
                    sent += 1
                except OSError:
                    closed = True
    finally:
        slow.close()
    check(f"(c) a slowloris connection (half a head, then a byte every 200 ms) is closed by the node within {BOUND} s, unanswered",
          closed and received == b"", f"closed {closed}, received {received[:200]!r}, {sent} bytes trickled")

    silent = [socket.create_connection((HOST, http_port), timeout=HTTP_TIMEOUT) for _ in range(SILENT)]
    try:
        all_closed = wait_until(lambda: all(is_closed(s) for s in silent))
        check(f"{SILENT} silent connections are all closed by the node", all_closed,
              f"{sum(1 for s in silent if not is_closed(s))} still open")
    finally:
        for s in silent:
            s.close()
    back = wait_until(lambda: 0 <= open_fds(node.pid) < SILENT)
    check(f"the node's descriptors go back down ({open_fds(node.pid)} open)", back, f"{open_fds(node.pid)} open")

    check("the node still runs", node.poll() is None, tail(log_path))
    harness.check_stops(node, log_path)


def run():
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tierline-http-hardening.")
    try:
        print(f"tierline: {harness.private_copy(work)}")
        soft, hard = raise_own_limit(FLOOD + SILENT + 100)
        require(f"this script may hold {FLOOD} sockets (its open-file limit: {soft}, hard {hard})", soft >= FLOOD + 100,
                "raise the hard limit (ulimit -Hn) to run this test")
        stores = harness.setup_stores(work, [("north", "north", "site"), ("lap", "field", "laptop")])
        north, lap = stores["north"][0], stores["lap"][0]
        r = tl("intake", "token", "add", "flood-test", "--json", "--store", north)
        require("tierline intake token add flood-test", r.returncode == 0, r.stderr)
        part_one(work, north, lap, json.loads(r.stdout)["token"])
        part_two(work, north)
    except Stop:
        print("(stopping: later checks depend on this step)")
    except Exception:  # a crash of this script is a failure, with its traceback
        check("the script ran to the end", False, traceback.format_exc())
    finally:
        harness.stop_all()
        if harness.failed:
            for name in ("north-1.log", "north-2.log"):
                path = os.path.join(work, name)
                if os.path.exists(path):
                    print(f"{name} (last lines):\n" + tail(path))
        shutil.rmtree(work, ignore_errors=True)
        harness.summary("http-hardening", started)


run()
sys.exit(1 if harness.failed else 0)
