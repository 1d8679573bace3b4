#!/usr/bin/env bash
# End-to-end check of the escalation CLI: configuration, SLA clocks, ladders, transfers and cross-site
# handoffs, with stores that exchange blocks through export files (no ports).
#
#   Tests/CLI/escalation.sh [PATH/TO/tierline]      (default: .build/debug/tierline)
#
# `central` (role coordinator) publishes Deploy/escalation.json after a series of invalid files that
# must publish nothing; `north` (role site) may not publish. Tickets pin their SLA policy at creation;
# `escalation tick --at` a few hours later writes breach and ladder records exactly once; replies,
# internal notes, pending statuses, transfers and acks act on the clocks and the history. Then north
# gets the configuration by import, escalates tickets to tier2@central, central accepts one and
# rejects the other, and both stores end equal. Prints one PASS/FAIL line per check; exits 1 if any
# check fails. Needs bash and python3 (for JSON); no jq.
set -euo pipefail

source "$(dirname "$0")/lib.sh" "$@"

workspace escalation
CENTRAL=$W/central
NORTH=$W/north
EXAMPLE=$CLI_DIR/../../Deploy/escalation.json
CFG=$W/cfg
mkdir -p "$CFG"

# JSON helpers for the python3 snippets: `py ARGS... <<'PY' ... PY`.
cat >"$W/h.py" <<'PY'
import datetime, json, math, sys
from clijson import load, fail, ensure, where

def sla(t, where_="ticket"):
    s = t.get("sla")
    ensure(isinstance(s, dict), f"{where_}: no sla object in {sorted(t)}")
    for k in ["policy", "clocks", "cycles", "escalationCycle", "escalationLevel", "pendingHandoffs", "history"]:
        ensure(k in s, f"{where_}: sla lacks {k}: {sorted(s)}")
    return s

def clock(t, name, where_="ticket"):
    """The ticket's clock NAME of the newest cycle."""
    cs = [c for c in sla(t, where_)["clocks"] if c.get("clock") == name]
    ensure(cs, f"{where_}: no {name} clock in {[c.get('clock') for c in sla(t, where_)['clocks']]}")
    return max(cs, key=lambda c: c.get("cycle", 0))

def history(t, where_="ticket"):
    return [h.get("type") for h in sla(t, where_)["history"]]

def parse(iso):
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))

