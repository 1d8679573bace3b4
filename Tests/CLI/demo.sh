#!/usr/bin/env bash
# End-to-end check of `tierline demo`, the README's main-job command.
#
#   Tests/CLI/demo.sh [PATH/TO/tierline]      (default: .build/debug/tierline)
#
#   a. `demo --short --json` runs the whole story to its end: four replicas with equal digests, a
#      conflict kept, a solved ticket reopened by a customer message its resolver had not seen, a handoff note read at the hub and the ticket owned there, an SLA breach that
#      climbed the ladder to a handoff, the laptop's sync; its temporary stores are removed.
#   b. `demo` (the full run) serves the dashboard behind the sign-in, and prints once how to sign in
#      (agent demo-manager, a password made for the run): the printed password signs in at /login and
#      opens the dashboard, a wrong one does not; Ctrl-C in the middle of the story stops it with exit
#      130: the dashboard's port is closed and no temporary store is left.
#   Every wait polls and ends as soon as its condition holds; the bounds (60-600 s) are generous so a
#   machine with every core busy does not fail a check.
#   b2. a second Ctrl-C exits at once, and a Ctrl-C right at start, both leave no temporary store.
#   c. the full run reaches its live phase; Ctrl-C there ends it cleanly (exit 0) with equal digests.
#   d. bad flags exit 2 naming the flag.
set -euo pipefail

source "$(dirname "$0")/lib.sh" "$@"

workspace demo
source "$(dirname "$0")/nodes.sh"
# The demo's temporary stores go under TMPDIR: a folder of this run, checked empty afterwards.
DEMO_TMP=$W/tmp
mkdir -p "$DEMO_TMP"

echo "== a. the short story, to its end"
set +e
TMPDIR=$DEMO_TMP timeout -k 2 600 "$BIN" demo --short --json --dashboard 127.0.0.1:0 >"$W/short.json" 2>"$W/short.err"
RC=$?
set -e
check "demo --short --json exits 0" test "$RC" -eq 0
check "the outcome: converged, every site equal, the story's acts all happened" py "$W/short.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
assert o["converged"] is True and o["storyCompleted"] is True, (o["converged"], o["storyCompleted"])
sites = {s["site"]: s for s in o["sites"]}
assert sorted(sites) == ["hub", "laptop-anna", "north", "south"], sorted(sites)
assert len({s["digest"] for s in o["sites"]}) == 1, [s["digest"] for s in o["sites"]]
assert sites["hub"]["role"] == "coordinator" and sites["laptop-anna"]["role"] == "laptop"
assert o["dashboard"].startswith("http://127.0.0.1:"), o["dashboard"]
assert o["stream"]["tickets"] >= 3 and o["stream"]["replies"] >= 1, o["stream"]
note = o["handoffNote"]
assert note and all(note[k] for k in ("summary", "verifiedFacts", "stepsTried", "requestedAction")), note
assert o["handoffOwner"] == "hub", o["handoffOwner"]
assert o["conflictTicketStatus"] == "open", ("the unseen customer message should reopen it", o["conflictTicketStatus"])
history = "\n".join(o["escalationHistory"])
for needle in ("firstResponse breached", "handoff requested to tier2@hub", "handoff accepted"):
    assert needle in history, (needle, history)
assert o["laptopSync"]["sentBlocks"] >= 2, o["laptopSync"]
assert o["knowledgeArticle"].startswith("KB-") and o["knowledgeFoundAtSouth"] is True, (o["knowledgeArticle"], o["knowledgeFoundAtSouth"])
assert o["csatScore"] == 5, o["csatScore"]
print(f"{sites['hub']['tickets']} tickets on every replica; {o['stream']}")
PY
check "the narration went to stderr and names each act" \
    bash -c 'for act in "South.s link to the hub is cut" "handoff note" "SLA-driven escalation" "resolution becomes knowledge" "a second answer is refused" "laptop-anna comes back online"; do grep -q "$act" "$0" || { echo "missing: $act"; exit 1; }; done' "$W/short.err"
