#!/usr/bin/env python3
"""Crash safety while a sync applies a large backlog: a target store runs `tierline sync` against a
`tierline serve` node holding thousands of blocks and is killed with SIGKILL at random moments while it
applies them, again and again; after every kill its store must be intact and its log consistent, and
in the end the sync finishes with nothing lost and nothing applied twice.

Usage: Tests/CLI/crash-sync.py PATH/TO/tierline [KILLS]      (default KILLS: 25; seed: $CRASH_SYNC_SEED)

1. Backlog. Two stores (sites north and south) are written with the CLI at the same time: each ticket
   is created with tags, a customer and a first message (every tenth with a ~30 KB message), then edited
   EDITS times in ONE `ticket update` (repeating `--field note=...` makes one block per value, which is
   the CLI's fastest way to many blocks: ~3 ms a block against ~50 ms for a `ticket create`), commented
   and re-tagged. South's blocks are exported and imported into north (an export of one site imports
   into a store of another), and north comments on some of south's tickets, so the backlog has two
   origins and blocks that depend across them. north is served with batchBlocks BATCH_BLOCKS, so the
   sync commits many small transactions (each batch is one transaction, PROTOCOL.md 2.7).
2. Calibration. A probe store syncs everything once (its wall time T_full) and once more with nothing
   to move (T_idle: process start, handshake, bye). The apply rate follows.
3. Kills. The target (site east, with a few tickets of its own) runs `tierline sync` and gets SIGKILL
   after a seeded random delay: a part of T_idle, plus a random share of the remaining apply time,
   sized so that the backlog lasts over all the kills (each kill's expected share is the remaining time
   divided by the kills left + 2, which leaves about 2/(KILLS + 2) of the backlog for the end). The
   calibration is only a guide (a machine whose cores are busy can be slower at kill time than it was
   then): a kill that lands before any new commit makes the next kills wait half as long again before
   their random share. After
   each kill a copy of the target's database (tierline.sqlite and its -wal: what the crash left on
   disk; the copy leaves the recovery to the next sync) is checked: PRAGMA integrity_check is ok; per
   origin the block seqs are 1..max with no gap and max equals versionEntry's seq; no (origin, seq)
   twice; nothing held in pendingBlock; every block's hash is SHA-256 of its body and equals the
   source's; every block has its entityBlock rows and every entity they name is a materialized ticket.
   Every fourth kill also runs `tierline vector` on the store itself, which must open and agree with
   the log. A kill counts as mid-apply when the target's block count grew since the last kill but is
   not complete; at least one must be (how many is printed: the share depends on the machine's speed
   and load, and is no pass/fail matter).
4. The end. The sync runs to the end (exit 0, completed), receiving exactly the blocks the target
   lacked; a further sync moves 0 blocks; the digests are equal; the target holds exactly the source's
   (origin, seq, hash) set; integrity_check is ok on both; the node survived the killed sessions and
   stops with exit 0 on SIGTERM.

Standard library only. Binds 127.0.0.1 only; every wait is bounded; every process started is stopped
by its own pid in a finally block; the temporary folder is removed. Prints PASS/FAIL lines and a
summary; exits 1 if any check failed.
"""
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (Tests/CLI/harness.py: what the Python CLI scripts share)
from harness import HOST, Stop, check, free_port, procs, require, start, tail, tl  # noqa: E402

harness.find_binary()
KILLS = int(sys.argv[2]) if len(sys.argv) > 2 else 25
SEED = int(os.environ.get("CRASH_SYNC_SEED", "20261124"))
TICKETS = 60          # tickets per writer (two writers)
EDITS = 40            # blocks written by each ticket's one `ticket update`
BATCH_BLOCKS = 8      # the serving node's batchBlocks: many transactions per sync
DB = "tierline.sqlite"

def stop(p, sig=signal.SIGTERM, timeout=60):
    """Sends SIG to P (by its pid) if it runs and waits, bounded; SIGKILL if it does not exit. Its exit code."""
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=60)
    if p.stdout:
        p.stdout.close()
    return p.returncode


# The stores, made by harness.setup_stores: source (north, served), feeder (south: its blocks are
# imported into the source), probe (calibration) and target (east, the store that gets killed).
STORES = [("source", "north", "site"), ("feeder", "south", "site"),
          ("probe", "probe", "laptop"), ("target", "east", "laptop")]


