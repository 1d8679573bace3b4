#!/usr/bin/env bash
# End-to-end check of `tierline backup` and `tierline restore` with live nodes on 127.0.0.1.
#
#   Tests/CLI/backup-restore.sh [PATH/TO/tierline]      (default: .build/debug/tierline)
#
#   a. north runs a node dialing the hub while a CLI writer keeps creating tickets in north's store;
#      two backups taken meanwhile are whole (integrity_check ok) and internally consistent.
#   b. north's disk "dies" after more writes reached the hub; north is restored from the older backup.
#   c. the restored store refuses local writes (exit 1, saying why) and `status` says it waits.
#   d. its node syncs with the hub (the coordinator): it gets its own newer blocks back, writes again above them (no
#      sequence number reused: the hub refuses nothing) and the two digests are equal.
#   e. errors: a backup never overwrites a file; restore refuses a folder with a database, a wrong
#      key and a file that is not a store, each exiting 1 with a message saying what to do.
set -euo pipefail

source "$(dirname "$0")/lib.sh" "$@"

workspace backup-restore
source "$(dirname "$0")/nodes.sh"

# until_status STORE SECONDS <<'PY' ... PY: polls `status --json` until the snippet (reading the file
# in sys.argv[1]) passes; fails after SECONDS.
until_status() {
    local store=$1 check deadline
    check=$(cat)
    deadline=$(($(now_ms) + $2 * 1000))
    while (($(now_ms) < deadline)); do
        run "$store" status --json
        if py "$W/out" <<<"$check" 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    return 1
}

HUB=$W/hub
N=$W/north
must "init hub (coordinator)" "$HUB" init --site hub --role coordinator
must "init north" "$N" init --site north --role site
admit "$HUB" "$N"
start_node hub "$HUB"
bg node-north "$BIN" serve --store "$N" --peer "127.0.0.1:${NODE_PORT[hub]}" --log-level warning
NORTH_PID=$BGPID

echo "== a. backups while a node runs and a writer writes"
bg writer bash -c 'for i in $(seq 1 60); do "$0" ticket create --subject "Ticket $i" --store "$1" >/dev/null || exit 1; done' "$BIN" "$N"
WRITER=$BGPID
sleep 0.5
must "backup 1 while writing" "$N" backup "$W/b1.sqlite" --json
save b1.json
sleep 0.3
must "backup 2 while writing" "$N" backup "$W/b2.sqlite" --json
save b2.json
reap "$WRITER" 300
check "the writer finished (60 tickets)" test "$RC" -eq 0
for b in b1 b2; do
    check "$b is whole and consistent (integrity ok, tickets and blocks as reported)" py "$W/$b.sqlite" "$W/$b.json" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
report = json.load(open(sys.argv[2]))
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "integrity"
tickets = db.execute("SELECT COUNT(*) FROM ticket").fetchone()[0]
blocks, top = db.execute("SELECT COUNT(*), MAX(seq) FROM block WHERE origin = 'north'").fetchone()
assert tickets == report["tickets"] and blocks == report["blocks"], (tickets, blocks, report)
assert blocks == top == report["vector"]["north"], (blocks, top, report["vector"])
print(f"{tickets} tickets, blocks 1…{top}")
PY
done

echo "== b. north's disk dies after more writes reached the hub"
for i in 1 2 3; do must "north writes after the backup ($i)" "$N" ticket create --subject "After backup $i"; done
if converge 120 "$N" "$HUB"; then pass "hub holds all of north's blocks (${CONVERGE_MS} ms)"; else fail "hub holds all of north's blocks"; fi
TOP=$(seq_of "$N" north)
OLD=$(py "$W/b2.json" <<'PY'
import json, sys; print(json.load(open(sys.argv[1]))["vector"]["north"])
PY
)
kill -TERM "$NORTH_PID"; reap "$NORTH_PID" 60
check "north's node stops on SIGTERM (within 60 s)" test "$RC" -eq 0
mv "$N" "$W/north.dead"
check "the backup is behind north's last block ($OLD < $TOP)" test "$OLD" -lt "$TOP"

