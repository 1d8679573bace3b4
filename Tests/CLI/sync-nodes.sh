#!/usr/bin/env bash
# End-to-end check of TCP sync: `tierline serve` nodes and `tierline sync` on 127.0.0.1.
#
#   Tests/CLI/sync-nodes.sh [PATH/TO/tierline]      (default: .build/debug/tierline)
#
#   a. three nodes north (a), hub (b), south (c), edited apart; a and c each dial only b: all three
#      converge (equal digests and vectors) through the hub.
#   b. a ticket written with the CLI into a's store while a runs reaches c (live push).
#   c. a store `big` with a backlog of large blocks syncs into a fresh node `east`; the node is killed
#      with SIGKILL mid-transfer, restarted on the same store, and a second sync finishes the job:
#      nothing lost, nothing sent twice, a further sync moves 0 blocks.
#   d. a laptop with offline edits syncs with the hub both ways; its changes reach north and south.
#   e. `status --json` on the laptop lists the hub with theyLack 0 and weLack 0.
#   f. SIGTERM stops every node with exit code 0.
#   g. usage and connection errors of `sync` and `serve`.
#
# Every process runs in the background with its pid recorded; the EXIT trap kills exactly those pids
# and removes the temporary folder. Every wait is a bounded loop that ends as soon as its condition
# holds; the bounds (30-300 s) are generous, so a machine with every core busy does not fail a check
# (the times it took are printed). Prints one PASS/FAIL line per check;
# exits 1 if any check fails. Needs bash, python3 (JSON, free ports) and coreutils `timeout`.
set -euo pipefail

source "$(dirname "$0")/lib.sh" "$@"

workspace sync-nodes
source "$(dirname "$0")/nodes.sh"

A=$W/a
B=$W/b
C=$W/c
BIG=$W/big
E=$W/e
LAP=$W/laptop

echo "== setup: stores edited apart"
must "init a (north)" "$A" init --site north --role site
must "init b (hub)" "$B" init --site hub --role site
must "init c (south)" "$C" init --site south --role site
must "init big (big)" "$BIG" init --site big --role site
must "init e (east), empty" "$E" init --site east --role site
must "init laptop (role laptop)" "$LAP" init --site tech-laptop --role laptop
admit "$W/hq" "$A" "$B" "$C" "$BIG" "$E" "$LAP"

# The backlog of `big` is written in the background while the three nodes converge: two writers
# (SQLite serializes them), each ticket with a distinct ~24 KB customer message, so the backlog is
# ~10 MB in ~11 batches of at most 1 MiB and takes long enough on the wire to be cut mid-transfer.
# (One `ticket create` of the debug build takes 13-30 ms, so 3000 small tickets would take 40-90 s;
# a few hundred large blocks make more batches in less time. BIG_TICKETS=N overrides the count.)
BIG_TICKETS=${BIG_TICKETS:-400}
POOL=$(python3 -c 'import os, base64; print(base64.b64encode(os.urandom(90000)).decode())')
write_backlog() { # write_backlog FIRST STEP
    local i
    for ((i = $1; i <= BIG_TICKETS; i += $2)); do
        "$BIN" ticket create --store "$BIG" --subject "backlog ticket $i" --priority low --tag backlog \
            --message "m$i ${POOL:$(((i * 7919) % 85000)):24000}" >/dev/null || return 1
    done
}
bg backlog-1 write_backlog 1 2
BACKLOG_PIDS=("$BGPID")
bg backlog-2 write_backlog 2 2
BACKLOG_PIDS+=("$BGPID")