def write_backlog(store, site, errors, pool):
    """TICKETS tickets, each: create (tags, customer, message), EDITS field values in one update,
    a comment on every second, a tag change on every third."""
    prefix = site.upper()
    for i in range(1, TICKETS + 1):
        message = f"{site} customer message {i}: " + (pool[(i * 7919) % 40000:][:30000] if i % 10 == 0
                                                       else "the printer on floor 3 shows error E-42. " * 10)
        r = tl(
            "ticket", "create", "--store", store, "--subject", f"{site} backlog {i}",
            "--priority", ("low", "normal", "high", "urgent")[i % 4], "--customer", f"c{i}@{site}.example",
            "--channel", ("email", "phone", "chat", "portal")[i % 4], "--tag", "backlog", "--tag", f"t{i % 7}",
            "--tag", site, "--message", message)
        if r.returncode != 0:
            errors.append(f"{site}: ticket create {i}: {r.stderr.strip()}")
            return
        ref = f"{prefix}-{i}"
        edits = []
        for k in range(1, EDITS + 1):
            edits += ["--field", f"note=edit {k} of {ref}"]
        r = tl("ticket", "update", ref, "--assignee", f"agent{i % 5}", *edits, "--store", store)
        if r.returncode != 0:
            errors.append(f"{site}: ticket update {ref}: {r.stderr.strip()}")
            return
        if i % 2 == 0:
            r = tl("ticket", "comment", ref, "--body", f"reply {i}: please restart it", "--store", store)
            if r.returncode != 0:
                errors.append(f"{site}: ticket comment {ref}: {r.stderr.strip()}")
                return
        if i % 3 == 0:
            r = tl("ticket", "tag", ref, "--add", "followup", "--remove", f"t{i % 7}", "--store", store)
            if r.returncode != 0:
                errors.append(f"{site}: ticket tag {ref}: {r.stderr.strip()}")
                return


def open_copy(store, scratch):
    """A read-only look at what a crash left: copies the database and its WAL (not the -shm, which
    SQLite rebuilds) to SCRATCH and opens the copy, so the store itself is left for the next sync."""
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    for suffix in ("", "-wal"):
        src = os.path.join(store, DB + suffix)
        if os.path.exists(src):
            shutil.copy2(src, os.path.join(scratch, DB + suffix))
    return sqlite3.connect(os.path.join(scratch, DB))


def block_hashes(db):
    return {(o, s): bytes(h) for o, s, h in db.execute("SELECT origin, seq, hash FROM block")}