echo "== c. restore from the older backup"
must "restore b2 with the kept key" "$N" restore "$W/b2.sqlite" --key "$W/north.dead/site.key" --json
check "restored vector is the backup's (north $OLD)" test "$(seq_of "$N" north)" -eq "$OLD"
run "$N" ticket create --subject "Too early"
check "a local write before any sync exits 1 and says to sync first" \
    bash -c '[[ $0 -eq 1 ]] && grep -q "restored from a backup" "$1" && grep -q "tierline sync" "$1"' "$RC" "$W/err"
run "$N" status --json
check "status --json shows restoredAt" py "$W/out" <<'PY'
import json, sys; assert json.load(open(sys.argv[1]))["restoredAt"], "no restoredAt"
PY

echo "== d. the restored node syncs, learns its highest block, writes above it"
bg node-north2 "$BIN" serve --store "$N" --peer "127.0.0.1:${NODE_PORT[hub]}" --log-level warning
NORTH2_PID=$BGPID
if converge 120 "$N" "$HUB"; then pass "restored north caught up with the hub (${CONVERGE_MS} ms)"; else fail "restored north caught up with the hub"; fi
check "north's own seq is back to $TOP" test "$(seq_of "$N" north)" -eq "$TOP"
LIFTED=no
if until_status "$N" 180 <<'PY'; then LIFTED=yes; fi
import json, sys; assert json.load(open(sys.argv[1]))["restoredAt"] is None
PY
check "the coordinator's synced lifted the fence within 180 s" test "$LIFTED" = yes
must "a local write after the sync succeeds" "$N" ticket create --subject "After restore" --json
check "it took seq $((TOP + 1)), not a reused one" test "$(seq_of "$N" north)" -eq $((TOP + 1))
if converge 120 "$N" "$HUB"; then pass "the hub took it: equal digests (${CONVERGE_MS} ms)"; else fail "the hub took it"; fi
check "hub's vector has north at $((TOP + 1))" test "$(seq_of "$HUB" north)" -eq $((TOP + 1))
run "$HUB" status --json
check "the hub holds back nothing and recorded no error from north" py "$W/out" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert not s["pendingBlocks"], s["pendingBlocks"]
assert all(not p.get("lastError") for p in s["peers"]), s["peers"]
PY

echo "== e. errors"
cp "$W/b1.sqlite" "$W/b1.copy"
run "$N" backup "$W/b1.sqlite"
check "backup onto an existing file is refused and the file is untouched" \
    bash -c '[[ $0 -ne 0 ]] && grep -q "never overwrites" "$1" && cmp -s "$2" "$3"' "$RC" "$W/err" "$W/b1.sqlite" "$W/b1.copy"
run "$N" restore "$W/b1.sqlite"
check "restore into a folder with a database exits 1 and says to move it aside" \
    bash -c '[[ $0 -eq 1 ]] && grep -q "move the folder aside" "$1"' "$RC" "$W/err"
run "$W/hub-restore" restore "$W/b1.sqlite" --key "$HUB/site.key"
check "restore with another site's key exits 1 naming the site" \
    bash -c '[[ $0 -eq 1 ]] && grep -q "site north" "$1"' "$RC" "$W/err"
head -c 8192 /dev/urandom >"$W/noise.sqlite"
run "$W/noise-restore" restore "$W/noise.sqlite" --key "$W/north.dead/site.key"
check "restore of a file that is not a store exits 1" bash -c '[[ $0 -eq 1 ]] && [[ ! -e $1 ]]' "$RC" "$W/noise-restore/tierline.sqlite"
must "a second restore of b2, for --release" "$W/north-copy" restore "$W/b2.sqlite" --key "$W/north.dead/site.key"
must "restore --release lifts the wait by hand" "$W/north-copy" restore --release
must "and the copy writes again" "$W/north-copy" ticket create --subject "After release"
run "$W/north-copy" restore --release "$W/b2.sqlite"
check "restore --release with a FILE exits 2" test "$RC" -eq 2
run "$W/missing" restore "$W/nope.sqlite"
check "restore of a missing file exits 1 naming it" bash -c '[[ $0 -eq 1 ]] && grep -q "nope.sqlite" "$1"' "$RC" "$W/err"

