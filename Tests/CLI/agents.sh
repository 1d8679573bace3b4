#!/usr/bin/env bash
# End-to-end check of the agent directory and the actor on every write (issue 20).
#
#   Tests/CLI/agents.sh [PATH/TO/tierline]      (default: .build/debug/tierline)
#
# `hq` (the coordinator) publishes agents with `agent add`, a CSV with problems that must publish
# nothing, a good CSV, and a deactivation; `north` (a site) may not publish and gets the directory by
# import. Before any agent is published names are free text; afterwards an unknown assignee, an
# unknown group and a deactivated agent are refused (exit 2) with nothing written, and
# --allow-unknown admits an outsider. `ticket update`, `tag` and `reopen` with --actor show that
# agent in `ticket show`'s BY column and in --json, on the writing store and on a replica, and the
# default actor comes from TIERLINE_ACTOR, then `agent use`, then USER. Prints one PASS/FAIL line per
# check; exits 1 if any check fails. Needs bash and python3 (for JSON); no jq.
set -euo pipefail

source "$(dirname "$0")/lib.sh" "$@"

workspace agents
HQ=$W/hq
NORTH=$W/north

cat >"$W/h.py" <<'PY'
import json, sys
from clijson import load, fail, ensure, where

def by(detail, body):
    """The actor of the newest history item whose body is BODY."""
    items = [e for e in detail["events"] if e.get("body") == body]
    ensure(items, f"no history item {body!r} in {[e.get('body') for e in detail['events']]}")
    return items[-1].get("actor")
PY

# events_of STORE TICKET: how many history items `ticket show --json` lists.
events_of() {
    run "$1" ticket show "$2" --json
    PYTHONPATH=$W:$CLI_DIR python3 -c 'import sys,h; print(len(h.load(sys.argv[1])["events"]))' "$W/out"
}
# refused NAME STORE ARGS...: the command exits 2 and its message names FLAG-TEXT ($EXPECT).
refused() {
    local name=$1
    shift
    run "$@"
    if ((RC == 2)) && grep -q -- "$EXPECT" "$W/err"; then pass "$name"; else fail "$name" "$(last_output)"; fi
}

echo "== 1. a fleet of two, and free text before any agent is published"
must "init north" "$NORTH" init --site north --role site
admit "$HQ" "$NORTH"
must "a ticket with a free-text assignee before any agent exists" "$HQ" ticket create --subject "VPN drops" --assignee whoever --json
save t1.json
T1=$(PYTHONPATH=$W:$CLI_DIR python3 -c 'import sys,h; print(h.load(sys.argv[1])["id"])' "$W/t1.json")
must "agent list with none published" "$HQ" agent list
check "agent list says none are published" grep -q "no agents published" "$W/out"

echo "== 2. agent add, list, show; only the coordinator publishes"
must "agent add alice" "$HQ" agent add alice --display-name "Alice Martin" --email alice@example.com --site hq \
    --group billing-L1 --group field --role lead --roles "team_lead;duty_manager" --actor root
must "agent add bob" "$HQ" agent add bob --display-name Bob --site hq --group billing-L1 --json
check "agent add --json gives version 1 and every key" py "$W/out" <<'PY'
import sys, h
rows = h.load(sys.argv[1])
h.ensure(len(rows) == 1 and rows[0]["version"] == 1 and rows[0]["active"] is True, f"{rows}")
h.ensure(set(rows[0]) == {"name", "version", "displayName", "email", "site", "groups", "role", "roles", "active", "calendar"}, f"{sorted(rows[0])}")
h.ensure(rows[0]["email"] is None and rows[0]["calendar"] is None, f"{rows[0]}")
PY
must "agent list" "$HQ" agent list
check "agent list shows alice and bob in a table" bash -c "grep -q '^NAME' '$W/out' && grep -q 'Alice Martin' '$W/out' && grep -q '^bob' '$W/out'"
must "agent show alice --json" "$HQ" agent show alice --json
check "agent show gives her groups, roles and role" py "$W/out" <<'PY'
import sys, h
a = h.load(sys.argv[1])
h.ensure(a["groups"] == ["billing-L1", "field"] and a["roles"] == ["team_lead", "duty_manager"] and a["role"] == "lead", f"{a}")
PY
run "$HQ" agent show alcie
if ((RC != 0)) && grep -q 'did you mean "alice"' "$W/err"; then pass "agent show alcie suggests alice"; else fail "agent show alcie suggests alice" "$(last_output)"; fi
EXPECT="--email" refused "a bad e-mail is refused (exit 2) naming the flag" "$HQ" agent add carol --site hq --email not-an-address
run "$NORTH" agent add dave --site north
if ((RC == 1)) && grep -q "coordinator" "$W/err"; then pass "a site may not publish agents: run it at the coordinator"; else fail "a site may not publish agents" "$(last_output)"; fi

