#!/usr/bin/env python3
"""Multi-host test: three tierline nodes in their own network namespaces, every byte between them
crossing a fault-injecting proxy (tierline-faultproxy) in a fourth, "wan", namespace.

    python3 Tests/Multihost/netns.py PATH/TO/tierline PATH/TO/tierline-faultproxy

Topology (one /24 per veth pair; nothing routes, so north and south can reach only their proxy):

    north 10.77.2.1 ── 10.77.2.2 ┐                ┌ proxy-north 10.77.2.2:P → 10.77.1.1:7400
                                 wan (proxies) ── 10.77.1.2 ── 10.77.1.1 hub (coordinator, :7400)
    south 10.77.3.1 ── 10.77.3.2 ┘                └ proxy-south 10.77.3.2:Q → 10.77.1.1:7400

Each proxy adds 50 ms one way (100 ms round trip) plus up to 10 ms jitter, 10 % loss (a lost chunk
arrives after a 200 ms retransmission timeout, doubling per further loss) and resets each
connection after a random lifetime averaging 4 s. The scenario: tickets at north, south and hub
converge; south's proxy partitions (SIGUSR1) while both sides write, including a conflicting
assignee on one ticket; south differs; the proxy heals (SIGUSR2) and all converge with the conflict
kept; then the hub publishes an escalation configuration, a platinum urgent ticket at north misses
its 3 s first-response target, north's ticker walks the ladder to a handoff request to tier2@hub,
the hub accepts, and all three stores agree that the hub owns the ticket.

Flags (--loss, --latency-ms, --cut-every-ms, --backlog, --keep, ...) change the faults for exploring;
the defaults are the acceptance criterion. Skips (exit 0, printing SKIP and why) when not root, when `ip netns` is missing, or when a namespace
or veth pair cannot be made. Exits 1 with a message on any failure. Everything it made (processes,
namespaces, the temporary folder) is removed in a `finally`, also on timeout or Ctrl-C.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

# Every wait below polls and ends as soon as its condition holds; the bounds are generous (several
# times what a loaded machine needs), so a machine whose cores are all busy fails no step.
TOTAL_TIMEOUT_S = 1200
# The acceptance criterion's faults; the flags of the same names override them for exploring.
LATENCY_MS, JITTER_MS, LOSS, RETRANSMIT_MS, CUT_EVERY_MS = 50, 10, 0.1, 200, 4000
HUB_PORT = 7400
BACKLOG = 120
PREFIX = f"tlmh{os.getpid()}"
T0 = time.monotonic()


def log(message):
    print(f"[{time.monotonic() - T0:6.2f}s] {message}", flush=True)


class Skip(Exception):
    pass


class Failure(Exception):
    pass


class TestTimeout(Exception):
    pass


def run(argv, timeout=120, check=True):
    """Runs a command, bounded; returns the CompletedProcess; raises Failure if check and rc != 0."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure(f"{' '.join(argv)}: still running after {timeout} s")
    if check and done.returncode != 0:
        raise Failure(f"{' '.join(argv)}: exit {done.returncode}\n  stdout: {done.stdout.strip()[:800]}\n"
                      f"  stderr: {done.stderr.strip()[-1500:]}")
    return done