quietly "$A" ticket create --subject "north: printer jam" --priority high --tag printer --customer c1@example.com --channel email
quietly "$A" ticket create --subject "north: badge reader" --tag access
quietly "$A" ticket create --subject "north: projector" --message "it flickers"
quietly "$A" ticket comment NORTH-1 --body "north: cleared the tray"
quietly "$A" ticket tag NORTH-2 --add hardware --remove access
quietly "$B" ticket create --subject "hub: mail quota" --tag mail
quietly "$B" ticket create --subject "hub: vpn certificate" --priority urgent
quietly "$B" ticket update HUB-1 --assignee anna --status pending_customer
quietly "$C" ticket create --subject "south: wifi drops" --tag network
quietly "$C" ticket create --subject "south: laptop fan" --priority low
quietly "$C" ticket create --subject "south: shared drive" --tag storage
quietly "$C" ticket comment SOUTH-3 --internal --body "south: quota hit"
quietly "$C" ticket tag SOUTH-1 --add wifi
# Knowledge and customers written at one site each, found at the other after the TCP sync.
quietly "$A" ticket update NORTH-3 --status solved
quietly "$A" kb add NORTH-3 --title "Projector flickers on HDMI" --summary "The projector flickered on every HDMI laptop." \
    --root-cause "A worn HDMI extender" --steps "Replace the extender; set the projector input to HDMI 1.4"
printf 'id,name,email,tier,value\nC-77,Grace Hopper,grace@example.com,platinum,90000\n' >"$W/crm.csv"
quietly "$C" customer import "$W/crm.csv"
SEQ_A=$(seq_of "$A" north)
SEQ_B=$(seq_of "$B" hub)
SEQ_C=$(seq_of "$C" south)
if digests_equal "$A" "$C" >/dev/null; then fail "a and c differ before sync"; else pass "a and c differ before sync"; fi

echo "== a. three nodes, a and c dial only the hub"
start_node b "$B"
start_node a "$A" --peer "127.0.0.1:${NODE_PORT[b]}"
start_node c "$C" --peer "127.0.0.1:${NODE_PORT[b]}"
if converge 120 "$A" "$B" "$C"; then
    pass "a, b, c reach equal digests within 120 s (${CONVERGE_MS} ms)"
else
    fail "a, b, c reach equal digests within 120 s" "$(cat "$W/converge.txt"; node_log a; node_log b; node_log c)"
fi
for s in a b c; do
    run "$W/$s" vector --json
    save "vector-$s.json"
done
check "vector --json equal on a, b, c: {north: $SEQ_A, hub: $SEQ_B, south: $SEQ_C}" \
    py "$W" "$SEQ_A" "$SEQ_B" "$SEQ_C" <<'PY'
import sys, h
want = {"north": int(sys.argv[2]), "hub": int(sys.argv[3]), "south": int(sys.argv[4])}
for s in "abc":
    v = h.load(f"{sys.argv[1]}/vector-{s}.json")
    got = {k: n for k, n in v.items() if n}
    h.ensure(got == want, f"store {s}: vector {v}, want {want}")
PY
run "$C" kb search projector flickers --json
save kb-c.json
check "c finds north's knowledge article by search after the sync, the exact phrase first" py "$W/kb-c.json" <<'PY'
import sys, h
hits = h.load(sys.argv[1])
h.ensure(len(hits) == 1, f"{len(hits)} hits: {hits}")
a = hits[0]
h.ensure(a["match"] == "phrase" and a["article"]["site"] == "north" and a["article"]["sourceTicket"] == "NORTH-3", str(a))
PY
run "$A" customer show grace@example.com --json
save customer-a.json
check "a holds south's imported customer with its tier" py "$W/customer-a.json" <<'PY'
import sys, h
c = h.load(sys.argv[1])
h.ensure(c["key"] == "C-77" and c["tier"] == "platinum" and c["value"] == "90000", str(c))
PY
run "$C" ticket list --json
save list-c.json
check "c lists north's and hub's tickets (with north's tag change)" py "$W/list-c.json" <<'PY'
import sys, h
l = h.load(sys.argv[1])
subjects = {t["subject"]: t for t in l}
for s in ["north: printer jam", "north: badge reader", "north: projector", "hub: mail quota", "hub: vpn certificate"]:
    h.ensure(s in subjects, f"c lacks {s!r}; has {sorted(subjects)}")
