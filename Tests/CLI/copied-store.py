#!/usr/bin/env python3
"""A copied store is found out, named and stopped: never two silent histories of one site.

Usage: Tests/CLI/copied-store.py PATH/TO/tierline

A node (site north, `tierline serve --listen … --http …`) runs; a laptop (site field) syncs with it. Then
the laptop's store is copied (`cp -a`, as a reimaged laptop would be), each copy writes a ticket, and both
run `tierline sync` with north: the original first. Checks, with real processes:
  * the original's sync exits 0; the copy's exits 1, saying the store is a copy, and so does every later
    sync of the copy (never 0 over different digests);
  * the copy's `status --json` names the divergence (origin field, the seq, north) and says it writes
    nothing; its next `ticket create` is refused with that reason, and nothing it wrote reached north;
  * north's `status --json` lists the divergence, its `/metrics` has tierline_sync_diverged{site="field"} 1
    and its `/api/sites` the seq (read with the API token of a manager `ops`, published by the coordinator
    hq and synced to north); north and the original laptop end with equal digests, and north holds
    the original's ticket, not the copy's;
  * a new store (field2) recovers the copy's unsynced ticket with `tierline recover --from`; a second
    recover from the copy exits non-zero saying it was already re-issued, and north ends with that ticket
    once.

Standard library only. Binds 127.0.0.1 only; every wait is bounded; every process started is stopped by
its own pid in a finally block; the temporary folder is removed.
"""
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, Stop, check, free_port, require, tl  # noqa: E402

harness.find_binary()


def status(store):
    r = tl("status", "--json", "--store", store)
    require(f"status of {os.path.basename(store)}", r.returncode == 0, r.stderr)
    return json.loads(r.stdout)


def subjects(store):
    r = tl("ticket", "list", "--json", "--store", store)
    require(f"ticket list of {os.path.basename(store)}", r.returncode == 0, r.stderr)
    return {t["subject"] for t in json.loads(r.stdout)}


def get(url, token=None, timeout=30):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
        return response.read().decode()


