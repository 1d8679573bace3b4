"""What the Python CLI scripts (crash-sync.py, garbage-peer.py) have in common.

The tierline binary under test (the script's first argument, run from a private copy once the script has
a work folder), the PASS/FAIL count and its closing line, bounded runs of the binary, the list of
processes a script started (each script stops them itself, in its own way), and the setup that makes a
script's stores one fleet: each store `tierline init`ed, then admitted by a coordinator `hq` and handed
its roster, as an operator would do it.
"""
import json
import os
import shutil
import socket
import signal
import subprocess
import sys
import time

HOST = "127.0.0.1"
BIN = None    # the tierline binary every run below uses: set by find_binary, moved by private_copy
passed = failed = 0
procs = []    # every process the script started (with start, or appended by the script)


def find_binary():
    """The binary from the first argument (default .build/debug/tierline); exits 1 if it is not there."""
    global BIN
    BIN = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/tierline"
    if not (os.path.isfile(BIN) and os.access(BIN, os.X_OK)):
        print(f"FAIL: no executable tierline at {BIN!r} (build it with 'swift build', or pass its path)")
        sys.exit(1)
    BIN = os.path.abspath(BIN)


def private_copy(work):
    """Copies the binary into WORK and runs the copy from now on, so a `swift build` relinking the
    binary meanwhile cannot disturb the run. Returns the path it was copied from."""
    global BIN
    original = BIN
    shutil.copy2(BIN, os.path.join(work, "tierline"))
    BIN = os.path.join(work, "tierline")
    return original


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS: {name}")
    else:
        failed += 1
        print(f"FAIL: {name}")
        for line in str(detail).splitlines()[:25]:
            print(f"      {line[:400]}")
    return ok


class Stop(Exception):
    """A step the rest depends on failed."""


def require(name, ok, detail=""):
    if not check(name, ok, detail):
        raise Stop(name)


def summary(name, started):
    """The closing line: the counts and the time since STARTED (a time.monotonic())."""
    print(f"---- {name}: {passed} passed, {failed} failed ({int((time.monotonic() - started) * 1000)} ms)")


def tl(*args, timeout=60):
    """Runs tierline ARGS (bounded); the CompletedProcess (returncode 124 on timeout)."""
    try:
        return subprocess.run([BIN, *args], capture_output=True, text=True, encoding="utf-8",
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, 124, "", f"timed out after {timeout} s")


def start(args, log_path, stdout=subprocess.PIPE):
    """Starts tierline ARGS in the background, its stderr to LOG_PATH, and adds it to procs."""
    log = open(log_path, "w")
    p = subprocess.Popen([BIN, *args], stdin=subprocess.DEVNULL, stdout=stdout, stderr=log)
    log.close()
    procs.append(p)
    return p


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "\n".join(f.read().splitlines()[-n:])
    except OSError:
        return ""


def stop_all(within=10):
    """Stops every process `start` made that still runs: SIGTERM, then SIGKILL after `within` seconds."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=within)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=within)


def check_stops(node, log_path, within=60):
    """SIGTERM `node` and check that it exits 0 within `within` seconds (a generous bound: the node
    stops in well under a second, but a machine with every core busy must not fail the check)."""
    node.send_signal(signal.SIGTERM)
    try:
        rc = node.wait(timeout=within)
    except subprocess.TimeoutExpired:
        rc = f"still running {within} s after SIGTERM"
    check("the node stops with exit 0 on SIGTERM", rc == 0, f"{rc}\n{tail(log_path)}")


def setup_stores(work, specs):
    """`tierline init` for each (name, site, role) of SPECS in WORK/name, then admit() them all.
    Returns {name: (folder, site)}."""
    stores = {}
    for name, site, role in specs:
        path = os.path.join(work, name)
        r = tl("init", "--store", path, "--site", site, "--role", role)
        require(f"init {name} (site {site}, role {role})", r.returncode == 0, r.stderr)
        stores[name] = (path, site)
    admit(work, [path for path, _ in stores.values()])
    return stores


def admit(work, paths):
    """Makes a coordinator store `hq` in WORK, adds each store of PATHS to its roster with the site and
    role the store was made with (`roster add`), pins hq's key in each (`roster pin`) and hands each the
    roster file (`roster export` / `roster import`), so the stores can sync with each other before any
    of them has met the coordinator."""
    hq = os.path.join(work, "hq")
    r = tl("init", "--store", hq, "--site", "hq", "--role", "coordinator", "--json")
    require("init the fleet's coordinator (hq)", r.returncode == 0, r.stderr)
    hq_key = json.loads(r.stdout)["publicKey"]
    for path in paths:
        r = tl("status", "--json", "--store", path)
        require(f"status of {os.path.basename(path)}", r.returncode == 0, r.stderr)
        me = json.loads(r.stdout)
        r = tl("roster", "add", me["site"], "--key", me["publicKey"], "--role", me["role"], "--store", hq)
        require(f"hq admits {me['site']}", r.returncode == 0, r.stderr)
        r = tl("roster", "pin", hq_key, "--store", path)
        require(f"{me['site']} pins hq's key", r.returncode == 0, r.stderr)
    roster = os.path.join(work, "roster.json")
    r = tl("roster", "export", "--out", roster, "--store", hq)
    require("export the roster", r.returncode == 0, r.stderr)
    for path in paths:
        r = tl("roster", "import", roster, "--store", path)
        require(f"{os.path.basename(path)} takes the roster", r.returncode == 0, r.stderr)


def start_node(args, log_path, name="the node", within=60):
    """Starts `tierline ARGS` (a serve) like `start`, then waits up to WITHIN seconds for it to log that it
    listens; a Stop if it exits or does not. Returns the process."""
    node = start(args, log_path)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and node.poll() is None and "listening" not in tail(log_path, 50):
        time.sleep(0.1)
    require(f"{name} listens within {within} s", node.poll() is None and "listening" in tail(log_path, 50), tail(log_path))
    return node