check "no temporary store is left" bash -c '[[ -z $(ls -A "$0") ]]' "$DEMO_TMP"
check "the narration says once how to sign in to the dashboard (demo-manager and a password)" \
    bash -c '[[ $(grep -c "login as demo-manager with password [A-Za-z0-9]\{20\} " "$0") == 1 ]]' "$W/short.err"

# start_demo NAME: the full demo in the background, dashboard on a free port; waits for its URL.
start_demo() {
    bg "$1" env TMPDIR="$DEMO_TMP" "$BIN" demo --dashboard 127.0.0.1:0
    DEMO_PID=$BGPID
    local deadline=$(($(now_ms) + 120000))
    URL=""
    while (($(now_ms) < deadline)) && alive "$DEMO_PID"; do
        URL=$(grep -o 'http://127.0.0.1:[0-9]*/' "$W/$1.out" | head -n 1 || true)
        [[ -n $URL ]] && return 0
        sleep 0.1
    done
    fail "the demo prints where to open the dashboard within 120 s" "$(tail -n 20 "$W/$1.out" "$W/$1.log")"
    finish
}
http_status() { python3 - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=30) as r: print(r.status, len(r.read()))
except Exception as e: print("error", type(e).__name__)
PY
}
# sign_in URL NAME PASSWORD: signs in at URL/login with the form, as a browser would, then opens the
# dashboard with the session cookie; prints "signed-in" when it shows, else what went wrong.
sign_in() { python3 - "$@" <<'PY'
import sys, urllib.error, urllib.parse, urllib.request
base, name, password = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
class Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs): return None
form = urllib.parse.urlencode({"name": name, "password": password, "next": "/"}).encode()
request = urllib.request.Request(base + "/login", data=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
try:
    urllib.request.build_opener(Keep).open(request, timeout=60)
    print("no redirect after sign-in"); sys.exit()
except urllib.error.HTTPError as e:
    if e.code != 303: print(f"sign-in answered {e.code}"); sys.exit()
    cookie = (e.headers.get("Set-Cookie") or "").split(";")[0]
with urllib.request.urlopen(urllib.request.Request(base + "/", headers={"Cookie": cookie}), timeout=60) as r:
    page = r.read().decode()
print("signed-in" if r.status == 200 and "Tierline dashboard" in page else f"dashboard answered {r.status}")
PY
}

echo "== b. Ctrl-C in the middle of the story"
start_demo interrupted
check "the dashboard answers at $URL while the demo runs (its sign-in page)" bash -c '[[ $0 == "200 "* ]]' "$(http_status "$URL")"
deadline=$(($(now_ms) + 60000))
until grep -q "login as demo-manager with password" "$W/interrupted.out" || (($(now_ms) > deadline)); do sleep 0.1; done
PASSWORD=$(sed -n 's/.*login as demo-manager with password \([A-Za-z0-9]*\) .*/\1/p' "$W/interrupted.out" | head -n 1)
check "the demo prints a password for demo-manager" test -n "$PASSWORD"
check "demo-manager signs in with the printed password and sees the dashboard" \
    bash -c '[[ $0 == signed-in ]] || { echo "$0"; exit 1; }' "$(sign_in "$URL" demo-manager "$PASSWORD")"
check "a wrong password does not sign in" bash -c '[[ $0 == "sign-in answered 401" ]] || { echo "$0"; exit 1; }' "$(sign_in "$URL" demo-manager "not-the-password")"
kill -INT "$DEMO_PID"
reap "$DEMO_PID" 60
# The story runs about a dozen seconds; on a busy machine the sign-ins above can outlast it, and a
# Ctrl-C in the live phase that follows ends the demo as its normal stop (exit 0, the summary).
if grep -q "Press Ctrl-C to stop" "$W/interrupted.out" && ((RC == 0)); then
    check "Ctrl-C (which came in the live phase, after the story) stops it with exit 0 and says so" \
        grep -q "every node, the proxy and the dashboard are stopped" "$W/interrupted.out"