echo "== 3. import: a CSV with problems publishes nothing, a good one publishes every row"
cat >"$W/bad.csv" <<'CSV'
name,display_name,email,site,groups,role,roles,active,calendar
carol,Carol,carol@example.com,hq,tier2,agent,,true,
dave,Dave,dave-at-example,hq,billing-L1,agent,,,
erin,Erin,,hq,tier2,boss,,maybe,
frank,Frank,,hq,,agent,,,office
CSV
run "$HQ" config show --json
save config-before.json
run "$HQ" agent import "$W/bad.csv"
if ((RC == 2)) && grep -q "line 3, email" "$W/err" && grep -q "line 4, role" "$W/err" && grep -q "line 4, active" "$W/err" \
    && grep -q "line 5, calendar" "$W/err"; then
    pass "a bad CSV is refused with every problem and its line"
else
    fail "a bad CSV is refused with every problem and its line" "$(last_output)"
fi
run "$HQ" config show --json
check "nothing of the bad CSV was published" cmp -s "$W/out" "$W/config-before.json"
cat >"$W/good.csv" <<'CSV'
name,display_name,email,site,groups,role,roles,active,calendar
carol,Carol,carol@example.com,hq,tier2,agent,,true,
nora,Nora,nora@example.com,north,billing-L1;tier1,manager,site_manager,,
CSV
must "a good CSV is published" "$HQ" agent import "$W/good.csv" --json
check "both rows were published" py "$W/out" <<'PY'
import sys, h
rows = h.load(sys.argv[1])
h.ensure(sorted(r["name"] for r in rows) == ["carol", "nora"], f"{rows}")
PY
must "agent deactivate carol" "$HQ" agent deactivate carol --json
check "carol is inactive at version 2" py "$W/out" <<'PY'
import sys, h
rows = h.load(sys.argv[1])
h.ensure(rows[0]["name"] == "carol" and rows[0]["active"] is False and rows[0]["version"] == 2, f"{rows}")
PY
must "agent list --active" "$HQ" agent list --active --json
check "agent list --active leaves carol out" py "$W/out" <<'PY'
import sys, h
h.ensure(sorted(a["name"] for a in h.load(sys.argv[1])) == ["alice", "bob", "nora"], f"{h.load(sys.argv[1])}")
PY

echo "== 4. names are checked against the directory; nothing is written on refusal"
# Once agents are published, an agent's write must name an active agent: these run as alice.
export TIERLINE_ACTOR=alice
BEFORE=$(events_of "$HQ" "$T1")
run "$HQ" vector
save vector-before
EXPECT='--assignee "alcie" is not in the agent directory. Did you mean "alice"?' refused "an unknown assignee is refused (exit 2) with a did-you-mean" \
    "$HQ" ticket update "$T1" --assignee alcie
EXPECT="--assignee carol is deactivated" refused "a deactivated agent is refused as assignee (exit 2)" "$HQ" ticket update "$T1" --assignee carol
EXPECT="--assignee carol is deactivated" refused "a deactivated agent is refused even with --allow-unknown" "$HQ" ticket update "$T1" --assignee carol --allow-unknown
EXPECT='--group no active agent of the directory works in group "biling-L1" at hq (groups there: ' refused "an unknown group is refused on transfer (exit 2)" \
    "$HQ" transfer "$T1" --group biling-L1
EXPECT="--to no active agent" refused "an unknown group is refused on escalate (exit 2)" "$HQ" escalate "$T1" --to tier9@north \
    --summary s --verified-facts f --steps-tried t --requested-action a
EXPECT="--assignee" refused "an unknown assignee is refused on ticket create (exit 2)" "$HQ" ticket create --subject "x" --assignee zed
run "$HQ" vector
check "nothing was written by the refusals (vector unchanged)" cmp -s "$W/out" "$W/vector-before"
check "nothing was written by the refusals (history unchanged)" test "$(events_of "$HQ" "$T1")" = "$BEFORE"
must "--allow-unknown admits an outsider" "$HQ" ticket update "$T1" --assignee contractor-7 --allow-unknown --actor alice
must "a known group is taken" "$HQ" transfer "$T1" --group billing-L1 --actor bob
run "$HQ" config publish "$CLI_DIR/../../Deploy/escalation.json"
if ((RC == 1)) && grep -q "is not in the agent directory" "$W/err" && grep -q "nothing was published" "$W/err"; then
    pass "a ladder whose targets name nobody in the directory is refused"
else
    fail "a ladder whose targets name nobody in the directory is refused" "$(last_output)"
fi

echo "== 5. the actor: --actor on update, tag and reopen shows in BY and in --json"
must "update with --actor alice" "$HQ" ticket update "$T1" --priority high --status solved --actor alice
must "tag with --actor alice" "$HQ" ticket tag "$T1" --add vpn --actor alice
must "reopen with --actor alice" "$HQ" ticket reopen "$T1" --actor alice
must "ticket show --json" "$HQ" ticket show "$T1" --json
check "ticket show --json names alice as the actor of each change" py "$W/out" <<'PY'
import sys, h
d = h.load(sys.argv[1])
for body in ["priority → high", "status → solved", "tag + vpn", "status → open"]:
    h.ensure(h.by(d, body) == "alice", f"{body}: {h.by(d, body)}")