def log_problems(db, reference, target_site):
    """Consistency of one store's log. Returns (problems, {origin: count})."""
    problems = []
    ic = db.execute("PRAGMA integrity_check").fetchall()
    if ic != [("ok",)]:
        problems.append(f"integrity_check: {ic[:5]}")
    dup = db.execute("SELECT origin, seq, COUNT(*) FROM block GROUP BY origin, seq HAVING COUNT(*) > 1").fetchall()
    if dup:
        problems.append(f"(origin, seq) more than once: {dup[:5]}")
    vector = dict(db.execute("SELECT site, seq FROM versionEntry"))
    counts = {}
    for (origin,) in db.execute("SELECT DISTINCT origin FROM block"):
        seqs = [s for (s,) in db.execute("SELECT seq FROM block WHERE origin = ? ORDER BY seq", (origin,))]
        counts[origin] = len(seqs)
        if seqs != list(range(1, len(seqs) + 1)):
            gaps = sorted(set(range(1, seqs[-1] + 1)) - set(seqs))[:10]
            problems.append(f"{origin}: log not gap-free ({len(seqs)} blocks, max {seqs[-1]}, missing {gaps})")
        if vector.get(origin, 0) != (seqs[-1] if seqs else 0):
            problems.append(f"{origin}: versionEntry {vector.get(origin)} but the log ends at {seqs[-1]}")
    for site, seq in vector.items():
        if seq and site not in counts:
            problems.append(f"versionEntry {site}={seq} with no block of {site}")
    held = db.execute("SELECT origin, seq, reason FROM pendingBlock").fetchall()
    if held:
        problems.append(f"{len(held)} blocks held back although every batch came in stamp order: {held[:3]}")
    bad_hash = wrong = 0
    for origin, seq, h, data in db.execute("SELECT origin, seq, hash, bytes FROM block"):
        if hashlib.sha256(bytes(data)[:-64]).digest() != bytes(h):
            bad_hash += 1
        if origin != target_site and reference.get((origin, seq)) != bytes(h):
            wrong += 1
    if bad_hash:
        problems.append(f"{bad_hash} blocks whose hash is not the SHA-256 of their body (torn block bytes?)")
    if wrong:
        problems.append(f"{wrong} blocks whose hash differs from the source's block with that (origin, seq)")
    orphans = db.execute("""SELECT COUNT(*) FROM entityBlock e LEFT JOIN block b ON b.origin = e.origin AND b.seq = e.seq
                            WHERE b.seq IS NULL""").fetchone()[0]
    bare = db.execute("""SELECT COUNT(*) FROM block b WHERE NOT EXISTS
                         (SELECT 1 FROM entityBlock e WHERE e.origin = b.origin AND e.seq = b.seq)""").fetchone()[0]
    if orphans or bare:
        problems.append(f"entityBlock out of step with block: {orphans} rows without a block, {bare} blocks without a row")
    # The entity index keys rows by the id's 16 bytes (store migration v25); tickets by its text.
    # A key of another shape names no ticket, so it is counted below rather than raising here.
    db.create_function("entity_text", 1, lambda key: str(uuid.UUID(bytes=key)) if isinstance(key, bytes) and len(key) == 16 else None,
                       deterministic=True)
    unmaterialized = db.execute("""SELECT COUNT(DISTINCT e.entity) FROM entityBlock e LEFT JOIN ticket t ON t.id = entity_text(e.entity)
                                   WHERE t.id IS NULL OR t.number IS NULL""").fetchone()[0]
    if unmaterialized:
        problems.append(f"{unmaterialized} entities with blocks but no materialized ticket")
    return problems, counts


def sync(store, port, log_path, timeout=600):
    """One complete `tierline sync` (bounded): (exit code, report or None, wall seconds)."""
    t0 = time.monotonic()
    p = start(["sync", f"{HOST}:{port}", "--store", store, "--json", "--quiet"], log_path)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(p, signal.SIGKILL)
        return 124, None, time.monotonic() - t0
    wall = time.monotonic() - t0
    procs.remove(p)
    try:
        report = json.loads(out)
    except ValueError:
        report = None
    return p.returncode, report, wall