else
    check "Ctrl-C in the middle of the story stops it (within 60 s) with exit 130" test "$RC" -eq 130
    check "it says what it stopped" grep -q "Interrupted: every node, the proxy and the dashboard are stopped" "$W/interrupted.out"
fi
check "the dashboard's port is closed" bash -c '[[ $0 == error* ]]' "$(http_status "$URL")"
check "no temporary store is left" bash -c '[[ -z $(ls -A "$0") ]]' "$DEMO_TMP"

echo "== b2. Ctrl-C twice, and Ctrl-C at once"
start_demo twice
kill -INT "$DEMO_PID"; sleep 0.05; kill -INT "$DEMO_PID"
reap "$DEMO_PID" 60
check "a second Ctrl-C exits 130 (within 60 s)" test "$RC" -eq 130
check "no temporary store is left after it" bash -c '[[ -z $(ls -A "$0") ]]' "$DEMO_TMP"
# Started with `&`, the demo would inherit SIGINT ignored (bash does that without job control), and
# a Ctrl-C sent before the demo traps it would be lost on a busy machine, where the start takes longer
# than the 20 ms below: the demo would then run on. A terminal's Ctrl-C finds SIGINT at its default,
# so a launcher restores the default, says so, and execs the demo; the Ctrl-C comes 20 ms after that,
# wherever the demo's start has got to (before its trap, the default ends it: also exit 130).
bg at-once python3 -c '
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
open(sys.argv[1], "w").close()
os.execvp(sys.argv[2], sys.argv[2:])' "$W/at-once.ready" env TMPDIR="$DEMO_TMP" "$BIN" demo --dashboard 127.0.0.1:0
deadline=$(($(now_ms) + 60000))
until [[ -e $W/at-once.ready ]] || (($(now_ms) > deadline)) || ! alive "$BGPID"; do sleep 0.01; done
sleep 0.02
kill -INT "$BGPID"
reap "$BGPID" 60
check "Ctrl-C right at start exits 130 (or 0 if it came before anything ran)" \
    bash -c '[[ $0 -eq 130 || $0 -eq 0 ]] || { echo "exit $0 (124: still running 60 s after the Ctrl-C)"; exit 1; }' "$RC"
check "no temporary store is left after it" bash -c '[[ -z $(ls -A "$0") ]]' "$DEMO_TMP"

echo "== c. the live phase, then Ctrl-C"
start_demo live
deadline=$(($(now_ms) + 300000))
while (($(now_ms) < deadline)) && alive "$DEMO_PID" && ! grep -q "Press Ctrl-C to stop" "$W/live.out"; do sleep 0.2; done
check "the story reaches its live phase within 300 s" grep -q "Press Ctrl-C to stop" "$W/live.out"
sleep 3
kill -INT "$DEMO_PID"
reap "$DEMO_PID" 300
check "Ctrl-C in the live phase ends it with exit 0" test "$RC" -eq 0
check "it ends with equal digests and every part stopped" \
    bash -c 'grep -q "all replicas hold the same tickets (equal digests)" "$0" && grep -q "every node, the proxy and the dashboard are stopped" "$0"' "$W/live.out"
check "the dashboard's port is closed" bash -c '[[ $0 == error* ]]' "$(http_status "$URL")"
check "no temporary store is left" bash -c '[[ -z $(ls -A "$0") ]]' "$DEMO_TMP"

echo "== d. usage errors"
demo_rc() { set +e; timeout -k 2 120 "$BIN" demo "$@" >"$W/out" 2>"$W/err"; RC=$?; set -e; }
demo_rc --dashboard nowhere
check "--dashboard nowhere exits 2 naming the flag" bash -c '[[ $0 -eq 2 ]] && grep -q -- "--dashboard" "$1" && ! grep -qi "unknown option" "$1"' "$RC" "$W/err"
mkdir -p "$W/kept/hub"
demo_rc --dir "$W/kept" --short
check "--dir over existing demo stores exits 2" bash -c '[[ $0 -eq 2 ]] && grep -q "already holds demo stores" "$1"' "$RC" "$W/err"

finish
