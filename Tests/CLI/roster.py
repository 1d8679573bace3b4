"""Shared by the Python CLI scripts: makes stores one fleet, as an operator would at setup.

admit(tl, require, work, paths) makes a coordinator store `hq` in WORK, adds each store to its roster
with the site and role the store was made with (`roster add`), pins hq's key in each (`roster pin`) and
hands each the roster file (`roster export` / `roster import`), so the stores can sync with each other
before any of them has met the coordinator. `tl` runs tierline and returns a CompletedProcess;
`require(name, ok, detail)` stops the script when a step fails."""
import json
import os


def admit(tl, require, work, paths):
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
