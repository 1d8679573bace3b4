#!/usr/bin/env python3
"""Bulk paths of the CLI (issue 23): `ticket import` (CSV and JSON lines, in batches, one bad row
refusing the whole file), and `export`/`import` streaming with bounded memory.

The memory check exports and imports a store whose blocks inflate to about BULK_MB MiB (default 72):
each of `tierline ticket import` (of the JSON lines that make it), `tierline export` and `tierline import` must peak below 100 MiB of resident memory (read from
the kernel's accounting of the finished child, not timed). A reader that held the file, or its blocks,
whole would need more than the blocks' size.

    python3 Tests/CLI/bulk-import.py [PATH/TO/tierline]

Runs only the CLI on temporary stores; no network.
"""
import glob
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, require, tl  # noqa: E402

RSS_BOUND_MIB = 100


def peak_rss_mib(args, timeout=900):
    """Runs tierline ARGS in a child of a fresh Python, which reports the child's peak RSS (MiB)."""
    probe = ("import resource, subprocess, sys\n"
             "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "sys.stderr.write(p.stderr)\n"
             "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    p = subprocess.run([sys.executable, "-c", probe, harness.BIN, *args], capture_output=True, text=True, timeout=timeout)
    code, kib = p.stdout.split()
    return int(code), int(kib) / 1024, p.stderr


def count_tickets(store):
    p = tl("ticket", "list", "--store", store, "--json", "--limit", "1000000", timeout=300)
    return len(json.loads(p.stdout)) if p.returncode == 0 else -1


def main():
    harness.find_binary()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        harness.private_copy(work)
        north, south = os.path.join(work, "north"), os.path.join(work, "south")
        for store, site in [(north, "north"), (south, "south")]:
            require(f"init {site}", tl("init", "--site", site, "--store", store).returncode == 0)

        # 1. CSV, in batches, with progress and a JSON summary.
        rows = 2_500
        csv = os.path.join(work, "tickets.csv")
        with open(csv, "w", encoding="utf-8") as f:
            f.write("subject,priority,customer,channel,tags,first message\n")
            for n in range(rows):
                f.write(f"\"Printer {n}, floor {n % 7}\",{['low', 'normal', 'high', 'urgent'][n % 4]},C-{n % 50},email,"
                        f"printer;floor-{n % 7},\"It jams.\nAgain ({n}).\"\n")
        p = tl("ticket", "import", csv, "--store", north, "--batch", "500", "--json", "--actor", "ops", timeout=600)
        report = json.loads(p.stdout) if p.returncode == 0 else {}
        check("ticket import of a 2,500-row CSV: every row, five transactions",
              report.get("created") == rows and report.get("transactions") == 5 and report.get("firstNumber") == "NORTH-1"
              and report.get("lastNumber") == f"NORTH-{rows}" and report.get("byPriority") == {k: rows // 4 for k in ["low", "normal", "high", "urgent"]},
              p.stderr or p.stdout[:600])
        check("it shows its progress on stderr, to the last row", f"{rows}/{rows}" in p.stderr, p.stderr)
        check("every ticket is listed", count_tickets(north) == rows)
        p = tl("ticket", "show", "NORTH-2", "--store", north, "--json")
        shown = json.loads(p.stdout) if p.returncode == 0 else {}
        check("a row's fields are the ticket's", shown.get("subject") == "Printer 1, floor 1" and shown.get("priority") == "normal"
              and shown.get("tags") == ["floor-1", "printer"] and (shown.get("customer") or {}).get("key") == "C-1"
              and any(e.get("kind") == "customer_message" for e in shown.get("events", [])), p.stdout[:800] or p.stderr)

        # 2. JSON lines, with the summary table.
        jsonl = os.path.join(work, "more.jsonl")
        with open(jsonl, "w", encoding="utf-8") as f:
            f.write(json.dumps({"subject": "VPN down", "priority": "urgent", "tags": ["vpn"]}) + "\n\n")
            f.write(json.dumps({"subject": "Mail slow", "customer_tier": None, "firstMessage": "Since Monday"}) + "\n")
        p = tl("ticket", "import", jsonl, "--store", north)
        check("ticket import of JSON lines prints a summary table", p.returncode == 0 and "created" in p.stdout
              and f"NORTH-{rows + 2}" in p.stdout and "urgent" in p.stdout and p.stderr == "", p.stdout + p.stderr)

        # 3. One bad row refuses the whole file.
        bad = os.path.join(work, "bad.csv")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("subject,priority\nfine,high\nalso fine,low\nbroken,hihg\n")
        before = count_tickets(north)
        p = tl("ticket", "import", bad, "--store", north)
        check("a bad row: exit 2, its line and column named, nothing imported",
              p.returncode == 2 and "line 4, column 2 (priority)" in p.stderr and "nothing was imported" in p.stderr
              and count_tickets(north) == before, p.stderr)
        with open(bad, "w", encoding="utf-8") as f:
            f.write("subject,channel\nfine,email\ntypo,emial\n")
        p = tl("ticket", "import", bad, "--store", north)
        check("a channel ticket create refuses is refused the same way, with its place",
              p.returncode == 2 and p.stderr.startswith("error: " + bad + " line 3, column 2 (channel)") and "Did you mean \"email\"" in p.stderr
              and count_tickets(north) == before, p.stderr)
        p = tl("ticket", "import", os.path.join(work, "tickets.txt"), "--store", north)
        check("a file whose format its name does not tell: exit 2, asks for --format", p.returncode == 2 and "--format" in p.stderr, p.stderr)
        p = tl("ticket", "import", jsonl, "--store", north, "--format", "csv")
        check("--format overrides the extension (JSON lines read as CSV are refused)", p.returncode == 2 and "more.jsonl line 1" in p.stderr, p.stderr)

        # 4. export → import, streamed, in batches; again is a no-op.
        out = os.path.join(work, "north.tlx")
        p = tl("export", "--store", north, "--out", out, "--json", timeout=600)
        exported = json.loads(p.stdout) if p.returncode == 0 else {}
        blocks = exported.get("blocks", 0)
        check("export writes every block", blocks > 40 and os.path.getsize(out) == exported.get("bytes")
              and not glob.glob(out + ".partial*"), p.stderr or p.stdout)
        p = tl("import", out, "--store", south, "--batch", "20", "--json", timeout=600)
        imported = json.loads(p.stdout) if p.returncode == 0 else {}
        check("import applies every block, in batches, with progress", imported.get("applied") == blocks
              and f"applying): {blocks}/{blocks}" in p.stderr, p.stderr[-600:] or p.stdout)
        digests = [tl("digest", "--store", s).stdout for s in (north, south)]
        check("the two stores are equal", digests[0] == digests[1] and len(digests[0].strip()) == 64, digests)
        p = tl("import", out, "--store", south, "--json", "--quiet", timeout=600)
        again = json.loads(p.stdout) if p.returncode == 0 else {}
        check("importing again applies nothing; --quiet prints no progress",
              again.get("applied") == 0 and again.get("duplicates") == exported.get("blocks") and p.stderr == "", p.stderr)

        # 5. Bounded memory: blocks inflating to tens of MiB, exported and imported under 100 MiB.
        big, empty = os.path.join(work, "big"), os.path.join(work, "empty")
        for store, site in [(big, "big"), (empty, "empty")]:
            require(f"init {site}", tl("init", "--site", site, "--store", store).returncode == 0)
        size_mb = int(os.environ.get("BULK_MB", "72"))
        body = 48_000
        count = size_mb * 1024 * 1024 // body
        heavy = os.path.join(work, "heavy.jsonl")
        with open(heavy, "w", encoding="utf-8") as f:
            for n in range(count):
                text = (f"line {n}: the printer on floor {n % 9} jams again. " * (body // 40))[:body]
                f.write(json.dumps({"subject": f"Heavy {n}", "firstMessage": text}) + "\n")
        code, mib, err = peak_rss_mib(["ticket", "import", heavy, "--store", big, "--batch", "50", "--quiet"])
        require(f"{count} tickets of {body // 1000} kB each imported", code == 0, err)
        check(f"ticket import of ~{size_mb} MiB streams it: peaks under {RSS_BOUND_MIB} MiB ({mib:.0f} MiB)", mib < RSS_BOUND_MIB, err)
        tlx = os.path.join(work, "big.tlx")
        code, mib, err = peak_rss_mib(["export", "--store", big, "--out", tlx, "--quiet"])
        check(f"export of ~{size_mb} MiB of blocks peaks under {RSS_BOUND_MIB} MiB ({mib:.0f} MiB)", code == 0 and mib < RSS_BOUND_MIB, err)
        code, mib, err = peak_rss_mib(["import", tlx, "--store", empty, "--quiet"])
        check(f"import of it peaks under {RSS_BOUND_MIB} MiB ({mib:.0f} MiB)", code == 0 and mib < RSS_BOUND_MIB, err)
        digests = [tl("digest", "--store", s, timeout=300).stdout for s in (big, empty)]
        check("and the stores are equal", digests[0] == digests[1], digests)

        # 6. An import killed mid-way leaves a consistent store; the same import again finishes it.
        killed = os.path.join(work, "killed")
        require("init killed", tl("init", "--site", "killed", "--store", killed).returncode == 0)
        p = subprocess.Popen([harness.BIN, "import", tlx, "--store", killed, "--batch", "10"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        harness.procs.append(p)
        line = ""
        while "applying" not in line:
            line = p.stderr.readline()
            if not line:
                break
        was_running = p.poll() is None
        p.kill()
        p.wait()
        db = sqlite3.connect(os.path.join(killed, "tierline.sqlite"))
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        held = db.execute("SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM block WHERE origin = 'big'").fetchone()
        db.close()
        check(f"a kill during the apply pass ({'killed mid-run' if was_running else 'it had finished'}) leaves a whole log: "
              f"{held[1]} blocks, gap-free", integrity == "ok" and held[0] == held[1], (integrity, held))
        p = tl("import", tlx, "--store", killed, "--json", "--quiet", timeout=900)
        rest = json.loads(p.stdout) if p.returncode == 0 else {}
        check("importing again applies the rest", rest.get("duplicates") == held[1] and rest.get("applied", 0) + held[1] == rest.get("received"),
              p.stderr or p.stdout)
        check("and the store equals the source", tl("digest", "--store", killed, timeout=300).stdout == digests[0])

        # 7. A ticket import killed (-9) mid-way keeps its committed batches; the same command again
        # opens only the rest: exactly one ticket per row.
        resumed = os.path.join(work, "resumed")
        require("init resumed", tl("init", "--site", "resumed", "--store", resumed).returncode == 0)
        p = subprocess.Popen([harness.BIN, "ticket", "import", csv, "--store", resumed, "--batch", "100", "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        harness.procs.append(p)
        stored = 0
        for _ in range(6000):  # bounded: until some batches are committed, or the import is over
            if p.poll() is not None:
                break
            try:
                db = sqlite3.connect(f"file:{os.path.join(resumed, 'tierline.sqlite')}?mode=ro", uri=True, timeout=5)
                stored = db.execute("SELECT COUNT(*) FROM ticket WHERE number IS NOT NULL").fetchone()[0]
                db.close()
            except sqlite3.Error:
                stored = 0
            if stored >= 300:
                break
            time.sleep(0.02)
        was_running = p.poll() is None
        p.kill()
        p.wait()
        held = count_tickets(resumed)
        p = tl("ticket", "import", csv, "--store", resumed, "--batch", "500", "--json", timeout=600)
        report = json.loads(p.stdout) if p.returncode == 0 else {}
        check(f"kill -9 during ticket import ({'killed mid-run' if was_running else 'it had finished'}, {held} kept), then the same "
              "command: the rest only, the kept rows counted as already imported",
              report.get("alreadyImported") == held and report.get("created") == rows - held and report.get("rows") == rows,
              p.stderr or p.stdout)
        check("exactly one ticket per row", count_tickets(resumed) == rows)
        p = tl("ticket", "import", csv, "--store", resumed, "--json", timeout=600)
        report = json.loads(p.stdout) if p.returncode == 0 else {}
        check("a third run opens nothing", report.get("created") == 0 and report.get("alreadyImported") == rows and count_tickets(resumed) == rows,
              p.stderr or p.stdout)

        # 8. Refusals name what is wrong and what to do: a folder, a 0-byte file, held-back blocks.
        p = tl("import", work, "--store", resumed)
        check("import of a folder: exit 2, 'is a folder; give the export file'", p.returncode == 2 and "is a folder; give the export file" in p.stderr, p.stderr)
        zero = os.path.join(work, "zero.tlx")
        open(zero, "wb").close()
        p = tl("import", zero, "--store", resumed)
        check("import of a 0-byte file says it is empty", p.returncode != 0 and "the file is empty (0 bytes)" in p.stderr, p.stderr)
        since = os.path.join(work, "since.json")
        with open(since, "w") as f:
            json.dump({"north": 1}, f)
        part = os.path.join(work, "part.tlx")
        require("export of north's later blocks", tl("export", "--store", north, "--out", part, "--since-vector", since, "--quiet").returncode == 0)
        lone = os.path.join(work, "lone")
        require("init lone", tl("init", "--site", "lone", "--store", lone).returncode == 0)
        p = tl("import", part, "--store", lone, "--quiet")
        check("blocks held back: the import says to import or sync the missing ones", p.returncode == 0 and "held back" in p.stdout
              and "note:" in p.stderr and "tierline sync" in p.stderr, p.stdout + p.stderr)
    harness.summary("bulk-import", started)
    return 1 if harness.failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except harness.Stop as e:
        print(f"FAIL: stopped at {e}")
        harness.summary("bulk-import", time.monotonic())
        sys.exit(1)