class Topology:
    """Namespaces hub, north, south and wan joined by veth pairs. Veths are made inside the
    namespaces (`ip link add ... netns A type veth peer ... netns B`), so deleting the namespaces
    removes them; nothing is left in the root namespace."""

    ADDR = {"hub": "10.77.1.1", "north": "10.77.2.1", "south": "10.77.3.1"}
    WAN_SIDE = {"hub": "10.77.1.2", "north": "10.77.2.2", "south": "10.77.3.2"}

    def __init__(self):
        self.ns = {name: f"{PREFIX}-{name}" for name in ("hub", "north", "south", "wan")}
        self.made = []

    def create(self):
        for name, ns in self.ns.items():
            done = run(["ip", "netns", "add", ns], check=False)
            if done.returncode != 0:
                raise Skip(f"`ip netns add {ns}` failed: {done.stderr.strip()}")
            self.made.append(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for i, site in enumerate(("hub", "north", "south"), start=1):
            here, there = f"v{site[:1]}0", f"w{site[:1]}0"
            done = run(["ip", "link", "add", "name", here, "netns", self.ns[site], "type", "veth",
                        "peer", "name", there, "netns", self.ns["wan"]], check=False)
            if done.returncode != 0:
                raise Skip(f"creating the veth pair {here}/{there} failed: {done.stderr.strip()}")
            run(["ip", "-n", self.ns[site], "addr", "add", f"{self.ADDR[site]}/24", "dev", here])
            run(["ip", "-n", self.ns["wan"], "addr", "add", f"{self.WAN_SIDE[site]}/24", "dev", there])
            run(["ip", "-n", self.ns[site], "link", "set", here, "up"])
            run(["ip", "-n", self.ns["wan"], "link", "set", there, "up"])

    def delete(self):
        for ns in reversed(self.made):
            done = run(["ip", "netns", "del", ns], check=False)
            if done.returncode != 0:
                print(f"warning: `ip netns del {ns}` failed: {done.stderr.strip()}", file=sys.stderr)
        self.made = []


def remove_stale_namespaces():
    """Deletes namespaces of earlier runs of this script whose process is gone and that hold no
    process any more (a run killed with SIGKILL cannot clean up)."""
    done = run(["ip", "netns", "list"], check=False)
    for line in done.stdout.splitlines():
        m = re.match(r"(tlmh(\d+)-\w+)", line.strip())
        if not m or int(m.group(2)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(2)), 0)
            continue  # that run is alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        if run(["ip", "netns", "pids", m.group(1)], check=False).stdout.strip():
            continue
        run(["ip", "netns", "del", m.group(1)], check=False)
        log(f"removed the stale namespace {m.group(1)} of an earlier run")