def at(iso, plus_seconds=0):
    """ISO 8601 (whole seconds, Z) of `iso` + plus_seconds, rounded up to the next whole second:
    --at takes no fractions."""
    t = parse(iso) + datetime.timedelta(seconds=plus_seconds)
    t = datetime.datetime.fromtimestamp(math.ceil(t.timestamp()), datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
PY

field() { PYTHONPATH=$W:$CLI_DIR python3 -c 'import sys,h; print(h.load(sys.argv[1])[sys.argv[2]])' "$W/$1" "$2"; }
at_of() { PYTHONPATH=$W:$CLI_DIR python3 -c 'import sys,h; print(h.at(h.load(sys.argv[1])["createdAt"], int(sys.argv[2])))' "$W/$1" "$2"; }
digest_of() { run "$1" digest; if ((RC != 0)); then echo "digest-failed-$RC"; else cat "$W/out"; fi; }
vector_of() { run "$1" vector; if ((RC != 0)); then echo "vector-failed-$RC"; else cat "$W/out"; fi; }
config_of() { run "$1" config show --json; if ((RC != 0)); then echo "config-show-failed-$RC"; else tr -d ' \n' <"$W/out"; fi; }
same() { # same WHAT A B
    if [[ $2 == "$3" ]]; then return 0; fi
    printf '%s differ:\n  %s\n  %s\n' "$1" "$2" "$3"
    return 1
}
# state STORE: digest, vector and published configuration, to prove a refused command changed nothing.
state() { printf '%s\n%s\n%s\n' "$(digest_of "$1")" "$(vector_of "$1" | tr -d ' \n')" "$(config_of "$1")"; }

# refused NAME STORE EXPECT_RC STDERR_REGEX ARGS...: the command must exit EXPECT_RC, say why on
# stderr (matching STDERR_REGEX, case-insensitive) and leave the store as it was.
refused() {
    local name=$1 store=$2 want=$3 regex=$4 before after problems="" err detail
    shift 4
    before=$(state "$store")
    run "$store" "$@"
    local rc=$RC
    err=$(cat "$W/err")
    detail=$(last_output)
    if ((rc != want)); then problems+="exit $rc (want $want); "; fi
    if [[ -z ${err//[[:space:]]/} ]]; then
        problems+="nothing on stderr; "
    elif ! grep -Eqi -- "$regex" <<<"$err"; then
        problems+="stderr does not match /$regex/; "
    fi
    if grep -Eq 'Fatal error|Stack dump|Segmentation|Illegal instruction' <<<"$err"; then
        problems+="stderr shows a crash; "
    fi
    after=$(state "$store")
    if [[ $before != "$after" ]]; then problems+="store changed: [$before] -> [$after]; "; fi
    if [[ -z $problems ]]; then pass "$name"; else fail "$name" "$problems"$'\n'"$detail"; fi
}

# bad_config NAME FILE KEYPATH MESSAGE_REGEX: publishing FILE at central exits 1, says nothing was
# published, has a line "FILE: KEYPATH: message" (message matching MESSAGE_REGEX), and `config show
# --json` is still [] afterwards.
bad_config() {
    local name=$1 file=$2 key=$3 regex=$4 problems=""
    run "$CENTRAL" config publish "$file"
    local detail
    detail=$(last_output)
    if ((RC != 1)); then problems+="exit $RC (want 1); "; fi
    if ! grep -q '^error: nothing was published' "$W/err"; then problems+="no 'error: nothing was published' line; "; fi
    if [[ -n $key ]]; then
        if ! grep -E -- "$regex" "$W/err" | grep -qF -- "$file: $key: "; then
            problems+="no line '$file: $key: ' matching /$regex/; "
        fi
    elif ! grep -E -- "$regex" "$W/err" | grep -qF -- "$file: "; then
        problems+="no line naming '$file: ' and matching /$regex/; "
    fi
    local shown
    shown=$(config_of "$CENTRAL")
    if [[ $shown != "[]" ]]; then problems+="config show --json is '$shown' afterwards, want []; "; fi
    if [[ -z $problems ]]; then pass "$name"; else fail "$name" "$problems"$'\n'"$detail"; fi
}

echo "== 1. stores, and invalid configuration files publish nothing"
must "init central (role coordinator)" "$CENTRAL" init --site central --role coordinator
must "init north (role site)" "$NORTH" init --site north --role site
admit "$CENTRAL" "$NORTH"
must "config show --json on a fresh store" "$CENTRAL" config show --json
check "a fresh store has no configuration: []" test "$(tr -d ' \n' <"$W/out")" = "[]"
py "$EXAMPLE" "$CFG" <<'PY'
import copy, json, sys
base = json.load(open(sys.argv[1]))
out = sys.argv[2]
def write(name, doc):
    with open(f"{out}/{name}", "w") as f:
        json.dump(doc, f, indent=2)
d = copy.deepcopy(base); d["policies"][0]["clokcs"] = d["policies"][0].pop("clocks"); write("typo-required.json", d)
d = copy.deepcopy(base); d["policies"][0]["clocks"]["firstResponse"]["warnat"] = 60; write("typo-optional.json", d)
d = copy.deepcopy(base); d["policies"][0]["clocks"]["firstResponse"]["targets"]["high"] = "2x"; write("bad-duration.json", d)
d = copy.deepcopy(base); d["policies"][1]["ladder"] = "missing-ladder"; write("missing-ladder.json", d)
d = copy.deepcopy(base); d["calendars"][0]["timezone"] = "Europe/Atlantis"; write("bad-zone.json", d)
write("empty.json", {})
# One valid calendar and one invalid one: all or nothing.
write("mixed.json", {"calendars": [base["calendars"][0],
                                   dict(base["calendars"][0], name="apac", timezone="Mars/Olympus")]})
# Same versions as the example, other content: the matrix's grace changes.
d = copy.deepcopy(base); d["matrix"]["grace"] = "5m"; write("changed.json", d)
d["matrix"]["version"] = 2; write("raised.json", d)
PY
printf 'calendars: [ this is not JSON\n' >"$CFG/not-json.json"
bad_config "unknown key (a misspelt required key): names policies[0].clokcs" \
    "$CFG/typo-required.json" 'policies[0].clokcs' 'unknown key'
bad_config "unknown key (a misspelt optional key): names policies[0].clocks.firstResponse.warnat" \
    "$CFG/typo-optional.json" 'policies[0].clocks.firstResponse.warnat' 'unknown key'
bad_config "bad duration \"2x\": names policies[0].clocks.firstResponse.targets.high" \
    "$CFG/bad-duration.json" 'policies[0].clocks.firstResponse.targets.high' '"2x".*duration'
bad_config "reference to a missing ladder: names policies[1].ladder" \
    "$CFG/missing-ladder.json" 'policies[1].ladder' 'missing-ladder'
bad_config "bad time zone: names calendars[0].timezone" \
    "$CFG/bad-zone.json" 'calendars[0].timezone' 'Europe/Atlantis'
bad_config "not JSON at all: names the file" "$CFG/not-json.json" '' 'JSON'
bad_config "an empty object: names the file, says it holds no documents" "$CFG/empty.json" '' 'no documents'
bad_config "one valid and one invalid calendar: publishes nothing, names calendars[1].timezone" \
    "$CFG/mixed.json" 'calendars[1].timezone' 'Mars/Olympus'
refused "a missing file: exit 1, names the file" "$CENTRAL" 1 'no-such\.json' config publish "$CFG/no-such.json"

echo "== 2. only the coordinator publishes"
refused "config publish at a site store: exit 1, says the coordinator publishes" "$NORTH" 1 \
    'published by the coordinator' config publish "$EXAMPLE"

echo "== 3. versions"
must "central publishes Deploy/escalation.json" "$CENTRAL" config publish "$EXAMPLE" --json
save published-1.json
check "publish --json lists the six versions of the example" py "$W/published-1.json" <<'PY'
import sys, h
got = sorted((d["kind"], d["name"], d["version"]) for d in h.load(sys.argv[1]))
want = sorted([("calendar", "emea", 1), ("ladder", "standard", 1), ("policy", "platinum", 1),
               ("policy", "standard", 1), ("matrix", "matrix", 1), ("rule", "platinum-urgent", 1)])
h.ensure(got == want, f"published {got}, want {want}")
PY
must "config show --json after the publish" "$CENTRAL" config show --json
save shown-1.json
check "config show --json lists the same six {kind,name,version}" py "$W/shown-1.json" "$W/published-1.json" <<'PY'
import sys, h
shown, published = h.load(sys.argv[1]), h.load(sys.argv[2])
key = lambda d: (d["kind"], d["name"], d["version"])
h.ensure(sorted(map(key, shown)) == sorted(map(key, published)), f"show {shown}")
PY
run "$CENTRAL" config publish "$EXAMPLE"
if ((RC == 0)) && grep -qi 'nothing new' "$W/out" "$W/err"; then
    pass "publishing the same file again exits 0 and says nothing new"
else
    fail "publishing the same file again exits 0 and says nothing new" "$(last_output)"
fi
refused "a changed document with the same version: exit 1, says raise the version" "$CENTRAL" 1 \
    'changed\.json: matrix\.version: .*raise the version' config publish "$CFG/changed.json"
must "a raised version publishes" "$CENTRAL" config publish "$CFG/raised.json" --json
save published-2.json
check "only matrix v2 was published" py "$W/published-2.json" <<'PY'
import sys, h
got = [(d["kind"], d["name"], d["version"]) for d in h.load(sys.argv[1])]
h.ensure(got == [("matrix", "matrix", 2)], f"published {got}")
PY
must "config show --json after the raise" "$CENTRAL" config show --json
save shown-2.json
check "config show lists matrix at version 2 (the newest), the rest at 1" py "$W/shown-2.json" <<'PY'
import sys, h
got = {(d["kind"], d["name"]): d["version"] for d in h.load(sys.argv[1])}
h.ensure(got.get(("matrix", "matrix")) == 2 and len(got) == 6
         and all(v == 1 for k, v in got.items() if k[0] != "matrix"), f"show {got}")
PY

echo "== 4. tickets pin their policy at creation"
must "create a platinum urgent ticket" "$CENTRAL" ticket create --subject "Platinum: payroll down" \
    --customer-tier platinum --priority urgent --json
save plat-created.json
PLAT=$(field plat-created.json id)
AT0=$(at_of plat-created.json 0)
AT12M=$(at_of plat-created.json 720)
AT4H=$(at_of plat-created.json 14400)
must "create a plain ticket" "$CENTRAL" ticket create --subject "Plain: mouse squeaks" --json
save plain-created.json
PLAIN=$(field plain-created.json id)
run "$CENTRAL" ticket show "$PLAT" --json
save plat-0.json
check "the platinum urgent ticket: policy platinum@v1, rule platinum-urgent started a cycle" py "$W/plat-0.json" <<'PY'
import sys, h
t = h.load(sys.argv[1]); s = h.sla(t)
h.ensure(s["policy"] == "platinum@v1", f"policy {s['policy']!r}")
h.ensure("escalation_started" in h.history(t), f"history {h.history(t)}")
started = h.where(s["history"], type="escalation_started")
h.ensure(any("platinum-urgent" in e.get("text", "") for e in started), f"started: {started}")
h.ensure(len(s["cycles"]) == 1 and s["cycles"][0].get("cycle") == 1, f"cycles {s['cycles']}")
for c in ("firstResponse", "resolution", "timeToOwn"):
    h.ensure(h.clock(t, c)["state"] == "running", f"{c}: {h.clock(t, c)}")
h.ensure(h.clock(t, "firstResponse")["targetMillis"] == 15 * 60000, f"firstResponse {h.clock(t, 'firstResponse')}")
PY
run "$CENTRAL" ticket show "$PLAIN" --json
save plain-0.json
check "the plain ticket: policy standard@v1, no cycle started" py "$W/plain-0.json" <<'PY'
import sys, h
t = h.load(sys.argv[1]); s = h.sla(t)
h.ensure(s["policy"] == "standard@v1", f"policy {s['policy']!r}")
h.ensure("escalation_started" not in h.history(t) and not s["cycles"], f"history {h.history(t)}, cycles {s['cycles']}")
PY

echo "== 5. replies stop firstResponse, internal notes do not"
must "create a platinum high ticket (for a reply)" "$CENTRAL" ticket create --subject "Platinum: slow reports" \
    --customer-tier platinum --priority high --json
REPLY=$(field out id)
must "create a platinum high ticket (for a note)" "$CENTRAL" ticket create --subject "Platinum: export fails" \
    --customer-tier platinum --priority high --json
NOTE=$(field out id)
must "a public agent reply" "$CENTRAL" ticket comment "$REPLY" --body hi
must "an internal note" "$CENTRAL" ticket comment "$NOTE" --internal --body "checking the logs"
run "$CENTRAL" ticket show "$REPLY" --json
save reply.json
run "$CENTRAL" ticket show "$NOTE" --json
save note.json
check "after the reply firstResponse is met" py "$W/reply.json" <<'PY'
import sys, h
c = h.clock(h.load(sys.argv[1]), "firstResponse"); h.ensure(c["state"] == "met", f"firstResponse {c}")
PY
check "after the internal note firstResponse is still running" py "$W/note.json" <<'PY'
import sys, h
c = h.clock(h.load(sys.argv[1]), "firstResponse"); h.ensure(c["state"] == "running", f"firstResponse {c}")
PY

echo "== 6. pending customer pauses resolution"
must "set the note ticket pending_customer" "$CENTRAL" ticket update "$NOTE" --status pending_customer
must "sla --json" "$CENTRAL" sla --json
save sla-pending.json
check "sla lists the ticket's resolution clock as paused" py "$W/sla-pending.json" "$NOTE" <<'PY'
import sys, h
rows = [r for r in h.load(sys.argv[1]) if r.get("id") == sys.argv[2]]
res = [r["clock"] for r in rows if r["clock"].get("clock") == "resolution"]
h.ensure(len(res) == 1 and res[0]["state"] == "paused", f"resolution rows {res}; all rows {[r['clock'] for r in rows]}")
PY
run "$CENTRAL" ticket show "$NOTE" --json
save note-pending.json
check "ticket show agrees: resolution paused" py "$W/note-pending.json" <<'PY'
import sys, h
c = h.clock(h.load(sys.argv[1]), "resolution"); h.ensure(c["state"] == "paused", f"resolution {c}")
PY

echo "== 7. transfer"
must "transfer the plain ticket to billing" "$CENTRAL" transfer "$PLAIN" --group billing --reason "wrong queue" --json
save transferred.json
run "$CENTRAL" ticket show "$PLAIN" --json
save plain-transferred.json
check "the group is billing and the history has a transferred entry with the reason" \
    py "$W/transferred.json" "$W/plain-transferred.json" <<'PY'
import sys, h
h.ensure(h.load(sys.argv[1]).get("group") == "billing", f"transfer --json group {h.load(sys.argv[1]).get('group')!r}")
t = h.load(sys.argv[2])
h.ensure(t["group"] == "billing", f"group {t['group']!r}")
tr = h.where(h.sla(t)["history"], type="transferred")
h.ensure(len(tr) == 1 and "billing" in tr[0]["text"] and "wrong queue" in tr[0]["text"], f"transferred entries {tr}")
PY

echo "== 8. ack"
must "create a second platinum urgent ticket" "$CENTRAL" ticket create --subject "Platinum: login loop" \
    --customer-tier platinum --priority urgent --json
ACKED=$(field out id)
run "$CENTRAL" ticket show "$ACKED" --json
save acked-0.json
must "ack its running ladder" "$CENTRAL" ack "$ACKED"
run "$CENTRAL" ticket show "$ACKED" --json
save acked-1.json
check "ack: history has acknowledged and the ladder's next level moves later" \
    py "$W/acked-0.json" "$W/acked-1.json" <<'PY'
import sys, h
before, after = h.load(sys.argv[1]), h.load(sys.argv[2])
h.ensure("acknowledged" in h.history(after), f"history {h.history(after)}")
b, a = h.sla(before)["cycles"][-1], h.sla(after)["cycles"][-1]
h.ensure(b.get("nextAt") and a.get("nextAt") and h.parse(a["nextAt"]) > h.parse(b["nextAt"]), f"nextAt {b.get('nextAt')} -> {a.get('nextAt')}")
PY
refused "ack of a ticket without a running ladder: exit 1" "$CENTRAL" 1 'no running' ack "$PLAIN"

echo "== 9. escalation tick, hours later"
refused "escalation tick --at in the future without --allow-future: exit 2" "$CENTRAL" 2 'allow-future' escalation tick --at "$AT4H"
must "escalation tick --at +4h" "$CENTRAL" escalation tick --allow-future --at "$AT4H" --json
save tick-1.json
check "the tick wrote firstResponse and timeToOwn breaches and level_fired records for the platinum ticket" \
    py "$W/tick-1.json" "$PLAT" <<'PY'
import sys, h
entries = [e for e in h.load(sys.argv[1]) if e.get("id") == sys.argv[2]]
h.ensure(len(entries) == 1, f"tick entries for the ticket: {entries}")
recs = entries[0]["records"]
types = [r["type"] for r in recs]
breaches = " | ".join(r["text"] for r in h.where(recs, type="sla_breach"))
h.ensure("firstResponse" in breaches and "timeToOwn" in breaches, f"breaches: {breaches!r}")
h.ensure(types.count("level_fired") >= 2, f"records {types}")
PY
VEC_TICKED=$(vector_of "$CENTRAL" | tr -d ' \n')
must "the same tick again" "$CENTRAL" escalation tick --allow-future --at "$AT4H" --json
save tick-2.json
check "the second identical tick writes nothing: []" py "$W/tick-2.json" <<'PY'
import sys, h
r = h.load(sys.argv[1]); h.ensure(r == [], f"second tick wrote {r}")
PY
run "$CENTRAL" escalation tick --allow-future --at "$AT4H"
check "a third (table) tick says nothing due and exits 0" grep -qi 'nothing due' "$W/out"
check "the repeated ticks left the vector unchanged" same vectors "$VEC_TICKED" "$(vector_of "$CENTRAL" | tr -d ' \n')"
run "$CENTRAL" ticket show "$PLAT" --json --at "$AT4H"
save plat-4h.json
check "ticket show --at +4h: escalationLevel >= 1, firstResponse and timeToOwn breached, history has the records" \
    py "$W/plat-4h.json" <<'PY'
import sys, h
t = h.load(sys.argv[1]); s = h.sla(t)
h.ensure(isinstance(s["escalationLevel"], int) and s["escalationLevel"] >= 1, f"sla.escalationLevel {s['escalationLevel']!r}")
h.ensure(isinstance(t.get("escalationLevel"), int) and t["escalationLevel"] >= 1, f"escalationLevel {t.get('escalationLevel')!r}")
for c in ("firstResponse", "timeToOwn"):
    h.ensure(h.clock(t, c)["state"] == "breached", f"{c}: {h.clock(t, c)}")
h.ensure(h.clock(t, "resolution")["state"] == "running", f"resolution (8h) {h.clock(t, 'resolution')}")
for want in ("sla_breach", "level_fired"):
    h.ensure(want in h.history(t), f"history lacks {want}: {h.history(t)}")
PY
run "$CENTRAL" sla --breached --json --at "$AT4H"
save sla-breached.json
check "sla --breached --at +4h lists the ticket's two breached clocks, and only breached clocks" \
    py "$W/sla-breached.json" "$PLAT" <<'PY'
import sys, h
rows = h.load(sys.argv[1])
h.ensure(all(r["clock"]["state"] == "breached" for r in rows), f"states {[r['clock']['state'] for r in rows]}")
mine = sorted(r["clock"]["clock"] for r in rows if r.get("id") == sys.argv[2])
h.ensure(mine == ["firstResponse", "timeToOwn"], f"the ticket's breached clocks: {mine}")
PY
run "$CENTRAL" sla --at-risk --json --at "$AT0"
save sla-risk-0.json
check "sla --at-risk --at creation lists nothing breached and not the platinum ticket" \
    py "$W/sla-risk-0.json" "$PLAT" <<'PY'
import sys, h
rows = h.load(sys.argv[1])
h.ensure(isinstance(rows, list), f"not a list: {rows!r}")
h.ensure(not [r for r in rows if r["clock"]["state"] == "breached"], f"breached rows {rows}")
h.ensure(not [r for r in rows if r.get("id") == sys.argv[2]], f"platinum rows {rows}")
PY
run "$CENTRAL" sla --breached --json --at "$AT0"
save sla-breached-0.json
check "sla --breached --at creation does not list the platinum ticket" py "$W/sla-breached-0.json" "$PLAT" <<'PY'
import sys, h
rows = [r for r in h.load(sys.argv[1]) if r.get("id") == sys.argv[2]]
h.ensure(not rows, f"rows {rows}")
PY
run "$CENTRAL" sla --at-risk --json --at "$AT12M"
save sla-risk-12m.json
check "sla --at-risk --at +12m lists the platinum firstResponse (15m, warns at 75%) as at risk, running" \
    py "$W/sla-risk-12m.json" "$PLAT" <<'PY'
import sys, h
rows = [r for r in h.load(sys.argv[1]) if r.get("id") == sys.argv[2]]
h.ensure([r for r in rows if r["clock"]["clock"] == "firstResponse" and r["clock"]["atRisk"] is True
          and r["clock"]["state"] == "running"], f"platinum rows {rows}")
PY

echo "== 10. cross-site handoff through export files"
must "central exports everything" "$CENTRAL" export --out "$W/central-1.tlx"
must "north imports central's export" "$NORTH" import "$W/central-1.tlx" --json
run "$CENTRAL" config show --json
save central-config.json
run "$NORTH" config show --json
save north-config.json
check "north shows the six documents central published (matrix at v2)" \
    py "$W/central-config.json" "$W/north-config.json" <<'PY'
import sys, h
c, n = h.load(sys.argv[1]), h.load(sys.argv[2])
h.ensure(len(c) == 6 and {"kind": "matrix", "name": "matrix", "version": 2} in c, f"central {c}")
h.ensure(n == c, f"north {n}\ncentral {c}")
PY
must "north creates ticket X" "$NORTH" ticket create --subject "North: VPN drops" --priority high --json
save x-created.json
X=$(field x-created.json id)
must "north creates ticket Y" "$NORTH" ticket create --subject "North: printer offline" --json
Y=$(field out id)
must "north creates ticket Z" "$NORTH" ticket create --subject "North: badge reader" --json
Z=$(field out id)
run "$NORTH" ticket show "$X" --json
save x-0.json
check "north's ticket pins the replicated policy standard@v1" py "$W/x-0.json" <<'PY'
import sys, h
s = h.sla(h.load(sys.argv[1])); h.ensure(s["policy"] == "standard@v1", f"policy {s['policy']!r}")
PY
must "escalate X to tier2@central" "$NORTH" escalate "$X" --to tier2@central --summary "VPN drops every minute" \
    --verified-facts "since 9:00, all users" --steps-tried "rebooted the router" --requested-action "check the concentrator"
must "escalate Y to tier2@central" "$NORTH" escalate "$Y" --to tier2@central --summary "printer offline" \
    --verified-facts "one floor" --steps-tried "power cycle" --requested-action "replace it"
must "escalate Z to tier2@north (the owning site)" "$NORTH" escalate "$Z" --to tier2@north --summary "reader dead" \
    --verified-facts "since Monday" --steps-tried "new badge" --requested-action "replace the reader"
run "$NORTH" ticket show "$X" --json
save x-1.json
check "X at north: a pending handoff to central, still owned by north" py "$W/x-1.json" <<'PY'
import sys, h
t = h.load(sys.argv[1]); s = h.sla(t)
h.ensure(t["owningSite"] == "north" and t["owningEpoch"] == 0, f"owner {t['owningSite']} epoch {t['owningEpoch']}")
h.ensure(len(s["pendingHandoffs"]) == 1, f"pendingHandoffs {s['pendingHandoffs']}")
esc = h.where(s["history"], type="escalated")
h.ensure(esc and "VPN drops every minute" in esc[0]["text"] and "check the concentrator" in esc[0]["text"],
         f"escalated entries {esc}")
PY
run "$NORTH" ticket show "$Z" --json
save z-1.json
check "Z (escalated within north): group tier2, no pending handoff, owner north" py "$W/z-1.json" <<'PY'
import sys, h
t = h.load(sys.argv[1]); s = h.sla(t)
h.ensure(t["group"] == "tier2" and t["owningSite"] == "north" and not s["pendingHandoffs"],
         f"group {t['group']!r} owner {t['owningSite']} pending {s['pendingHandoffs']}")
PY
must "north handoff list --json" "$NORTH" handoff list --json
save north-handoffs-1.json
check "north lists X and Y as outgoing" py "$W/north-handoffs-1.json" "$X" "$Y" <<'PY'
import sys, h
l = h.load(sys.argv[1])
h.ensure(sorted(e["id"] for e in l) == sorted(sys.argv[2:4]) and all(e["incoming"] is False for e in l), f"list {l}")
PY
must "central vector" "$CENTRAL" vector
save central-vector-1.json
must "north exports what central lacks" "$NORTH" export --out "$W/north-1.tlx" --since-vector "$W/central-vector-1.json"
must "central imports north's export" "$CENTRAL" import "$W/north-1.tlx" --json
must "central handoff list --json" "$CENTRAL" handoff list --json
save central-handoffs-1.json
check "central lists X and Y as incoming to tier2@central from north" py "$W/central-handoffs-1.json" "$X" "$Y" <<'PY'
import sys, h
l = h.load(sys.argv[1])
h.ensure(sorted(e["id"] for e in l) == sorted(sys.argv[2:4]), f"ids {[e.get('id') for e in l]}")
for e in l:
    h.ensure(e["incoming"] is True and e["fromSite"] == "north" and e["toSite"] == "central"
             and e["toGroup"] == "tier2", f"entry {e}")
PY
refused "handoff accept at north (the sender): exit 1, not for this site" "$NORTH" 1 'not this site' handoff accept "$X"
must "central accepts X" "$CENTRAL" handoff accept "$X" --json
save x-accepted.json
must "central rejects Y" "$CENTRAL" handoff reject "$Y" --reason "printers stay local"
must "central handoff list --json after answering" "$CENTRAL" handoff list --json
check "central has no pending handoff left" test "$(tr -d ' \n' <"$W/out")" = "[]"
must "north vector" "$NORTH" vector
save north-vector-1.json
must "central exports what north lacks" "$CENTRAL" export --out "$W/central-2.tlx" --since-vector "$W/north-vector-1.json"
must "north imports central's answers" "$NORTH" import "$W/central-2.tlx" --json
for who in north central; do
    store=$NORTH
    [[ $who == central ]] && store=$CENTRAL
    for t in X Y; do
        run "$store" ticket show "${!t}" --json
        if ((RC == 0)); then save "$t-$who.json"; else fail "ticket show $t at $who" "$(last_output)"; echo '{}' >"$W/$t-$who.json"; fi
    done
done
check "X: owningSite central, owningEpoch 1, group tier2 on both stores, handoff_accepted in history" py "$W" <<'PY'
import sys, h
for who in ("north", "central"):
    t = h.load(f"{sys.argv[1]}/X-{who}.json")
    h.ensure(t.get("owningSite") == "central" and t.get("owningEpoch") == 1,
             f"{who}: owningSite {t.get('owningSite')!r} owningEpoch {t.get('owningEpoch')!r}")
    h.ensure(t["group"] == "tier2", f"{who}: group {t['group']!r}")
    h.ensure("handoff_accepted" in h.history(t, who) and not h.sla(t, who)["pendingHandoffs"],
             f"{who}: history {h.history(t, who)} pending {h.sla(t, who)['pendingHandoffs']}")
PY
check "Y: still owned by north (epoch 0) on both stores, handoff_rejected with the reason" py "$W" <<'PY'
import sys, h
for who in ("north", "central"):
    t = h.load(f"{sys.argv[1]}/Y-{who}.json")
    h.ensure(t.get("owningSite") == "north" and t.get("owningEpoch") == 0,
             f"{who}: owningSite {t.get('owningSite')!r} owningEpoch {t.get('owningEpoch')!r}")
    rej = h.where(h.sla(t, who)["history"], type="handoff_rejected")
    h.ensure(rej and "printers stay local" in rej[0]["text"], f"{who}: rejected entries {rej}")
    h.ensure(not h.sla(t, who)["pendingHandoffs"], f"{who}: pending {h.sla(t, who)['pendingHandoffs']}")
PY
must "north handoff list --json after the exchange" "$NORTH" handoff list --json
check "north has no pending handoff left" test "$(tr -d ' \n' <"$W/out")" = "[]"
DN=$(digest_of "$NORTH")
DC=$(digest_of "$CENTRAL")
check "digest prints one 64-hex-digit line" grep -Eqx '[0-9a-f]{64}' <<<"$DN"
check "digest equal on north and central" same digests "$DN" "$DC"

echo "== 10b. long values are shown whole"
# 200 characters each: a table or summary that cut them would hide what the next tier must read.
LONG_SUBJECT="North: $(printf 'the badge reader at door %03d rejects every card; ' $(seq 1 4))"
LONG_SUBJECT=${LONG_SUBJECT:0:200}
LONG_ACTION="$(printf 'replace reader %03d and re-enrol the cards of the east wing, ' $(seq 1 4))"
LONG_ACTION=${LONG_ACTION:0:199}Z
must "north creates a ticket with a 200-character subject" "$NORTH" ticket create --subject "$LONG_SUBJECT" --json
L=$(field out id)
must "escalate it within north with a 200-character requested action" "$NORTH" escalate "$L" --to tier2@north \
    --summary "reader dead" --verified-facts "since Monday" --steps-tried "new badge" --requested-action "$LONG_ACTION"
must "ticket show (table) of the long ticket" "$NORTH" ticket show "$L"
check "ticket show prints the 200-character subject whole, on one line" grep -qF -- "$LONG_SUBJECT" "$W/out"
check "ticket show prints the 200-character requested action whole, on one line" grep -qF -- "$LONG_ACTION" "$W/out"
check "ticket show cuts nothing with an ellipsis" bash -c '! grep -q "…" "$0"' "$W/out"

echo "== 10c. a handoff to a site not in the roster is refused; one to a silent site is withdrawn by the site that asked"
SOUTH=$W/south
LAP=$W/lap
must "init south (a site that never answers)" "$SOUTH" init --site south --role site
must "init lap (role laptop)" "$LAP" init --site lap --role laptop
admit "$CENTRAL" "$SOUTH" "$LAP"
must "north takes the roster listing south and lap" "$NORTH" roster import "$W/roster.json"
must "north creates a ticket to escalate" "$NORTH" ticket create --subject "Badge printer jams" --json
WD=$(field out id)
refused "escalate to tier2@hbu (no such site): exit 2, naming it and the known sites" "$NORTH" 2 \
    'hbu is not a site of the roster \(known: central, lap, north, south\)' escalate "$WD" --to tier2@hbu \
    --summary "jams" --verified-facts "every card" --steps-tried "cleaned it" --requested-action "replace the roller"
refused "escalate to tier2@lap (a laptop): exit 1, saying a laptop could never accept it" "$NORTH" 1 \
    'lap is a laptop.*may not move a ticket' escalate "$WD" --to tier2@lap \
    --summary "jams" --verified-facts "every card" --steps-tried "cleaned it" --requested-action "replace the roller"
must "north escalates it to tier2@south (a site that never answers)" "$NORTH" escalate "$WD" --to tier2@south \
    --summary "jams" --verified-facts "every card" --steps-tried "cleaned it" --requested-action "replace the roller"
must "handoff list at north" "$NORTH" handoff list --json
check "the request to south is pending, outgoing" grep -q '"toSite" *: *"south"' "$W/out"
must "north exports its blocks" "$NORTH" export --out "$W/north-wd.tlx"
must "lap imports them" "$LAP" import "$W/north-wd.tlx"
must "handoff list at lap (neither sender nor receiver)" "$LAP" handoff list
check "lap lists north's request to south as elsewhere, not outgoing" bash -c 'grep -q "elsewhere" "$0" && ! grep -q "outgoing" "$0"' "$W/out"
must "north withdraws it" "$NORTH" handoff withdraw "$WD" --reason "south is closed today"
check "handoff withdraw says what it did" grep -q "withdrew the handoff of NORTH-" "$W/out"
must "handoff list at north after the withdrawal" "$NORTH" handoff list --json
check "the request to south is no longer pending" bash -c '! grep -q "south" "$0"' "$W/out"
refused "a second withdraw has nothing to take back: exit 1" "$NORTH" 1 'no pending handoff' handoff withdraw "$WD"
must "ticket show lists the withdrawal in the history" "$NORTH" ticket show "$WD"
check "ticket show says the handoff was withdrawn, with the reason" grep -q "withdrawn: south is closed today" "$W/out"
must "lap opens a ticket of its own" "$LAP" ticket create --subject "Meeting room screen flickers" --json
LT=$(field out id)
refused "handoff accept on a laptop: exit 1, with the reason, nothing written" "$LAP" 1 \
    'laptop.*may not move a ticket.*accept it at a site' handoff accept "$LT"
must "south (no configuration, so no SLA policy) opens a ticket" "$SOUTH" ticket create --subject "Door reader offline" --json
ST=$(field out id)
must "south escalates it within south with a handoff note" "$SOUTH" escalate "$ST" --to tier2@south --summary "reader offline since noon" \
    --verified-facts "power is on | the LED is red" --steps-tried "rebooted the controller" --requested-action "replace the reader"
must "ticket show of a ticket with no SLA policy" "$SOUTH" ticket show "$ST"
check "ticket show prints the handoff note without a policy, each part whole on a line of its own" py "$W/out" <<'PY'
import sys
lines = [l.strip() for l in open(sys.argv[1]).read().splitlines()]
for part in ["summary: reader offline since noon", "verified: power is on | the LED is red",
             "tried: rebooted the controller", "requested: replace the reader"]:
    if not any(l.endswith(part) for l in lines):
        sys.exit(f"no line ending in {part!r} in:\n" + "\n".join(lines[-12:]))
PY

echo "== 10d. a routing file is checked against the store's configuration"
ROUTING=$CLI_DIR/../../Deploy/routing.json
set +e; timeout -k 2 60 "$BIN" routing check "$ROUTING" --store "$CENTRAL" >"$W/out" 2>"$W/err"; RC=$?; set -e
check "routing check --store: the example routing file names only what central publishes: exit 0" \
    bash -c '[[ $0 -eq 0 ]] && [[ ! -s $1 ]]' "$RC" "$W/err"
sed -e 's/"escalate": "standard"/"escalate": "standrd"/' -e 's/"slaPolicy": "platinum"/"slaPolicy": "platnum"/' "$ROUTING" >"$W/typo-routing.json"
set +e; timeout -k 2 60 "$BIN" routing check "$W/typo-routing.json" --store "$CENTRAL" >"$W/out" 2>"$W/err"; RC=$?; set -e
check "routing check --store names the unknown ladder and policy with their paths: exit 1" \
    bash -c '[[ $0 -eq 1 ]] && grep -q "rules\[0\].then.escalate: ladder \"standrd\".*Did you mean \"standard\"" "$1" \
             && grep -q "rules\[0\].then.slaPolicy: SLA policy \"platnum\"" "$1"' "$RC" "$W/err"
set +e; timeout -k 2 60 "$BIN" routing check "$W/typo-routing.json" >"$W/out" 2>"$W/err"; RC=$?; set -e
check "routing check without --store checks the file alone: exit 0" test "$RC" -eq 0
set +e; timeout -k 2 60 "$BIN" routing check "$W/typo-routing.json" --store "$SOUTH" >"$W/out" 2>"$W/err"; RC=$?; set -e
check "routing check --store of a store with no configuration yet warns that names were not checked: exit 0" \
    bash -c '[[ $0 -eq 0 ]] && grep -q "no configuration published yet" "$1"' "$RC" "$W/err"
run "$CENTRAL" serve --http 127.0.0.1:0 --routing "$W/typo-routing.json" --check
check "serve --check refuses the routing file naming an unknown ladder: exit 2, naming it" \
    bash -c '[[ $0 -eq 2 ]] && grep -q "ladder \"standrd\"" "$1"' "$RC" "$W/err"
# serve itself starts with it and logs the names: the running node is what brings a configuration
# published since, so a store that is only behind must not keep its node down.
"$BIN" serve --store "$CENTRAL" --http 127.0.0.1:0 --routing "$W/typo-routing.json" >"$W/typo-serve.out" 2>"$W/typo-serve.err" &
TYPO_PID=$!
for _ in $(seq 1 240); do
    grep -q 'ladder "standrd"' "$W/typo-serve.err" && break
    kill -0 "$TYPO_PID" 2>/dev/null || break
    sleep 0.5
done
TYPO_RUNNING=no
if kill -0 "$TYPO_PID" 2>/dev/null; then TYPO_RUNNING=yes; fi
kill -TERM "$TYPO_PID" 2>/dev/null || true
wait "$TYPO_PID" || true
check "serve starts with it and logs the unknown ladder as an error" \
    bash -c '[[ $0 == yes ]] && grep -q "ladder \"standrd\"" "$1" && grep -q "serve started anyway" "$1"' "$TYPO_RUNNING" "$W/typo-serve.err"
run "$CENTRAL" serve --http 127.0.0.1:0 --routing "$ROUTING" --check
check "serve --check with the example routing file says its names are known: exit 0" \
    bash -c '[[ $0 -eq 0 ]] && grep -q "names known to the store" "$1"' "$RC" "$W/out"

echo "== 11. bad flags"
# The CLI prints times with milliseconds (createdAt); --at should take them back.
CREATED_MS=$(field plat-created.json createdAt)
run "$CENTRAL" ticket show "$PLAT" --json --at "$CREATED_MS"
if ((RC == 0)); then pass "ticket show --at the ticket's own createdAt ($CREATED_MS, ISO 8601 with milliseconds): exit 0"; else fail "ticket show --at the ticket's own createdAt ($CREATED_MS, ISO 8601 with milliseconds): exit 0" "$(last_output)"; fi
refused "sla --at yesterday: exit 2" "$CENTRAL" 2 'yesterday' sla --at yesterday
refused "escalate without --summary: exit 2" "$NORTH" 2 'summary' escalate "$Y" --to tier2@central \
    --verified-facts a --steps-tried b --requested-action c
refused "escalate with a blank --summary: exit 2" "$NORTH" 2 'summary' escalate "$Y" --to tier2@central \
    --summary "  " --verified-facts a --steps-tried b --requested-action c
refused "ticket create --channel emial: exit 2, naming the nearest channel" "$NORTH" 2 'Did you mean "email"' \
    ticket create --subject "Typo in the channel" --channel emial
run "$NORTH" ticket create --subject "From the lobby kiosk" --channel kiosk --allow-unknown --json
if ((RC == 0)) && grep -q '"channel" *: *"kiosk"' "$W/out"; then pass "ticket create --channel kiosk --allow-unknown takes a new channel"; else fail "ticket create --channel kiosk --allow-unknown takes a new channel" "$(last_output)"; fi
refused "escalate --to without @SITE: exit 2" "$NORTH" 2 'GROUP@SITE' escalate "$Y" --to tier2 \
    --summary a --verified-facts b --steps-tried c --requested-action d
# transfer refuses a group with a space; escalate wrote one, and an accept made it the ticket's group.
refused "escalate --to a group with a space: exit 2, nothing written" "$NORTH" 2 'group name' escalate "$Y" --to "tier 2@central" \
    --summary a --verified-facts b --steps-tried c --requested-action d
# An error quotes what it was given: a terminal escape in it reaches the terminal escaped.
run "$NORTH" ticket show "$Y" --bogus$'\e[2J'
if ((RC == 2)) && ! grep -q $'\e' "$W/err" && grep -qF 'u{1b}' "$W/err"; then
    pass "an error that quotes a flag shows its escape character escaped: exit 2"
else
    fail "an error that quotes a flag shows its escape character escaped: exit 2" "$(last_output | cat -v)"
fi

finish
