#!/usr/bin/env python3
"""Kills `tierline ticket create` with SIGKILL at random moments and checks after every kill that the
store is consistent: SQLite's integrity check passes, the log is gap-free, every block's ticket is
materialized, the display-number counter matches, and the CLI still works.
Usage: crash-writes.py PATH/TO/tierline [ROUNDS]"""
import os, random, signal, sqlite3, subprocess, sys, tempfile, time, shutil

BIN = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/tierline"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 40
store = tempfile.mkdtemp(prefix="tl-crash-")
failures = 0


def check(name, ok, detail=""):
    global failures
    if not ok:
        failures += 1
        print(f"FAIL {name} {detail}")


try:
    subprocess.run([BIN, "init", "--site", "north", "--store", store], check=True, capture_output=True)
    rng = random.Random(7)
    killed = 0
    for i in range(ROUNDS):
        p = subprocess.Popen([BIN, "ticket", "create", "--subject", f"crash {i}", "--tag", "t", "--store", store],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 0.08))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
        p.wait()
        db = sqlite3.connect(os.path.join(store, "tierline.sqlite"))
        check("integrity", db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
        seqs = [r[0] for r in db.execute("SELECT seq FROM block WHERE origin = 'north' ORDER BY seq")]
        check("gap-free log", seqs == list(range(1, len(seqs) + 1)), str(seqs[-5:]))
        vector = db.execute("SELECT seq FROM versionEntry WHERE site = 'north'").fetchone()
        check("vector matches log", (vector[0] if vector else 0) == len(seqs))
        tickets = db.execute("SELECT COUNT(*) FROM ticket WHERE number IS NOT NULL").fetchone()[0]
        check("every block materialized", tickets == len(seqs), f"{tickets} tickets, {len(seqs)} blocks")
        next_number = db.execute("SELECT nextNumber FROM localSite").fetchone()[0]
        check("display counter matches", next_number == len(seqs) + 1)
        db.close()
    out = subprocess.run([BIN, "ticket", "create", "--subject", "after the crashes", "--store", store, "--json"],
                         capture_output=True, text=True)
    check("store still writable", out.returncode == 0, out.stderr)
    digest = subprocess.run([BIN, "digest", "--store", store], capture_output=True, text=True)
    check("digest still works", digest.returncode == 0 and len(digest.stdout.strip()) == 64)
    print(f"{'PASS' if failures == 0 else 'FAIL'} crash-writes: {ROUNDS} writes, {killed} killed mid-run, {failures} failed checks")
finally:
    shutil.rmtree(store, ignore_errors=True)
sys.exit(1 if failures else 0)