h.ensure(subjects["north: badge reader"]["tags"] == ["hardware"], f"tags {subjects['north: badge reader']['tags']}")
h.ensure(subjects["hub: mail quota"]["assignee"] == "anna", f"assignee {subjects['hub: mail quota']['assignee']}")
PY
run "$C" status --json
save status-c.json
check "c's peers are the hub only (a and c never connect directly)" py "$W/status-c.json" <<'PY'
import sys, h
st = h.load(sys.argv[1])
sites = sorted({p.get("site") for p in st.get("peers", [])})
h.ensure(sites == ["hub"], f"c's peers: {sites}")
PY

echo "== b. live push: a CLI write into a's store reaches c"
T0=$(now_ms)
must "ticket create in store a while node a runs" "$A" ticket create --subject "north: live push" --tag live --json
LIVE_ID=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$W/out")
found=no
deadline=$((T0 + 60000))
while (($(now_ms) < deadline)); do
    run "$C" ticket show "$LIVE_ID" --json
    if ((RC == 0)); then found=yes; break; fi
    sleep 0.1
done
if [[ $found == yes ]]; then
    pass "the new ticket shows on c within 60 s ($(($(now_ms) - T0)) ms)"
else
    fail "the new ticket shows on c within 60 s" "$(last_output; node_log a; node_log b; node_log c)"
fi
if converge 60 "$A" "$B" "$C"; then pass "a, b, c equal again after the live write"; else fail "a, b, c equal again after the live write" "$(cat "$W/converge.txt")"; fi

echo "== c. kill -9 a node mid-transfer, restart, resume"
backlog_ok=yes
for p in "${BACKLOG_PIDS[@]}"; do
    reap "$p" 300
    if ((RC != 0)); then backlog_ok="no (writer exit $RC)"; fi
done
if [[ $backlog_ok != yes ]]; then
    fail "backlog of $BIG_TICKETS tickets written into big" "$backlog_ok; $(tail -n 5 "$W/backlog-1.log" "$W/backlog-2.log")"
    finish
fi
for i in 1 2 3 4 5; do quietly "$BIG" ticket comment "BIG-$i" --body "big: comment $i"; done
BIG_TOTAL=$(seq_of "$BIG" big)
check "big holds $BIG_TICKETS tickets and 5 comments: $BIG_TOTAL blocks" test "$BIG_TOTAL" -eq $((BIG_TICKETS + 5))
start_node e "$E"
bg sync-big-1 "$BIN" sync "127.0.0.1:${NODE_PORT[e]}" --store "$BIG" --json --quiet
SYNC1=$BGPID
# Poll e's vector and kill the node as soon as it holds some, not all, of big's blocks.
mid=0
deadline=$(($(now_ms) + 120000))
while (($(now_ms) < deadline)); do
    n=$(seq_of "$E" big)
    if ((n > 0 && n < BIG_TOTAL)); then mid=$n; break; fi
    if ((n >= BIG_TOTAL)) || ! alive "$SYNC1"; then break; fi
done
kill -9 "${NODE_PID[e]}"
reap "${NODE_PID[e]}" 30
if ((mid > 0)); then
    pass "node e killed (SIGKILL) mid-transfer, holding $mid of $BIG_TOTAL blocks of big"
else
    fail "node e killed (SIGKILL) mid-transfer" "e held $(seq_of "$E" big) of $BIG_TOTAL blocks when polled; the transfer was not caught mid-way (sync still running: $(alive "$SYNC1" && echo yes || echo no))"
fi
reap "$SYNC1" 60
check "the interrupted sync exits 1 (did not finish), not 0 and not a crash" test "$RC" -eq 1
if [[ $RC -ne 1 ]]; then echo "      sync exit $RC; stderr: $(tail -c 400 "$W/sync-big-1.log")"; fi
AFTER_KILL=$(seq_of "$E" big)
check "e kept every block it had shown before the kill ($AFTER_KILL >= $mid, < $BIG_TOTAL)" \
    test "$AFTER_KILL" -ge "$mid" -a "$AFTER_KILL" -lt "$BIG_TOTAL"