def run():
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tierline-crash-sync.")
    node = None
    try:
        print(f"tierline: {harness.private_copy(work)} (kills: {KILLS}, seed: {SEED})")
        stores = harness.setup_stores(work, STORES)
        source, source_site = stores["source"]
        feeder, feeder_site = stores["feeder"]
        probe, _ = stores["probe"]
        target, target_site = stores["target"]

        # 1. the backlog: two writers at once, then south's blocks into north
        t0 = time.monotonic()
        pool = "".join(random.Random(SEED).choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(80000))
        errors = []
        writers = [threading.Thread(target=write_backlog, args=(s, site, errors, pool))
                   for s, site in ((source, source_site), (feeder, feeder_site))]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        require("backlog written with the CLI in two stores", not errors, "\n".join(errors))
        export = os.path.join(work, "south.tlx")
        r = tl("export", "--store", feeder, "--out", export, "--json")
        require("south: export its blocks", r.returncode == 0, r.stderr)
        r = tl("import", "--store", source, export, "--json")
        require("north: import south's export (another site's blocks)",
                r.returncode == 0 and json.loads(r.stdout).get("refused") == [], r.stdout + r.stderr)
        for i in range(3, TICKETS + 1, 6):
            r = tl("ticket", "comment", f"{feeder_site.upper()}-{i}", "--body", f"north answers south {i}",
                   "--internal", "--store", source)
            if r.returncode:
                require(f"north: comment on {feeder_site.upper()}-{i}", False, r.stderr)
        for i in (1, 2, 3):
            r = tl("ticket", "create", "--store", target, "--subject", f"east offline {i}", "--tag", "laptop")
            if r.returncode:
                require(f"east: offline ticket {i}", False, r.stderr)
        check("north comments on south's tickets; east writes 3 tickets offline", True)
        db = sqlite3.connect(os.path.join(source, DB))
        reference = block_hashes(db)
        tickets = db.execute("SELECT COUNT(*) FROM ticket").fetchone()[0]
        db.close()
        total = len(reference)
        backlog_s = time.monotonic() - t0
        print(f"      backlog: {total} blocks ({tickets} tickets, origins north and south) in {backlog_s:.1f} s")

        # 2. the node and the calibration
        port = free_port()
        config = os.path.join(work, "north.json")
        with open(config, "w") as f:
            json.dump({"listen": f"{HOST}:{port}", "store": source, "batchBlocks": BATCH_BLOCKS}, f)
        node_log = os.path.join(work, "node.log")
        node = start(["serve", "--config", config], node_log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and node.poll() is None and "listening" not in tail(node_log, 50):
            time.sleep(0.05)
        require(f"node north listens on {HOST}:{port} within 60 s (batchBlocks {BATCH_BLOCKS})",
                "listening" in tail(node_log, 50) and node.poll() is None, tail(node_log))
        rc, rep, t_full = sync(probe, port, os.path.join(work, "probe-1.log"))
        require("calibration: the probe syncs the whole backlog (exit 0)",
                rc == 0 and rep and rep.get("received", {}).get("blocks") == total,
                f"exit {rc}, report {rep}\n{tail(os.path.join(work, 'probe-1.log'))}")
        rc, rep, t_idle = sync(probe, port, os.path.join(work, "probe-2.log"))
        require("calibration: a sync with nothing to move exits 0", rc == 0, tail(os.path.join(work, "probe-2.log")))
        rate = total / max(t_full - t_idle, 0.05)
        print(f"      calibration: full sync {t_full:.2f} s, idle sync {t_idle:.2f} s, {rate:.0f} blocks/s")

        # 3. the kills
        rng = random.Random(SEED)
        scratch = os.path.join(work, "copy")
        want = total + 3  # the source's blocks and east's own
        landed = mid = still = after_end = finished_early = 0
        vector_checks = 0
        bad_kills = []
        rows = []
        db = open_copy(target, scratch)
        have = sum(log_problems(db, reference, target_site)[1].values())  # east's own blocks
        db.close()
        startup = t_idle  # how long a sync takes before it commits anything: grows when a kill lands before
        for attempt in range(1, 2 * KILLS + 1):
            if landed >= KILLS:
                break
            left = KILLS - landed
            remaining_s = max(want - have, 0) / rate
            delay = rng.uniform(0.5, 1.0) * startup + rng.random() * 2 * remaining_s / (left + 2)
            t0 = time.monotonic()
            p = start(["sync", f"{HOST}:{port}", "--store", target, "--json", "--quiet"],
                      os.path.join(work, f"kill-{attempt}.log"))
            while time.monotonic() - t0 < delay and p.poll() is None:
                time.sleep(min(0.005, max(0.0, delay - (time.monotonic() - t0))))
            killed = p.poll() is None
            if killed:
                os.kill(p.pid, signal.SIGKILL)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
            rc = stop(p, signal.SIGKILL)
            procs.remove(p)
            db = open_copy(target, scratch)
            problems, counts = log_problems(db, reference, target_site)
            db.close()
            now = sum(counts.values())
            if killed:
                landed += 1
                if now == have:
                    kind = "no progress (startup, handshake or first transaction)"
                    still += 1
                    startup *= 1.5  # slower than calibrated (a busy machine): wait longer next time
                elif now < want:
                    kind = "mid-apply"
                    mid += 1
                else:
                    kind = "after the last batch"
                    after_end += 1
            else:
                kind = f"sync ended by itself first (exit {rc})"
                finished_early += 1
            rows.append(f"#{attempt:2d} delay {delay * 1000:6.0f} ms  {have:5d} -> {now:5d} of {want}  {kind}")
            if problems:
                bad_kills.append(f"kill #{attempt} ({have} -> {now} blocks): " + "; ".join(problems))
            if now < have:
                bad_kills.append(f"kill #{attempt}: the target went back from {have} to {now} blocks")
            have = now
            if killed and landed % 4 == 0:
                vector_checks += 1
                r = tl("vector", "--store", target, "--json")
                v = json.loads(r.stdout) if r.returncode == 0 else None
                expect = {o: n for o, n in counts.items()}
                if v is None or {k: n for k, n in v.items() if n} != expect:
                    bad_kills.append(f"kill #{attempt}: `tierline vector` gives {r.stdout.strip() or r.stderr.strip()}, "
                                     f"the log holds {expect}")
            if not killed and rc == 0 and have >= want:
                break  # the backlog is used up; more kills would not land mid-apply
        print("      kills (delay after start, the target's blocks before -> after):")
        for row in rows:
            print(f"      {row}")
        # How many kills land, and where, depends on the machine's speed and load: the counts are printed
        # (below), the checks ask only that the kills did hit a running sync, mid-apply at least once.
        check(f"SIGKILLs landed while the sync ran: {landed} of {KILLS} planned (at least one)", landed >= 1,
              f"{landed} landed, {finished_early} syncs ended before their kill")
        check("after every kill: integrity_check ok, gap-free log per origin equal to versionEntry, no duplicate, "
              "hashes equal the source's, every block materialized", not bad_kills, "\n".join(bad_kills))
        check(f"kills landed mid-apply (the target's block count grew, not complete): {mid} of {landed} (at least one)",
              mid >= 1, "\n".join(rows))
        check("the node survived the killed sessions", node.poll() is None, tail(node_log))

        # 4. the end
        rc, rep, wall = sync(target, port, os.path.join(work, "final.log"))
        check("the final sync exits 0 and reports completed", rc == 0 and rep and rep.get("completed") is True,
              f"exit {rc}, report {rep}\n{tail(os.path.join(work, 'final.log'))}")
        check(f"the final sync resumed where the last kill left off: received and applied exactly the {want - have} "
              "blocks east lacked, no duplicate",
              rep and rep["received"]["blocks"] == rep.get("applied") == want - have and rep.get("duplicates") == 0,
              f"report {rep}")
        rc, rep, _ = sync(target, port, os.path.join(work, "again.log"))
        check("a further sync moves 0 blocks either way (nothing lost, nothing twice)",
              rc == 0 and rep and rep["received"]["blocks"] == 0 and rep["sent"]["blocks"] == 0
              and rep.get("applied") == 0, f"exit {rc}, report {rep}")
        d_source = tl("digest", "--store", source).stdout.strip()
        d_target = tl("digest", "--store", target).stdout.strip()
        check("the digests of north and east are equal", d_source == d_target and len(d_source) == 64,
              f"north {d_source!r}, east {d_target!r}")
        rc = stop(node)
        check("the node stops with exit 0 on SIGTERM", rc == 0, f"exit {rc}\n{tail(node_log)}")
        node = None
        dbs = {n: sqlite3.connect(os.path.join(p, DB)) for n, p in (("north", source), ("east", target))}
        hashes = {n: block_hashes(db) for n, db in dbs.items()}
        check(f"east holds as many blocks as north ({len(hashes['north'])})",
              len(hashes["east"]) == len(hashes["north"]) == want,
              f"north {len(hashes['north'])}, east {len(hashes['east'])}, want {want}")
        diff = set(hashes["north"].items()) ^ set(hashes["east"].items())
        check("every (origin, seq, hash) of north is on east and nothing else", not diff, f"{len(diff)} differ: {sorted(diff)[:5]}")
        for n, db in dbs.items():
            problems, _ = log_problems(db, hashes["north"], "")
            check(f"{n}: integrity_check ok and the log consistent at the end", not problems, "\n".join(problems))
            db.close()
        print(f"      {landed} kills landed: {mid} mid-apply, {still} before any new commit, {after_end} after the "
              f"last batch; {finished_early} syncs ended before their kill; {vector_checks} `tierline vector` checks; "
              f"{want} blocks")
    except Stop:
        print("(stopping: later checks depend on this step)")
    except Exception:  # a crash of this script is a failure, with its traceback
        import traceback
        check("the script ran to the end", False, traceback.format_exc())
    finally:
        for p in procs:
            if p.poll() is None:
                stop(p, signal.SIGKILL if p is not node else signal.SIGTERM)
        if harness.failed and node is not None:
            print("node log (last lines):\n" + tail(os.path.join(work, "node.log")))
        shutil.rmtree(work, ignore_errors=True)
        harness.summary("crash-sync", started)


run()
sys.exit(1 if harness.failed else 0)
