#!/usr/bin/env python3
"""Every command's `--json` keeps every key it had (issue 19: the Desk refactoring must not change
what scripts read).

Builds a small fleet (hq, the coordinator, and north, a site) in a temporary folder, runs each
read-or-write command with `--json`, and collects every key path of its output (`a.b[].c`; members of
every element of an array). The paths recorded in Tests/CLI/fixtures/json-keys.json must all still be
there; new keys are allowed. `--record` rewrites the fixture from the binary under test (do that only
when a key is dropped or renamed on purpose, and say so in the commit).

    python3 Tests/CLI/json-keys.py [PATH/TO/tierline] [--record]

Binds 127.0.0.1 only; every run is bounded; the node it starts is stopped at the end.
"""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST, check, require, tl  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "json-keys.json")
DEPLOY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Deploy")


def paths(value, prefix=""):
    """Every key path in VALUE: objects give `prefix.key`, arrays `prefix[]` (all elements merged)."""
    out = set()
    if isinstance(value, dict):
        for key, member in value.items():
            here = f"{prefix}.{key}" if prefix else key
            out.add(here)
            out |= paths(member, here)
    elif isinstance(value, list):
        for element in value:
            out |= paths(element, prefix + "[]")
    return out


def main():
    record = "--record" in sys.argv
    sys.argv = [a for a in sys.argv if a != "--record"]
    harness.find_binary()
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="tl-json-keys-")
    harness.private_copy(work)
    node = None
    found = {}
    try:
        stores = harness.setup_stores(work, [("north", "north", "site")])
        north, hq = stores["north"][0], os.path.join(work, "hq")

        def run(name, store, *args, json_flag=True):
            r = tl(*args, *(["--store", store] if store else []), *(["--json"] if json_flag else []))
            require(f"{name} exits 0", r.returncode == 0, r.stderr + r.stdout)
            try:
                value = json.loads(r.stdout)
            except ValueError as e:
                require(f"{name} prints JSON", False, f"{e}: {r.stdout[:300]}")
            found[name] = sorted(paths(value))
            return value

        run("config publish", hq, "config", "publish", os.path.join(DEPLOY, "escalation.json"))
        run("config show", hq, "config", "show")
        port = harness.free_port()
        node = harness.start_node(["serve", "--store", hq, "--listen", f"{HOST}:{port}"], os.path.join(work, "hq.log"), "hq")
        run("sync", north, "sync", f"{HOST}:{port}")
        bare = run("ticket create (bare)", north, "ticket", "create", "--subject", "Printer offline")
        full = run("ticket create (every option)", north, "ticket", "create", "--subject", "Payroll export fails",
                   "--priority", "urgent", "--customer", "acme", "--channel", "email", "--group", "payroll",
                   "--assignee", "ana", "--tag", "payroll", "--message", "It fails for everyone.",
                   "--customer-tier", "platinum", "--category", "payroll")
        run("ticket list", north, "ticket", "list")
        run("ticket show (bare)", north, "ticket", "show", bare["id"])
        run("ticket update", north, "ticket", "update", full["id"], "--status", "pending_customer")
        run("ticket comment", north, "ticket", "comment", full["id"], "--body", "On it.")
        run("ticket tag", north, "ticket", "tag", full["id"], "--add", "vip")
        run("sla", north, "sla")
        run("escalate", north, "escalate", full["id"], "--to", "tier2@hq", "--summary", "Export fails",
            "--steps-tried", "re-ran it", "--verified-facts", "logs show a timeout",
            "--requested-action", "check the database")
        run("ticket show (escalated)", north, "ticket", "show", full["id"])
        run("handoff list", north, "handoff", "list")
        run("sync (again)", north, "sync", f"{HOST}:{port}")
        run("status", north, "status")
        run("roster list", north, "roster", "list")
        run("quarantine list", north, "quarantine", "list")
        run("vector", north, "vector", json_flag=False)
        run("customer list", north, "customer", "list")
        run("ticket update (solved)", north, "ticket", "update", bare["id"], "--status", "solved")
        run("kb add", north, "kb", "add", bare["id"], "--title", "Payroll export timeouts", "--summary", "A timeout",
            "--root-cause", "a slow query", "--steps", "re-run after the index is built")
        run("kb list", north, "kb", "list")
        run("kb search", north, "kb", "search", "payroll")
        run("intake token list", north, "intake", "token", "list")
        run("backup", north, "backup", os.path.join(work, "north.backup"))
        run("serve --check", north, "serve", "--check", "--peer", f"{HOST}:{port}", "--allow-plain", "lap")
        run("routing check", None, "routing", "check", os.path.join(DEPLOY, "routing.json"))
        if record:
            os.makedirs(os.path.dirname(FIXTURE), exist_ok=True)
            with open(FIXTURE, "w") as f:
                json.dump(found, f, indent=1, sort_keys=True)
                f.write("\n")
            print(f"recorded {sum(len(v) for v in found.values())} key paths of {len(found)} commands in {FIXTURE}")
        else:
            with open(FIXTURE) as f:
                expected = json.load(f)
            for name, keys in sorted(expected.items()):
                missing = sorted(set(keys) - set(found.get(name, [])))
                check(f"{name} --json keeps its {len(keys)} key paths", not missing, f"missing: {missing}")
    except harness.Stop:
        pass
    finally:
        harness.stop_all()
    harness.summary("json-keys", started)
    sys.exit(1 if harness.failed else 0)


if __name__ == "__main__":
    main()