run "$E" digest
check "e's store opens after the kill (digest exits 0)" test "$RC" -eq 0
start_node e "$E"
set +e
timeout -k 2 300 "$BIN" sync "127.0.0.1:${NODE_PORT[e]}" --store "$BIG" --json --quiet >"$W/sync-big-2.json" 2>"$W/sync-big-2.log"
RC=$?
set -e
if ((RC == 0)); then pass "the resumed sync exits 0"; else fail "the resumed sync exits 0" "exit $RC; $(tail -c 600 "$W/sync-big-2.log"; node_log e)"; fi
check "the resumed sync sent exactly the $((BIG_TOTAL - AFTER_KILL)) blocks e lacked, received none" \
    py "$W/sync-big-2.json" "$((BIG_TOTAL - AFTER_KILL))" <<'PY'
import sys, h
r = h.load(sys.argv[1])
h.ensure(r.get("completed") is True, f"report: {r}")
h.ensure(r["sent"]["blocks"] == int(sys.argv[2]), f"sent {r['sent']['blocks']} blocks, want {sys.argv[2]}: {r}")
h.ensure(r["received"]["blocks"] == 0, f"received {r['received']['blocks']} blocks: {r}")
PY
if digests_equal "$E" "$BIG" >"$W/d.txt"; then pass "e and big have equal digests"; else fail "e and big have equal digests" "$(cat "$W/d.txt")"; fi
check "e's vector for big equals big's own seq ($BIG_TOTAL): no loss" test "$(seq_of "$E" big)" -eq "$BIG_TOTAL"
set +e
timeout -k 2 120 "$BIN" sync "127.0.0.1:${NODE_PORT[e]}" --store "$BIG" --json --quiet >"$W/sync-big-3.json" 2>"$W/sync-big-3.log"
RC=$?
set -e
check "a further sync exits 0" test "$RC" -eq 0
check "a further sync --json reports 0 blocks received and 0 sent (no duplication)" py "$W/sync-big-3.json" <<'PY'
import sys, h
r = h.load(sys.argv[1])
h.ensure(r["sent"]["blocks"] == 0 and r["received"]["blocks"] == 0 and r.get("applied") == 0
         and r.get("duplicates", 0) == 0, f"report: {r}")
PY
run "$E" ticket list --json
save list-e.json
check "e lists all $BIG_TICKETS backlog tickets, each once" py "$W/list-e.json" "$BIG_TICKETS" <<'PY'
import sys, h
l = h.load(sys.argv[1])
subjects = [t["subject"] for t in l if t["subject"].startswith("backlog ticket ")]
h.ensure(len(subjects) == int(sys.argv[2]) == len(set(subjects)), f"{len(subjects)} backlog tickets, {len(set(subjects))} distinct")
PY

echo "== d. a laptop with offline edits syncs with the hub"
quietly "$LAP" ticket create --subject "laptop: on-site visit" --tag field --message "customer called from the car park"
quietly "$LAP" ticket create --subject "laptop: spare parts" --priority high
quietly "$LAP" ticket comment TECH-LAPTOP-1 --body "laptop: replaced the cable"
quietly "$LAP" ticket tag TECH-LAPTOP-2 --add parts
SEQ_LAP=$(seq_of "$LAP" tech-laptop)
set +e
timeout -k 2 120 "$BIN" sync "127.0.0.1:${NODE_PORT[b]}" --store "$LAP" --json --quiet >"$W/sync-lap-1.json" 2>"$W/sync-lap-1.log"
RC=$?
set -e
if ((RC == 0)); then pass "laptop: sync with the hub exits 0"; else fail "laptop: sync with the hub exits 0" "exit $RC; $(tail -c 600 "$W/sync-lap-1.log")"; fi
check "the sync report: sent the laptop's $SEQ_LAP blocks, completed" py "$W/sync-lap-1.json" "$SEQ_LAP" <<'PY'
import sys, h
r = h.load(sys.argv[1])
h.ensure(r.get("completed") is True and r["sent"]["blocks"] == int(sys.argv[2]) and r["received"]["blocks"] > 0,
         f"report: {r}")