echo "== f. restore while a laptop holds north's later blocks: the fence waits for the laptop"
# PROTOCOL 2.2.6: a restored site may write only once every member has sent what it holds to the
# coordinator (or to the site) since the restore; the coordinator names who it still awaits.
LAP=$W/lap
must "init a laptop" "$LAP" init --site lap --role laptop
SOUTH=$W/south
must "init south" "$SOUTH" init --site south --role site
admit "$HUB" "$LAP" "$SOUTH"
# south keeps a live session with the hub throughout: its `synced` predates the restore, so the hub
# ends that session when it begins to watch north's restore, and south's next one counts.
bg node-south "$BIN" serve --store "$SOUTH" --peer "127.0.0.1:${NODE_PORT[hub]}" --log-level warning
if converge 120 "$SOUTH" "$HUB"; then pass "south syncs live with the hub (${CONVERGE_MS} ms)"; else fail "south syncs live with the hub"; fi
kill -TERM "$NORTH2_PID"; reap "$NORTH2_PID" 60
must "backup 3 of north (with the roster)" "$N" backup "$W/b3.sqlite" --json
start_node north3 "$N"
for i in 1 2; do must "north writes while only the laptop is connected ($i)" "$N" ticket create --subject "Laptop only $i"; done
LTOP=$(seq_of "$N" north)
must "the laptop syncs with north" "$LAP" sync "127.0.0.1:${NODE_PORT[north3]}"
check "the laptop holds north up to $LTOP, the hub does not" \
    bash -c '[[ $0 -eq $1 && $2 -lt $1 ]]' "$(seq_of "$LAP" north)" "$LTOP" "$(seq_of "$HUB" north)"
kill -TERM "${NODE_PID[north3]}"; reap "${NODE_PID[north3]}" 60
mv "$N" "$W/north.dead2"
must "restore b3" "$N" restore "$W/b3.sqlite" --key "$W/north.dead2/site.key"
bg node-north4 "$BIN" serve --store "$N" --peer "127.0.0.1:${NODE_PORT[hub]}" --log-level warning
AWAITED=no
if until_status "$N" 180 <<'PY'; then AWAITED=yes; fi
import json, sys; assert json.load(open(sys.argv[1]))["restoreAwaiting"] == ["lap"]
PY
check "after a session with the hub, north's status says it awaits the laptop" test "$AWAITED" = yes
run "$N" status
check "the status table names the laptop" grep -q "news of lap" "$W/out"
run "$N" ticket create --subject "Would reuse a seq"
check "a write is refused, naming the laptop" bash -c '[[ $0 -eq 1 ]] && grep -q "news from lap" "$1"' "$RC" "$W/err"
must "the laptop syncs with the hub" "$LAP" sync "127.0.0.1:${NODE_PORT[hub]}"
LIFTED=no
if until_status "$N" 180 <<'PY'; then LIFTED=yes; fi
import json, sys; assert json.load(open(sys.argv[1]))["restoredAt"] is None
PY
check "the fence lifts on the open session with the hub within 180 s" test "$LIFTED" = yes
check "north has its blocks back up to $LTOP" test "$(seq_of "$N" north)" -eq "$LTOP"
must "north writes again" "$N" ticket create --subject "After the second restore"
check "it took seq $((LTOP + 1))" test "$(seq_of "$N" north)" -eq $((LTOP + 1))
if converge 120 "$N" "$HUB"; then pass "north and the hub converge (${CONVERGE_MS} ms)"; else fail "north and the hub converge" "$(cat "$W/converge.txt")"; fi
must "the laptop syncs with the hub again" "$LAP" sync "127.0.0.1:${NODE_PORT[hub]}"
check "hub, north and laptop hold equal digests" digests_equal "$HUB" "$N" "$LAP"
if converge 120 "$SOUTH" "$HUB"; then pass "south, which stayed live, converges too (${CONVERGE_MS} ms)"; else fail "south converges"; fi
run "$HUB" status --json
check "no block was refused as an equivocation anywhere" py "$W/out" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert not [r for r in s["refusals"] if r.get("code") == "equivocation"], s["refusals"]
PY
run "$N" ticket list --json
check "both laptop-only tickets survived" py "$W/out" <<'PY'
import json, sys
subjects = {t["subject"] for t in json.load(open(sys.argv[1]))}
assert {"Laptop only 1", "Laptop only 2"} <= subjects, subjects
PY

finish