h.ensure(not [e for e in d["events"] if e.get("kind") == "attribution"], "an attribution is listed as an item")
PY
check "the transfer by bob names him in the SLA history and on the group change" py "$W/out" <<'PY'
import sys, h
d = h.load(sys.argv[1])
moves = h.where(d["sla"]["history"], type="transferred")
h.ensure(moves and moves[-1].get("actor") == "bob", f"{d['sla']['history']}")
h.ensure(h.by(d, "group → billing-L1") == "bob", "group change BY")
PY
must "ticket show (table)" "$HQ" ticket show "$T1"
check "the BY column of the table shows alice for the field changes" \
    bash -c "grep -E 'field_change +alice +(priority → high|tag \\+ vpn|status → open)' '$W/out' | wc -l | grep -qx 3"
must "a customer message taken down by bob" "$HQ" ticket create --subject "Printer" --customer acme --json --actor bob
save t2.json
T2=$(PYTHONPATH=$W:$CLI_DIR python3 -c 'import sys,h; print(h.load(sys.argv[1])["id"])' "$W/t2.json")
must "comment --from-customer" "$HQ" ticket comment "$T2" --body "still broken" --from-customer --actor bob
must "ticket show T2 --json" "$HQ" ticket show "$T2" --json
check "a customer message is by the customer, not the agent" py "$W/out" <<'PY'
import sys, h
h.ensure(h.by(h.load(sys.argv[1]), "still broken") == "acme", "customer message BY")
PY

echo "== 6. the default actor: TIERLINE_ACTOR, then agent use, then USER; it must be an active agent"
BEFORE=$(events_of "$HQ" "$T1")
EXPECT='--actor "alcie" is not an agent of the directory. Did you mean "alice"?' refused "an unknown --actor is refused (exit 2) with a did-you-mean" \
    "$HQ" ticket tag "$T1" --add x --actor alcie
EXPECT="--actor agent carol is deactivated" refused "a deactivated agent's --actor is refused (exit 2)" "$HQ" ticket tag "$T1" --add x --actor carol
check "the refused writes left the history as it was" test "$(events_of "$HQ" "$T1")" = "$BEFORE"
unset TIERLINE_ACTOR
EXPECT='"bbo" is not in the agent directory. Did you mean "bob"?' refused "agent use of an unknown name suggests the nearest" "$HQ" agent use bbo
must "agent use bob" "$HQ" agent use bob
must "update without --actor" "$HQ" ticket update "$T1" --category billing
run "$HQ" ticket show "$T1" --json
check "agent use bob makes bob the actor" py "$W/out" <<'PY'
import sys, h
h.ensure(h.by(h.load(sys.argv[1]), "category → billing") == "bob", "agent use")
PY
set +e
TIERLINE_ACTOR=nora timeout 60 "$BIN" ticket tag "$T1" --add env --store "$HQ" >/dev/null 2>&1
set -e
run "$HQ" ticket show "$T1" --json
check "TIERLINE_ACTOR wins over agent use" py "$W/out" <<'PY'
import sys, h
h.ensure(h.by(h.load(sys.argv[1]), "tag + env") == "nora", "TIERLINE_ACTOR")
PY
must "agent use --clear" "$HQ" agent use --clear
set +e
USER=bob timeout 60 "$BIN" ticket tag "$T1" --add user --store "$HQ" >/dev/null 2>&1
set -e
run "$HQ" ticket show "$T1" --json
check "without either, USER is the actor" py "$W/out" <<'PY'
import sys, h
h.ensure(h.by(h.load(sys.argv[1]), "tag + user") == "bob", "USER")
PY
set +e
USER=someone-else timeout 60 "$BIN" ticket tag "$T1" --add stranger --store "$HQ" >"$W/out" 2>"$W/err"
RC=$?
set -e
check "a USER who is no agent is refused, naming how to say who writes" bash -c '(( $1 == 2 )) && grep -q "agent use NAME" "$2"' _ "$RC" "$W/err"

echo "== 7. the directory and the actors replicate"
must "hq exports everything" "$HQ" export --out "$W/hq.tlx"
must "north imports it" "$NORTH" import "$W/hq.tlx"
must "north lists the agents" "$NORTH" agent list --json
check "north holds the four agents" py "$W/out" <<'PY'
import sys, h
h.ensure(sorted(a["name"] for a in h.load(sys.argv[1])) == ["alice", "bob", "carol", "nora"], f"{h.load(sys.argv[1])}")
PY
must "north shows the ticket" "$NORTH" ticket show "$T1" --json
check "north shows alice as the actor of her changes" py "$W/out" <<'PY'
import sys, h
d = h.load(sys.argv[1])
for body in ["priority → high", "tag + vpn", "status → open"]:
    h.ensure(h.by(d, body) == "alice", f"{body}: {h.by(d, body)}")
PY
EXPECT='--assignee "alcie" is not in the agent directory' refused "north refuses an unknown assignee too" "$NORTH" ticket create --subject y --assignee alcie --actor nora

finish