h.ensure(r.get("peerSite") == "hub", f"peerSite {r.get('peerSite')}")
PY
if digests_equal "$LAP" "$B" >"$W/d.txt"; then pass "laptop equals the hub right after the sync"; else fail "laptop equals the hub right after the sync" "$(cat "$W/d.txt")"; fi
if converge 60 "$LAP" "$A" "$B" "$C"; then
    pass "laptop, a, b, c reach equal digests within 60 s (${CONVERGE_MS} ms)"
else
    fail "laptop, a, b, c reach equal digests within 60 s" "$(cat "$W/converge.txt"; node_log b)"
fi
run "$A" ticket list --json
save list-a.json
check "the laptop's tickets show on a (relayed by the hub)" py "$W/list-a.json" <<'PY'
import sys, h
subjects = {t["subject"]: t for t in h.load(sys.argv[1])}
for s in ["laptop: on-site visit", "laptop: spare parts"]:
    h.ensure(s in subjects, f"a lacks {s!r}")
h.ensure(subjects["laptop: spare parts"]["tags"] == ["parts"], f"tags {subjects['laptop: spare parts']['tags']}")
PY
# The laptop edits a ticket it got from north while offline; the second sync carries it to south.
quietly "$LAP" ticket comment NORTH-1 --body "laptop: toner delivered"
set +e
timeout -k 2 120 "$BIN" sync "127.0.0.1:${NODE_PORT[b]}" --store "$LAP" --json --quiet >"$W/sync-lap-2.json" 2>"$W/sync-lap-2.log"
RC=$?
set -e
check "laptop: second sync exits 0" test "$RC" -eq 0
found=no
T0=$(now_ms)
deadline=$((T0 + 60000))
while (($(now_ms) < deadline)); do
    run "$C" ticket show NORTH-1 --json
    if ((RC == 0)) && grep -q 'laptop: toner delivered' "$W/out"; then found=yes; break; fi
    sleep 0.2
done
if [[ $found == yes ]]; then pass "the laptop's comment on NORTH-1 reaches c within 60 s ($(($(now_ms) - T0)) ms)"; else fail "the laptop's comment on NORTH-1 reaches c within 60 s" "$(last_output)"; fi

echo "== e. status on the laptop"
run "$LAP" status --json
save status-lap.json
check "status --store laptop --json exits 0" test "$RC" -eq 0
check "status lists peer hub with theyLack 0 and weLack 0" py "$W/status-lap.json" <<'PY'
import sys, h
st = h.load(sys.argv[1])
hub = [p for p in st.get("peers", []) if p.get("site") == "hub"]
h.ensure(len(hub) == 1, f"peers: {st.get('peers')}")
h.ensure(hub[0].get("theyLack") == 0 and hub[0].get("weLack") == 0, f"hub: {hub[0]}")
PY

echo "== e2. a node configured by a file"
F=$W/f
must "init f (west)" "$F" init --site west --role site
admit "$W/hq" "$F"
NODE_PORT[f]=$(free_port)
cat >"$W/west.json" <<JSON
{"listen": "127.0.0.1:${NODE_PORT[f]}", "peers": ["127.0.0.1:${NODE_PORT[b]}"], "store": "$F", "pollMillis": 100}
JSON
bg node-f "$BIN" serve --config "$W/west.json"
NODE_PID[f]=$BGPID
if converge 120 "$F" "$B"; then
    pass "serve --config: the node dials the hub from its file and converges ($CONVERGE_MS ms)"