class Processes:
    """Background processes by name, each with its log file; stopped by their own pid."""

    def __init__(self, folder):
        self.folder = folder
        self.procs = {}

    def start(self, name, argv, ns=None):
        full = (["ip", "netns", "exec", ns] if ns else []) + argv  # `ip netns exec` execs: same pid
        out = open(os.path.join(self.folder, f"{name}.out"), "w")
        err = open(os.path.join(self.folder, f"{name}.err"), "w")
        proc = subprocess.Popen(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        out.close()
        err.close()
        self.procs[name] = proc
        return proc

    def text(self, name, stream="err"):
        try:
            with open(os.path.join(self.folder, f"{name}.{stream}")) as f:
                return f.read()
        except OSError:
            return ""

    def signal(self, name, sig):
        proc = self.procs[name]
        if proc.poll() is None:
            os.kill(proc.pid, sig)

    def stop(self, name, timeout=60):
        """SIGTERM, then wait; returns the exit code, or None if it had to be killed."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
            return None

    def kill_all(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass

    def alive(self):
        return [name for name, proc in self.procs.items() if proc.poll() is None]


class Fleet:
    def __init__(self, tierline, folder):
        self.bin = tierline
        self.folder = folder
        self.stores = {site: os.path.join(folder, site) for site in ("hub", "north", "south")}

    def cli(self, site, *args, timeout=120):
        """tierline ARGS --store STORE; returns stdout; Failure on a non-zero exit."""
        return run([self.bin, *args, "--store", self.stores[site]], timeout=timeout).stdout

    def json(self, site, *args):
        return json.loads(self.cli(site, *args, "--json"))

    def digest(self, site):
        return self.cli(site, "digest").strip()

    def digests(self, sites=("hub", "north", "south")):
        return {site: self.digest(site) for site in sites}

    def converge(self, what, sites=("hub", "north", "south"), timeout=300):
        """Waits until the sites' digests are equal; returns the time it took, ms."""
        started = time.monotonic()
        while True:
            d = self.digests(sites)
            if len(set(d.values())) == 1:
                ms = int((time.monotonic() - started) * 1000)
                log(f"  converged: {what} ({', '.join(sites)}) in {ms} ms")
                return ms
            if time.monotonic() - started > timeout:
                raise Failure(f"{what}: {', '.join(sites)} did not converge within {timeout} s:\n" +
                              "\n".join(f"  {s}: {v}" for s, v in d.items()) + "\n" + self.vectors(sites))
            time.sleep(0.2)

    def vectors(self, sites):
        lines = []
        for site in sites:
            try:
                lines.append(f"  vector {site}: {self.cli(site, 'vector').strip()}")
            except Failure as e:
                lines.append(f"  vector {site}: {e}")
        return "\n".join(lines)


def wait_until(what, timeout, condition, interval=0.2):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        value = condition()
        if value:
            return value, int((time.monotonic() - started) * 1000)
        time.sleep(interval)
    raise Failure(f"timed out after {timeout} s waiting until {what}")


def counters_in(text, marker):
    """The last counters JSON on a proxy's stderr line containing `marker`."""
    found = None
    for line in text.splitlines():
        if marker in line:
            m = re.search(r"(\{.*\})", line)
            if m:
                found = json.loads(m.group(1))
    return found


def show_counters(name, c):
    log(f"  {name}: {c['connections']} connections ({c['refused']} refused, {c['upstreamFailures']} upstream failures), "
        f"{c['bytesToUpstream']} B to the hub, {c['bytesToClient']} B back, {c['chunks']} chunks, "
        f"{c['chunksDelayedAsLost']} delayed as lost ({c['retransmissions']} retransmissions), {c['cuts']} cuts, "
        f"{c['partitions']} partitions ({c['partitionResets']} connections reset), peak queue {c['peakQueuedBytes']} B")


ESCALATION_CONFIG = {
    "ladders": [{"name": "demo", "version": 1, "loops": 0, "ackTimeout": "30m", "calendar": "24x7",
                 "levels": [{"delay": "0", "targets": ["role:team_lead"], "assignment": "notify", "actions": ["watch:team-lead"]},
                            {"delay": "2s", "targets": ["tier:2"], "assignment": "transfer_site", "actions": ["raise_priority"]}]}],
    "policies": [{"name": "platinum-demo", "version": 1, "position": 1, "match": {"customerTier": ["platinum"]},
                  "calendar": "24x7", "ladder": "demo",
                  "clocks": {"firstResponse": {"targets": {"high": "3s", "urgent": "3s"}, "warnAt": 50, "onBreach": ["escalate"]},
                             "resolution": {"targets": {"high": "1h", "urgent": "1h"}, "pauseWhen": ["pending_customer"]}}}],
    "matrix": {"version": 1, "grace": "30s", "entries": [{"site": "*", "category": "*", "tier": 2, "target": "tier2@hub"}]},
}


def backlog(fleet, counts, label):
    """Writes COUNT tickets at each site, the sites in parallel (a third get a comment)."""
    errors = []

    def write(site, count):
        try:
            for i in range(count):
                t = fleet.json(site, "ticket", "create", "--subject", f"{site}: {label} {i}", "--message", f"{label} {i} " * 20)
                if i % 3 == 0:
                    fleet.cli(site, "ticket", "comment", t["id"], "--body", f"{site}: looked at {label} {i}")
        except Exception as e:  # reported by the main thread
            errors.append(f"{site}: {e}")
    threads = [threading.Thread(target=write, args=(site, n), daemon=True) for site, n in counts.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    if errors or any(t.is_alive() for t in threads):
        raise Failure(f"writing the {label} tickets failed: {errors or 'a writer is stuck'}")


def scenario(fleet, procs, topo, faultproxy, folder):
    ns = topo.ns
    hub_addr = f"{Topology.ADDR['hub']}:{HUB_PORT}"

    log("== 1. stores and nodes")
    fleet.cli("hub", "init", "--site", "hub", "--role", "coordinator")
    fleet.cli("north", "init", "--site", "north", "--role", "site")
    fleet.cli("south", "init", "--site", "south", "--role", "site")
    # The hub's roster admits both sites; each pins the hub's key (they learn the roster at first sync).
    hub_key = fleet.json("hub", "status")["publicKey"]
    for site in ("north", "south"):
        fleet.cli("hub", "roster", "add", site, "--key", fleet.json(site, "status")["publicKey"], "--role", "site")
        fleet.cli(site, "roster", "pin", hub_key)
    procs.start("node-hub", [fleet.bin, "serve", "--store", fleet.stores["hub"], "--listen", hub_addr,
                             "--log-level", "warning"], ns=ns["hub"])
    if shutil.which("ss"):
        wait_until(f"the hub listens on {hub_addr}", 120, lambda: procs.procs["node-hub"].poll() is not None or
                   f":{HUB_PORT}" in run(["ip", "netns", "exec", ns["hub"], "ss", "-Hltn"], check=False).stdout)
    else:
        time.sleep(1)  # no `ss`: the proxies reset clients until the hub listens, and the nodes retry
    if procs.procs["node-hub"].poll() is not None:
        raise Failure(f"the hub node exited ({procs.procs['node-hub'].returncode}): {procs.text('node-hub')[-1500:]}")
    proxy_addr = {}
    for seed, site in enumerate(("north", "south"), start=1):
        name = f"proxy-{site}"
        procs.start(name, [faultproxy, "--listen", f"{Topology.WAN_SIDE[site]}:0", "--upstream", hub_addr,
                           "--latency-ms", str(LATENCY_MS), "--jitter-ms", str(JITTER_MS), "--loss", str(LOSS),
                           "--retransmit-ms", str(RETRANSMIT_MS), "--cut-every-ms", str(CUT_EVERY_MS),
                           "--seed", str(seed)], ns=ns["wan"])
        line, _ = wait_until(f"{name} prints its address", 120, lambda: procs.procs[name].poll() is not None or
                             re.search(r"listening on (\S+)", procs.text(name, "out")))
        if procs.procs[name].poll() is not None:
            raise Failure(f"{name} exited ({procs.procs[name].returncode}): {procs.text(name)[-1500:]}")
        proxy_addr[site] = line.group(1)
        log(f"  {name} in {ns['wan']}: {proxy_addr[site]} → {hub_addr}, {LATENCY_MS} ms ±{JITTER_MS} one way, "
            f"{LOSS:.0%} loss (RTO {RETRANSMIT_MS} ms), cuts every ~{CUT_EVERY_MS} ms")
    for site in ("north", "south"):
        procs.start(f"node-{site}", [fleet.bin, "serve", "--store", fleet.stores[site], "--peer", proxy_addr[site],
                                     "--log-level", "warning"], ns=ns[site])
    # North and south cannot reach the hub except through their proxy.
    direct = run(["ip", "netns", "exec", ns["north"], "ip", "route", "get", Topology.ADDR["hub"]], check=False)
    if direct.returncode == 0:
        raise Failure(f"north has a route to the hub that bypasses the proxy: {direct.stdout.strip()}")
    log(f"  nodes: hub listens on {hub_addr} in {ns['hub']}; north ({ns['north']}) and south ({ns['south']}) "
        "dial their proxy; north has no route to the hub")

    log("== 2. tickets at three sites converge")
    n1 = fleet.json("north", "ticket", "create", "--subject", "north: printer jams", "--priority", "high", "--tag", "printer",
                    "--message", "jams on every page")
    fleet.cli("north", "ticket", "create", "--subject", "north: badge reader offline")
    fleet.cli("north", "ticket", "comment", n1["id"], "--body", "north: ordered a fuser")
    s1 = fleet.json("south", "ticket", "create", "--subject", "south: wifi drops", "--tag", "network")
    fleet.cli("south", "ticket", "create", "--subject", "south: projector dim", "--priority", "low")
    fleet.cli("hub", "ticket", "create", "--subject", "hub: mail quota", "--assignee", "anna")
    fleet.converge("first tickets", timeout=300)
    fleet.cli("hub", "ticket", "tag", s1["id"], "--add", "triaged")
    fleet.cli("south", "ticket", "comment", n1["id"], "--body", "south: same printer model here")
    fleet.converge("edits on each other's tickets", timeout=300)
    started = time.monotonic()
    backlog(fleet, {"north": BACKLOG, "south": BACKLOG, "hub": BACKLOG}, "backlog")
    log(f"  {BACKLOG} tickets (a third with a comment) written at each site at once in "
        f"{int((time.monotonic() - started) * 1000)} ms while the nodes push them")
    fleet.converge("the backlog", timeout=600)

    log("== 3. partition south's proxy (SIGUSR1); both sides keep writing")
    procs.signal("proxy-south", signal.SIGUSR1)
    wait_until("proxy-south logs the partition", 60, lambda: "SIGUSR1: partitioned" in procs.text("proxy-south"))
    partitioned_at = time.monotonic()
    fleet.cli("north", "ticket", "update", n1["id"], "--assignee", "anna")
    fleet.cli("south", "ticket", "update", n1["id"], "--assignee", "bela")
    fleet.cli("north", "ticket", "comment", n1["id"], "--body", "north: fuser replaced")
    fleet.cli("south", "ticket", "comment", n1["id"], "--internal", "--body", "south: checked the tray")
    fleet.cli("north", "ticket", "tag", n1["id"], "--add", "hardware")
    fleet.cli("south", "ticket", "tag", n1["id"], "--add", "toner", "--remove", "printer")
    fleet.cli("south", "ticket", "update", s1["id"], "--status", "open", "--priority", "high")
    n_new = fleet.json("north", "ticket", "create", "--subject", "north: written during the partition")
    s_new = fleet.json("south", "ticket", "create", "--subject", "south: written during the partition")
    backlog(fleet, {"north": BACKLOG // 2, "south": BACKLOG // 2}, "partition")
    fleet.cli("hub", "ticket", "comment", s1["id"], "--body", "hub: escalating to the network team")
    log(f"  north assigns {n1['displayNumber']} to anna, south to bela; comments, tags and {BACKLOG // 2 + 1} new tickets on each side")
    fleet.converge("north and hub during the partition", sites=("hub", "north"), timeout=300)
    d = fleet.digests()
    if d["south"] == d["hub"]:
        raise Failure("south equals the hub during the partition: the partition did not hold")
    if run([fleet.bin, "ticket", "show", n_new["id"], "--store", fleet.stores["south"]], check=False).returncode == 0:
        raise Failure("south holds north's ticket written during the partition")
    if run([fleet.bin, "ticket", "show", s_new["id"], "--store", fleet.stores["hub"]], check=False).returncode == 0:
        raise Failure("the hub holds south's ticket written during the partition")
    log("  south differs from north and hub, lacks north's new ticket; the hub lacks south's")
    # Let south's node retry against the partition for a while (its reconnects are reset).
    while time.monotonic() - partitioned_at < 6:
        time.sleep(0.2)

    log("== 4. heal (SIGUSR2); everything converges, the conflict is kept")
    procs.signal("proxy-south", signal.SIGUSR2)
    wait_until("proxy-south logs the heal", 60, lambda: "SIGUSR2: healed" in procs.text("proxy-south"))
    during = counters_in(procs.text("proxy-south"), "SIGUSR2: healed")
    if during:
        log(f"  proxy-south during the partition: {during['partitionResets']} open connections reset, "
            f"{during['refused']} reconnects refused")
    heal_ms = fleet.converge("after the heal", timeout=600)
    shows = {site: fleet.json(site, "ticket", "show", n1["id"]) for site in ("hub", "north", "south")}
    for site, t in shows.items():
        conflicts = [e for e in t.get("events", []) if e.get("kind") == "conflict" and e.get("field") == "assignee"]
        if t["conflictCount"] < 1 or not conflicts:
            raise Failure(f"{site}: {n1['displayNumber']} keeps no assignee conflict: conflictCount {t['conflictCount']}, "
                          f"events {[e.get('kind') for e in t.get('events', [])]}")
        if t["assignee"] not in ("anna", "bela"):
            raise Failure(f"{site}: assignee {t['assignee']!r}, want anna or bela")
        bodies = [e.get("body") for e in t.get("events", [])]
        for want in ("north: fuser replaced", "south: checked the tray"):
            if want not in bodies:
                raise Failure(f"{site}: {n1['displayNumber']} lacks the comment {want!r}")
        if sorted(t["tags"]) != ["hardware", "toner"]:
            raise Failure(f"{site}: tags {t['tags']}, want ['hardware', 'toner']")
    if len({(t["assignee"], t["conflictCount"]) for t in shows.values()}) != 1:
        raise Failure(f"the stores disagree on {n1['displayNumber']}: "
                      f"{ {s: (t['assignee'], t['conflictCount']) for s, t in shows.items()} }")
    conflict = [e for e in shows["hub"]["events"] if e.get("kind") == "conflict"][0]
    log(f"  {n1['displayNumber']} on all three: assignee {shows['hub']['assignee']}, {shows['hub']['conflictCount']} conflict "
        f"kept (\"{conflict.get('body')}\"), tags {shows['hub']['tags']}; heal to convergence {heal_ms} ms")

    log("== 5. escalation across sites: north's ladder hands a platinum ticket to tier2@hub")
    config_file = os.path.join(folder, "escalation.json")
    with open(config_file, "w") as f:
        json.dump(ESCALATION_CONFIG, f, indent=2)
    published = fleet.json("hub", "config", "publish", config_file)
    names = ", ".join(f"{p['kind']} {p['name']} v{p['version']}" for p in published)
    log(f"  hub publishes {names}")
    hub_config = fleet.cli("hub", "config", "show", "--json")
    _, ms = wait_until("north and south hold the configuration", 300, lambda: all(
        fleet.cli(site, "config", "show", "--json") == hub_config for site in ("north", "south")))
    log(f"  the configuration reached north and south in {ms} ms")
    ticket = fleet.json("north", "ticket", "create", "--subject", "north: payroll export fails", "--priority", "urgent",
                        "--customer", "initech", "--channel", "phone", "--customer-tier", "platinum", "--category", "payroll",
                        "--message", "payroll run is due today")
    created = time.monotonic()
    policy = fleet.json("north", "ticket", "show", ticket["id"]).get("sla", {}).get("policy")
    if policy != "platinum-demo@v1":
        raise Failure(f"north pinned policy {policy!r} to {ticket['displayNumber']}, want platinum-demo@v1")
    log(f"  north opens {ticket['displayNumber']} (platinum, urgent): policy {policy}, first response due in 3 s; nobody answers")

    def incoming():
        return [h for h in fleet.json("hub", "handoff", "list") if h.get("id") == ticket["id"] and h.get("incoming")]
    handoffs, _ = wait_until(f"the hub lists an incoming handoff of {ticket['displayNumber']}", 300, incoming, interval=0.5)
    log(f"  {int((time.monotonic() - created) * 1000)} ms after creation the hub sees the handoff: "
        f"from {handoffs[0].get('fromSite')} to {handoffs[0].get('toGroup')}@{handoffs[0].get('toSite')}")
    history = [e.get("type") for e in fleet.json("north", "ticket", "show", ticket["id"])["sla"]["history"]]
    for want in ("escalation_started",):
        if want not in history:
            raise Failure(f"north's history of {ticket['displayNumber']} lacks {want}: {history}")
    fleet.cli("hub", "handoff", "accept", ticket["id"], "--actor", "tier2-lead")
    accept_ms = fleet.converge("after the hub accepted", timeout=300)
    owners = {}
    for site in ("hub", "north", "south"):
        t = fleet.json(site, "ticket", "show", ticket["id"])
        owners[site] = (t["owningSite"], t["owningEpoch"], t.get("group"), t["priority"])
        if t["owningSite"] != "hub":
            raise Failure(f"{site}: {ticket['displayNumber']} is owned by {t['owningSite']}, want hub")
    if len(set(owners.values())) != 1:
        raise Failure(f"the stores disagree on {ticket['displayNumber']}: {owners}")
    final = fleet.digests()
    log(f"  {ticket['displayNumber']} owned by hub (epoch {owners['hub'][1]}, group {owners['hub'][2]}, priority "
        f"{owners['hub'][3]}) on all three; digests equal ({final['hub'][:16]}…) {accept_ms} ms after the accept")
    log(f"  its escalation history at north: {', '.join(history)}")


def main():
    global LATENCY_MS, JITTER_MS, LOSS, RETRANSMIT_MS, CUT_EVERY_MS, BACKLOG
    parser = argparse.ArgumentParser(description="Multi-host tierline test in network namespaces behind fault proxies.")
    parser.add_argument("tierline")
    parser.add_argument("faultproxy", metavar="tierline-faultproxy")
    parser.add_argument("--latency-ms", type=int, default=LATENCY_MS)
    parser.add_argument("--jitter-ms", type=int, default=JITTER_MS)
    parser.add_argument("--loss", type=float, default=LOSS)
    parser.add_argument("--retransmit-ms", type=int, default=RETRANSMIT_MS)
    parser.add_argument("--cut-every-ms", type=int, default=CUT_EVERY_MS)
    parser.add_argument("--backlog", type=int, default=BACKLOG, help="tickets written at each site at once")
    parser.add_argument("--keep", action="store_true", help="keep the stores and logs")
    args = parser.parse_args()
    LATENCY_MS, JITTER_MS, LOSS, RETRANSMIT_MS = args.latency_ms, args.jitter_ms, args.loss, args.retransmit_ms
    CUT_EVERY_MS, BACKLOG = args.cut_every_ms, args.backlog
    tierline, faultproxy = os.path.abspath(args.tierline), os.path.abspath(args.faultproxy)
    for path in (tierline, faultproxy):
        if not os.access(path, os.X_OK):
            print(f"FAIL: no executable at {path} (build with `swift build`)", file=sys.stderr)
            return 1
    if os.geteuid() != 0:
        print("SKIP: multi-host test needs root (network namespaces)")
        return 0
    if shutil.which("ip") is None:
        print("SKIP: multi-host test needs `ip` (iproute2)")
        return 0
    probe = run(["ip", "netns", "list"], check=False)
    if probe.returncode != 0:
        print(f"SKIP: `ip netns list` failed: {probe.stderr.strip()}")
        return 0

    def on_alarm(signum, frame):
        raise TestTimeout(f"the whole test took over {TOTAL_TIMEOUT_S} s")

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(TOTAL_TIMEOUT_S)

    folder = tempfile.mkdtemp(prefix="tierline-multihost.")
    # Private copies: a `swift build` relinking the binaries meanwhile cannot disturb the run.
    shutil.copy(tierline, os.path.join(folder, "tierline"))
    shutil.copy(faultproxy, os.path.join(folder, "tierline-faultproxy"))
    tierline, faultproxy = os.path.join(folder, "tierline"), os.path.join(folder, "tierline-faultproxy")
    topo = Topology()
    procs = Processes(folder)
    fleet = Fleet(tierline, folder)
    status = 0
    try:
        remove_stale_namespaces()
        topo.create()
        log(f"topology: namespaces {', '.join(topo.ns.values())}; veths hub/north/south ↔ wan on 10.77.1-3.0/24")
        scenario(fleet, procs, topo, faultproxy, folder)

        log("== 6. stop: SIGTERM to nodes and proxies")
        for name in ("node-north", "node-south", "node-hub"):
            t = time.monotonic()
            rc = procs.stop(name, timeout=60)
            if rc != 0:
                raise Failure(f"{name} did not exit 0 within 60 s of SIGTERM (exit {rc}): {procs.text(name)[-1500:]}")
            log(f"  {name} exited 0 in {int((time.monotonic() - t) * 1000)} ms")
        totals = {}
        for name in ("proxy-north", "proxy-south"):
            rc = procs.stop(name, timeout=60)
            c = counters_in(procs.text(name), "counters ")
            if rc != 0 or c is None:
                raise Failure(f"{name} did not stop cleanly (exit {rc}) or printed no counters: {procs.text(name)[-1500:]}")
            show_counters(name, c)
            for k, v in c.items():
                totals[k] = totals.get(k, 0) + v
        if totals["chunksDelayedAsLost"] == 0 or totals["cuts"] == 0 or totals["bytesToUpstream"] == 0:
            raise Failure(f"the proxies injected too little to mean anything: {totals}")
        for name in ("node-hub", "node-north", "node-south"):
            if re.search(r"Fatal error|Stack dump|Segmentation", procs.text(name)):
                raise Failure(f"{name} crashed: {procs.text(name)[-1500:]}")
        log(f"PASS: converged under {LOSS:.0%} loss, {2 * LATENCY_MS} ms round trip and "
            f"{totals['cuts']} random cuts; the partition healed with the conflict kept; the escalation handed off to hub")
    except Skip as e:
        print(f"{e}\nSKIP: multi-host test (network namespaces unavailable)")
        status = 0
    except (Failure, TestTimeout) as e:
        print(f"FAIL: {e}", flush=True)
        for name in procs.procs:
            tail = procs.text(name).strip().splitlines()[-8:]
            if tail:
                print(f"--- {name} (stderr, last lines)\n" + "\n".join(f"    {l}" for l in tail))
        status = 1
    except KeyboardInterrupt as e:
        print(f"FAIL: interrupted ({e})")
        status = 1
    finally:
        signal.alarm(0)
        procs.kill_all()
        topo.delete()
        left = procs.alive()
        if left:
            print(f"warning: processes still alive after cleanup: {left}", file=sys.stderr)
            status = status or 1
        if status == 0 and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            for path in (tierline, faultproxy):
                if os.path.exists(path):
                    os.remove(path)
            print(f"(logs and stores kept in {folder})")
    log(f"done in {time.monotonic() - T0:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