def main():
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tierline-copied-")
    try:
        harness.private_copy(work)
        stores = harness.setup_stores(work, [("north", "north", "site"), ("lap", "field", "laptop")])
        north, lap = stores["north"][0], stores["lap"][0]
        copy = os.path.join(work, "lap-copy")
        port, http = free_port(), free_port()
        log_path = os.path.join(work, "north.log")
        node = harness.start_node(["serve", "--listen", f"{HOST}:{port}", "--http", f"{HOST}:{http}", "--store", north], log_path, "north")

        def sync(store):
            return tl("sync", f"{HOST}:{port}", "--store", store, timeout=120)

        # The dashboard's API needs a manager: hq publishes one, hands it to north over sync, and north
        # (where it signs in) issues its token. Once an agent is published, every ticket write must be
        # recorded as an active agent: the stores write as ops from here on.
        os.environ["TIERLINE_ACTOR"] = "ops"
        hq = os.path.join(work, "hq")
        r = tl("agent", "add", "ops", "--site", "hq", "--role", "manager", "--store", hq)
        require("hq publishes a manager ops", r.returncode == 0, r.stderr)
        r = sync(hq)
        require("hq syncs with north (the agent directory)", r.returncode == 0, r.stderr + r.stdout)
        r = tl("agent", "token", "ops", "--label", "copied-store", "--json", "--store", north)
        require("north issues an API token for ops", r.returncode == 0, r.stderr)
        token = json.loads(r.stdout)["token"]

        require("the laptop writes a ticket",
                tl("ticket", "create", "--subject", "before the copy", "--store", lap).returncode == 0)
        r = sync(lap)
        require("the laptop's first sync exits 0", r.returncode == 0, r.stderr + r.stdout)

        shutil.copytree(lap, copy, symlinks=True)  # cp -a: the same site, key and history
        require("the original writes a ticket",
                tl("ticket", "create", "--subject", "written by the original", "--store", lap).returncode == 0)
        require("the copy writes a ticket",
                tl("ticket", "create", "--subject", "written by the copy", "--store", copy).returncode == 0)

        r = sync(lap)
        check("the original's sync exits 0", r.returncode == 0, r.stderr + r.stdout)
        r = sync(copy)
        text = r.stderr + r.stdout
        check("the copy's sync exits 1", r.returncode == 1, text)
        check("the copy's sync says the store is a copy and that it writes nothing more",
              "diverged" in text and "copy" in text and "writes nothing more" in text, text)
        r = sync(copy)
        check("a second sync of the copy exits 1 again", r.returncode == 1, r.stderr + r.stdout)

        s = status(copy)
        divergences = s.get("divergences") or []
        check("the copy's status names the divergence: origin field at seq 2 (the first block after the copy), shown by north",
              any(d["origin"] == "field" and d["peer"] == "north" and d["seq"] == 2 for d in divergences), json.dumps(divergences))
        check("the copy's status says it writes nothing, and what to do",
              isinstance(s.get("copiedStore"), str) and "tierline init --site" in s["copiedStore"], s.get("copiedStore"))
        r = tl("status", "--store", copy)
        check("the copy's status table says so too", "THIS STORE WRITES NOTHING" in r.stdout, r.stdout)
        r = tl("ticket", "create", "--subject", "after the copy was found out", "--store", copy)
        check("the copy refuses a new ticket, saying it is a copy", r.returncode != 0 and "copy" in r.stderr, r.stderr)

        s = status(north)
        check("north's status lists the divergence of field",
              any(d["origin"] == "field" and d["peer"] == "field" for d in s.get("divergences") or []), json.dumps(s.get("divergences")))
        metrics = get(f"http://{HOST}:{http}/metrics")
        check('north\'s /metrics says tierline_sync_diverged{site="field"} 1',
              'tierline_sync_diverged{site="field"} 1' in metrics,
              "\n".join(l for l in metrics.splitlines() if "diverged" in l))
        sites = json.loads(get(f"http://{HOST}:{http}/api/sites", token))
        rows = sites.get("sites", sites) if isinstance(sites, dict) else sites
        field = next((x for x in rows if x.get("site") == "field"), None)
        check("north's /api/sites gives field's divergedAtSeq 2", field is not None and field.get("divergedAtSeq") == 2,
              json.dumps(field))

        have = subjects(north)
        check("north holds the original's ticket and not the copy's",
              "written by the original" in have and "written by the copy" not in have, sorted(have))
        r = sync(lap)
        check("the original still syncs with north (exit 0)", r.returncode == 0, r.stderr + r.stdout)

        # Recovery, as the copy's status says: a new store with a site id of its own, admitted by the
        # coordinator (hq), synced, then `recover --from` the copy; nothing the copy wrote is lost.
        new = os.path.join(work, "lap-new")
        r = tl("init", "--store", new, "--site", "field2", "--role", "laptop", "--json")
        require("init a new store for the copied laptop (site field2)", r.returncode == 0, r.stderr)
        key = json.loads(r.stdout)["publicKey"]
        require("hq admits field2", tl("roster", "add", "field2", "--key", key, "--role", "laptop", "--store", hq).returncode == 0)
        hq_key = status(hq)["publicKey"]
        require("field2 pins hq's key", tl("roster", "pin", hq_key, "--store", new).returncode == 0)
        roster = os.path.join(work, "roster-2.json")
        require("hq exports the new roster", tl("roster", "export", "--out", roster, "--store", hq).returncode == 0)
        require("field2 takes it", tl("roster", "import", roster, "--store", new).returncode == 0)
        r = sync(new)
        require("field2's first sync with north exits 0 (north learns the roster from it)", r.returncode == 0, r.stderr + r.stdout)
        r = tl("recover", "--from", copy, "--store", new, "--json")
        require("tierline recover --from the copy exits 0", r.returncode == 0, r.stderr + r.stdout)
        report = json.loads(r.stdout)
        check("recover re-issues the copy's one unsynced block, its ticket renumbered FIELD-2 -> FIELD2-1",
              report["blocksRead"] == [2] and [(t["was"], t["now"]) for t in report["tickets"]] == [("FIELD-2", "FIELD2-1")],
              json.dumps(report))
        r = tl("recover", "--from", copy, "--store", new)
        check("a second recover from the copy exits non-zero, saying the work was already re-issued and what to do instead",
              r.returncode != 0 and "already re-issued" in r.stderr and "nothing was written" in r.stderr and "tierline sync" in r.stderr,
              r.stderr + r.stdout)
        r = tl("recover", "--from", lap, "--store", new)
        check("recover refuses a store that is not a copy", r.returncode != 0 and "not a copy" in r.stderr, r.stderr)
        r = sync(new)
        check("field2's sync after the recovery exits 0", r.returncode == 0, r.stderr + r.stdout)
        r = sync(lap)
        check("the original's sync after it exits 0", r.returncode == 0, r.stderr + r.stdout)
        have = subjects(north)
        check("north now holds both laptops' tickets",
              {"before the copy", "written by the original", "written by the copy"} <= have, sorted(have))
        r = tl("ticket", "list", "--json", "--store", north)
        copies = [t for t in json.loads(r.stdout) if t["subject"] == "written by the copy"] if r.returncode == 0 else None
        check("north holds the copy's ticket once, as FIELD2-1", copies is not None and [t["displayNumber"] for t in copies] == ["FIELD2-1"],
              json.dumps(copies))
        digests = {name: tl("digest", "--store", path).stdout.strip() for name, path in
                   (("north", north), ("original", lap), ("field2", new))}
        check("north, the original laptop and field2 end with equal digests",
              len(set(digests.values())) == 1 and all(len(d) == 64 for d in digests.values()), json.dumps(digests))
        check("the copy still writes nothing",
              tl("ticket", "create", "--subject", "still a copy", "--store", copy).returncode != 0)
        harness.check_stops(node, log_path)
    except Stop:
        pass
    finally:
        harness.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    harness.summary("copied-store", started)
    sys.exit(1 if harness.failed else 0)


if __name__ == "__main__":
    main()