else
    fail "serve --config: the node dials the hub from its file and converges" "$(node_log f)"
fi
printf '{"listen": "127.0.0.1:1", "peer": ["x:1"]}' >"$W/typo.json"
run "$F" serve --config "$W/typo.json"
check "serve --config with an unknown setting exits 2 and names it" test "$RC" -eq 2 -a -n "$(grep -F 'unknown setting "peer"' "$W/err")"

echo "== e3. the roster decides who syncs"
R=$W/rogue
HQKEY=$(status_field "$W/hq" publicKey)
must "init a store that pins hq's key but is not in the roster" "$R" init --site visitor --coordinator-key "$HQKEY"
must "visitor writes a ticket" "$R" ticket create --subject "visitor's ticket"
run "$R" sync "127.0.0.1:${NODE_PORT[b]}"
check "a site outside the roster is refused: exit 1, auth-failed, not in the roster" \
    test "$RC" -eq 1 -a -n "$(grep -F 'not in the roster' "$W/err")"
run "$B" ticket list --json
check "nothing of the refused site reached the hub" test -z "$(grep -F "visitor's ticket" "$W/out")"
must "hq admits visitor" "$W/hq" roster add visitor --key "$(status_field "$R" publicKey)" --role laptop
must "hq exports the roster" "$W/hq" roster export --out "$W/roster2.json"
must "the hub node's store takes it (while the node runs)" "$B" roster import "$W/roster2.json"
run "$R" sync "127.0.0.1:${NODE_PORT[b]}"
check "once admitted, visitor syncs (exit 0) and receives the roster from the hub" test "$RC" -eq 0 -a \
    "$(status_field "$R" rosterVersion)" = "$(status_field "$W/hq" rosterVersion)"
must "hq removes visitor" "$W/hq" roster remove visitor
must "hq exports the roster again" "$W/hq" roster export --out "$W/roster3.json"
must "the hub node's store takes it" "$B" roster import "$W/roster3.json"
run "$R" sync "127.0.0.1:${NODE_PORT[b]}"
check "a removed site is refused: exit 1, removed from the roster" test "$RC" -eq 1 -a -n "$(grep -F 'removed from the roster' "$W/err")"
must "the removed visitor imports the roster that removed it" "$R" roster import "$W/roster3.json"
check "roster import says the store writes nothing more" grep -qF "THIS STORE WRITES NOTHING: the coordinator removed this store's site visitor" "$W/out"
run "$R" ticket create --subject "written after the removal"
check "the removed store refuses to write: exit 1, says its site was removed" test "$RC" -eq 1 -a -n "$(grep -F "removed this store's site visitor" "$W/err")"
run "$R" status
check "its status says it writes nothing, and why" grep -qF "THIS STORE WRITES NOTHING: the coordinator removed this store's site visitor" "$W/out"
run "$B" roster add intruder --key "$HQKEY"
check "roster add on a store that is not the coordinator exits 1" test "$RC" -eq 1 -a -n "$(grep -F 'only the coordinator' "$W/err")"
must "init another coordinator" "$W/other-hq" init --site hq --role coordinator
must "it exports its roster" "$W/other-hq" roster export --out "$W/other-roster.json"
run "$B" roster import "$W/other-roster.json"
check "a roster signed by another coordinator is refused: exit 1, pinned key" test "$RC" -eq 1 -a -n "$(grep -F 'pinned coordinator key' "$W/err")"
run "$B" status --json
check "status --json has the roster version and the refusal lists" py "$W/out" <<'PY'
import sys, h
st = h.load(sys.argv[1])
h.ensure(st.get("coordinatorPinned") is True and st.get("rosterVersion", 0) >= 2, f"{st.get('coordinatorPinned')} {st.get('rosterVersion')}")
h.ensure(isinstance(st.get("refusals"), list) and isinstance(st.get("quarantined"), list), str(st.keys()))
h.ensure(len(st.get("publicKey", "")) == 64, "publicKey")
PY

echo "== f. SIGTERM stops every node with exit code 0"
for n in a c e f b; do
    kill -TERM "${NODE_PID[$n]}"
    t0=$(now_ms)
    reap "${NODE_PID[$n]}" 60
    if ((RC == 0)); then
        pass "node $n exits 0 within 60 s of SIGTERM ($(($(now_ms) - t0)) ms)"
    elif ((RC == 124)); then
        fail "node $n exits 0 within 60 s of SIGTERM" "still running after 60 s; $(node_log "$n")"
    else
        fail "node $n exits 0 within 60 s of SIGTERM" "exit code $RC; $(node_log "$n")"
    fi
done

echo "== g. errors of sync and serve"
CLOSED=$(free_port)
run "$LAP" sync "127.0.0.1:$CLOSED"
if ((RC == 1)) && [[ -n $(tr -d '[:space:]' <"$W/err") ]]; then
    pass "sync to a closed port exits 1 with a message on stderr"
else
    fail "sync to a closed port exits 1 with a message on stderr" "$(last_output)"
fi
run "$LAP" sync nonsense
if ((RC == 2)) && [[ -n $(tr -d '[:space:]' <"$W/err") ]]; then pass "sync nonsense exits 2 (usage)"; else fail "sync nonsense exits 2 (usage)" "$(last_output)"; fi
bg serve-bare "$BIN" serve --store "$LAP"
SPID=$BGPID
reap "$SPID" 30
if ((RC == 124)); then
    kill -9 "$SPID" 2>/dev/null || true
    reap "$SPID" 30
    fail "serve without --listen or --peer exits 2" "still running after 30 s; stderr: $(head -c 400 "$W/serve-bare.log")"
elif ((RC == 2)); then
    pass "serve without --listen or --peer exits 2"
else
    fail "serve without --listen or --peer exits 2" "exit $RC; stderr: $(head -c 400 "$W/serve-bare.log")"
fi
printf '{"rules":[{"name":"x","when":{"chanel":["email"]}}]}' >"$W/bad-routing.json"
run "$LAP" serve --http 127.0.0.1:0 --routing "$W/bad-routing.json"
check "serve with a routing file that has problems exits 2 before it listens, naming every problem's path" \
    bash -c '[[ $0 -eq 2 ]] && grep -q "rules\[0\].when.chanel: unknown key" "$1" && grep -q "rules\[0\].then" "$1" && grep -q "fallback" "$1"' "$RC" "$W/err"
set +e; timeout -k 2 60 "$BIN" routing check "$W/bad-routing.json" >"$W/out" 2>"$W/err"; RC=$?; set -e
check "routing check refuses the same file as serve, with the same exit code (2) and problems" \
    bash -c '[[ $0 -eq 2 ]] && grep -q "rules\[0\].when.chanel: unknown key" "$1" && grep -q "fallback" "$1"' "$RC" "$W/err"
run "$LAP" serve --http 127.0.0.1:0 --routing "$CLI_DIR/../../Deploy/routing.json" --check
check "serve --check names the routing file and its rules' version" grep -q "routing .*Deploy/routing.json (rules [0-9a-f]\{12\}" "$W/out"
# A routing file at a path of more than 200 characters: the table prints it whole, version included.
LONG_DIR=$W/$(printf 'a-routing-folder-with-a-long-name-%03d-' $(seq 1 5))
mkdir -p "$LONG_DIR"
cp "$CLI_DIR/../../Deploy/routing.json" "$LONG_DIR/routing.json"
run "$LAP" serve --http 127.0.0.1:0 --routing "$LONG_DIR/routing.json" --check
check "serve --check prints a routing path of ${#LONG_DIR} characters whole, with its rules' version on the same line" \
    grep -qF -- "$LONG_DIR/routing.json (rules " "$W/out"

finish
