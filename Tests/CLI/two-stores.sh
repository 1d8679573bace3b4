#!/usr/bin/env bash
# End-to-end check of the `tierline` CLI with two stores that sync through export files.
#
#   Tests/CLI/two-stores.sh [PATH/TO/tierline]      (default: .build/debug/tierline)
#
# `north` (role site) and `south` (role laptop) are edited apart, then exchange exactly the blocks the
# other lacks (`export --since-vector` of the other's `vector`) and must end equal: same digest, same
# ticket list, the same derived conflict, add-wins tags, a solved ticket reopened by an unseen customer
# message, and no comment lost. Then re-imports, bad input and usage errors, each of which must leave
# the store unchanged. Prints one PASS/FAIL line per check; exits 1 if any check fails.
# Needs bash and python3 (for JSON); no jq.
set -euo pipefail

source "$(dirname "$0")/lib.sh" "$@"

workspace two-stores
NORTH=$W/north
SOUTH=$W/south





# JSON helpers for the python3 snippets: `py ARGS... <<'PY' ... PY`.
cat >"$W/h.py" <<'PY'
import json, sys
from clijson import load, fail, ensure

TICKET_KEYS = ["id", "displayNumber", "subject", "status", "priority", "assignee", "group", "tags",
               "originSite", "owningSite", "owningEpoch"]

def ticket_keys(t, where):
    ensure(isinstance(t, dict), f"{where}: a ticket is not an object: {t!r}"[:300])
    missing = [k for k in TICKET_KEYS if k not in t]
    ensure(not missing, f"{where}: missing keys {missing} in {sorted(t)}")
    ensure(isinstance(t["tags"], list) and all(isinstance(x, str) for x in t["tags"]),
           f"{where}: tags is not a list of strings: {t['tags']!r}")
    ensure(t["tags"] == sorted(t["tags"]), f"{where}: tags not sorted: {t['tags']}")
    ensure(t["owningEpoch"] is None or isinstance(t["owningEpoch"], int),
           f"{where}: owningEpoch is neither null nor an integer: {t['owningEpoch']!r}")
    for k in ["id", "displayNumber", "subject", "status", "priority", "originSite", "owningSite"]:
        ensure(isinstance(t[k], str) and t[k], f"{where}: {k} is not a non-empty string: {t[k]!r}")
    for k in ["assignee", "group"]:
        ensure(t[k] is None or isinstance(t[k], str), f"{where}: {k} is neither null nor a string: {t[k]!r}")

def events(t, where):
    ev = t.get("events")
    ensure(isinstance(ev, list), f"{where}: no events array")
    for e in ev:
        missing = [k for k in ["id", "kind", "site", "body"] if k not in e]
        ensure(not missing, f"{where}: event without {missing}: {e}")
    return ev
PY

field() { PYTHONPATH=$W:$CLI_DIR python3 -c 'import sys,h; print(h.load(sys.argv[1])[sys.argv[2]])' "$W/$1" "$2"; }
digest_of() { run "$1" digest; if ((RC != 0)); then echo "digest-failed-$RC"; else cat "$W/out"; fi; }
vector_of() { run "$1" vector; if ((RC != 0)); then echo "vector-failed-$RC"; else cat "$W/out"; fi; }
same() { # same WHAT A B
    if [[ $2 == "$3" ]]; then return 0; fi
    printf '%s differ:\n  %s\n  %s\n' "$1" "$2" "$3"
    return 1
}
differ() {
    if [[ $2 != "$3" ]]; then return 0; fi
    printf '%s are equal (%s) but should differ\n' "$1" "$2"
    return 1
}
is_digest() { [[ $1 =~ ^[0-9a-f]{64}$ ]] || { echo "not one 64-hex-digit line: '$1'"; return 1; }; }

# state STORE: digest and vector, to prove a refused command left the store as it was.
state() { printf '%s\n%s\n' "$(digest_of "$1")" "$(vector_of "$1" | tr -d ' \n')"; }

# refused NAME STORE EXPECT_RC STDERR_REGEX ARGS...: the command must fail with EXPECT_RC ("nonzero"
# for any failure that is not a crash), say why on stderr (matching STDERR_REGEX, case-insensitive),
# and leave the store's digest and vector unchanged.
refused() {
    local name=$1 store=$2 want=$3 regex=$4 before after problems=""
    shift 4
    before=$(state "$store")
    run "$store" "$@"
    local rc=$RC err
    err=$(cat "$W/err")
    local detail
    detail=$(last_output)
    if [[ $want == nonzero ]]; then
        if ((rc == 0 || rc >= 126)); then problems+="exit $rc (want a failure code, not 0 or a crash); "; fi
    elif ((rc != want)); then
        problems+="exit $rc (want $want); "
    fi
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

echo "== 1. two stores, first sync"
must "init north (role site)" "$NORTH" init --site north --role site --json
save init-north.json
must "init south (role laptop)" "$SOUTH" init --site south --role laptop --json
save init-south.json
check "init --json reports site and role" py "$W/init-north.json" "$W/init-south.json" <<'PY'
import sys, h
n, s = h.load(sys.argv[1]), h.load(sys.argv[2])
h.ensure(n.get("site") == "north" and n.get("role") == "site", f"north: {n}")
h.ensure(s.get("site") == "south" and s.get("role") == "laptop", f"south: {s}")
PY

must "north creates ticket A (high, tags printer+hw)" "$NORTH" ticket create --subject "Printer on fire" \
    --priority high --tag printer --tag hw --customer "c-100@example.com" --channel email --json
save a-created.json
must "north creates ticket B (urgent, tag network, customer message)" "$NORTH" ticket create \
    --subject "VPN down" --priority urgent --tag network --message "VPN drops every minute" --json
save b-created.json
A=$(field a-created.json id)
B=$(field b-created.json id)
check "create --json: the tickets as asked" py "$W/a-created.json" "$W/b-created.json" <<'PY'
import sys, h
a, b = h.load(sys.argv[1]), h.load(sys.argv[2])
h.ticket_keys(a, "create A"); h.ticket_keys(b, "create B")
h.ensure(a["subject"] == "Printer on fire" and a["priority"] == "high" and a["tags"] == ["hw", "printer"], f"A: {a}")
h.ensure(b["subject"] == "VPN down" and b["priority"] == "urgent" and b["tags"] == ["network"], f"B: {b}")
h.ensure(a["id"] != b["id"] and a["displayNumber"] != b["displayNumber"], "A and B share an id or number")
for t in (a, b):
    h.ensure(t["originSite"] == "north" and t["owningSite"] == "north", f"sites: {t}")
    h.ensure(t["displayNumber"].upper().startswith("NORTH-"), f"display number: {t['displayNumber']}")
    h.ensure(t["assignee"] is None and t["group"] is None, f"unset assignee/group not null: {t}")
PY

must "south vector" "$SOUTH" vector
save south-vector-0.json
check "vector of an empty store is a JSON object" py "$W/south-vector-0.json" <<'PY'
import sys, h
v = h.load(sys.argv[1])
h.ensure(isinstance(v, dict) and not v, f"want an empty object, got {v!r}")
PY
must "north exports what south lacks" "$NORTH" export --out "$W/n1.tlx" --since-vector "$W/south-vector-0.json" --json
save export-n1.json
must "south imports north's export" "$SOUTH" import "$W/n1.tlx" --json
save import-n1.json
check "export and import agree on the block count" py "$W/export-n1.json" "$W/import-n1.json" <<'PY'
import sys, h
e, i = h.load(sys.argv[1]), h.load(sys.argv[2])
h.ensure(isinstance(e.get("blocks"), int) and e["blocks"] >= 2, f"export report: {e}")
h.ensure(i.get("applied") == e["blocks"], f"applied {i.get('applied')} of {e['blocks']} exported: {i}")
h.ensure(i.get("refused") in ([], None) and i.get("held", 0) == 0, f"import report: {i}")
PY
DN=$(digest_of "$NORTH")
DS=$(digest_of "$SOUTH")
check "digest prints one digest line" is_digest "$DN"
check "digests equal after the first sync" same digests "$DN" "$DS"
run "$SOUTH" ticket list --json
save south-list-1.json
check "south lists north's two tickets" py "$W/south-list-1.json" "$A" "$B" <<'PY'
import sys, h
l = h.load(sys.argv[1])
h.ensure(isinstance(l, list), f"list is not an array: {l!r}"[:300])
h.ensure(sorted(t["id"] for t in l) == sorted(sys.argv[2:]), f"ids: {[t.get('id') for t in l]}")
PY

echo "== 2. edits on both stores while apart"
must "north assigns A to alice" "$NORTH" ticket update "$A" --assignee alice --json
save a-north-assigned.json
must "south assigns A to bob (concurrent)" "$SOUTH" ticket update "$A" --assignee bob
must "north removes tag printer from A" "$NORTH" ticket tag "$A" --remove printer --json
save a-north-untagged.json
check "north's A lost tag printer locally" py "$W/a-north-untagged.json" <<'PY'
import sys, h
t = h.load(sys.argv[1]); h.ticket_keys(t, "tag --json")
h.ensure("printer" not in t["tags"], f"tags: {t['tags']}")
PY
must "south adds tag printer to A again (concurrent)" "$SOUTH" ticket tag "$A" --add printer
must "north sets B solved" "$NORTH" ticket update "$B" --status solved --json
save b-north-solved.json
check "north's B is solved locally" py "$W/b-north-solved.json" <<'PY'
import sys, h
t = h.load(sys.argv[1]); h.ensure(t["status"] == "solved", f"status {t['status']}")
PY
must "south adds a customer message to B (unseen by north)" "$SOUTH" ticket comment "$B" --from-customer \
    --body "customer-south: still broken after the fix" --json
save b-south-comment.json
must "south creates its own ticket C" "$SOUTH" ticket create --subject "Laptop battery swollen" \
    --priority low --tag hw --json
save c-created.json
C=$(field c-created.json id)
must "north comments on A" "$NORTH" ticket comment "$A" --body "north-reply: technician on the way" --json
save a-north-comment.json
must "north adds an internal note to A" "$NORTH" ticket comment "$A" --internal --body "north-note: toner recall" --json
must "south comments on A" "$SOUTH" ticket comment "$A" --body "south-reply: laptop user confirms fire" --json
save a-south-comment.json
must "south comments on C" "$SOUTH" ticket comment "$C" --body "south-reply: replacement ordered" --json
check "digests differ while apart" differ digests "$(digest_of "$NORTH")" "$(digest_of "$SOUTH")"

echo "== 3. exchange both ways"
must "north vector" "$NORTH" vector --json
save north-vector-1.json
must "south vector" "$SOUTH" vector --json
save south-vector-1.json
must "north exports what south lacks" "$NORTH" export --out "$W/n2.tlx" --since-vector "$W/south-vector-1.json" --json
save export-n2.json
must "south exports what north lacks" "$SOUTH" export --out "$W/s2.tlx" --since-vector "$W/north-vector-1.json" --json
save export-s2.json
check "each export holds exactly the blocks the other lacks" py "$W/north-vector-1.json" "$W/south-vector-1.json" \
    "$W/export-n2.json" "$W/export-s2.json" <<'PY'
import sys, h
nv, sv, en, es = (h.load(p) for p in sys.argv[1:5])
def lacks(have, other):
    return sum(max(0, seq - other.get(site, 0)) for site, seq in have.items())
h.ensure(en.get("blocks") == lacks(nv, sv) > 0, f"north exported {en.get('blocks')}, south lacks {lacks(nv, sv)} (vectors {nv} / {sv})")
h.ensure(es.get("blocks") == lacks(sv, nv) > 0, f"south exported {es.get('blocks')}, north lacks {lacks(sv, nv)} (vectors {sv} / {nv})")
PY
must "south imports north's changes" "$SOUTH" import "$W/n2.tlx" --json
save import-n2.json
must "north imports south's changes" "$NORTH" import "$W/s2.tlx" --json
save import-s2.json
check "imports applied every exported block" py "$W/export-n2.json" "$W/import-n2.json" "$W/export-s2.json" "$W/import-s2.json" <<'PY'
import sys, h
for e, i in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    e, i = h.load(e), h.load(i)
    h.ensure(i.get("applied") == e["blocks"] and i.get("held", 0) == 0 and i.get("refused") in ([], None),
             f"exported {e}, import report {i}")
PY
DN=$(digest_of "$NORTH")
DS=$(digest_of "$SOUTH")
check "digests equal after the exchange" same digests "$DN" "$DS"
check "vectors equal after the exchange" same vectors "$(vector_of "$NORTH" | tr -d ' \n')" "$(vector_of "$SOUTH" | tr -d ' \n')"
run "$NORTH" ticket list --json
save north-list-2.json
run "$SOUTH" ticket list --json
save south-list-2.json
check "ticket list --json equal on both (sorted by id), 3 tickets" py "$W/north-list-2.json" "$W/south-list-2.json" "$A" "$B" "$C" <<'PY'
import sys, json, h
n, s = h.load(sys.argv[1]), h.load(sys.argv[2])
for l, w in ((n, "north"), (s, "south")):
    h.ensure(isinstance(l, list), f"{w}: list is not an array")
    for t in l: h.ticket_keys(t, f"{w} list")
    h.ensure(sorted(t["id"] for t in l) == sorted(sys.argv[3:6]), f"{w} ids: {[t['id'] for t in l]}")
key = lambda t: t["id"]
n, s = sorted(n, key=key), sorted(s, key=key)
for a, b in zip(n, s):
    if a != b:
        diff = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
        h.fail(f"ticket {a['id']} differs (north, south): {json.dumps(diff)}")
PY
for who in north south; do
    store=$NORTH
    [[ $who == south ]] && store=$SOUTH
    for t in A B C; do
        run "$store" ticket show "${!t}" --json
        if ((RC == 0)); then save "show-$t-$who.json"; else fail "ticket show $t on $who" "$(last_output)"; echo '{}' >"$W/show-$t-$who.json"; fi
    done
done
check "ticket show --json equal on both stores (fields and events)" py "$W" <<'PY'
import sys, json, h
for t in "ABC":
    n, s = h.load(f"{sys.argv[1]}/show-{t}-north.json"), h.load(f"{sys.argv[1]}/show-{t}-south.json")
    h.ticket_keys(n, f"show {t} north"); h.ticket_keys(s, f"show {t} south")
    h.events(n, f"show {t} north"); h.events(s, f"show {t} south")
    if n != s:
        diff = {k: (n.get(k), s.get(k)) for k in sorted(set(n) | set(s)) if n.get(k) != s.get(k)}
        h.fail(f"ticket {t} differs (north, south): {json.dumps(diff)[:1500]}")
PY
# What the merge made of the edits (A's assignee conflict, the re-added tag, B reopened by the
# customer's message, every comment kept, C's own number) is the store's logic, checked in Swift:
# Tests/DeskTests/TwoSitesApartTests.swift. This script checks what the binary shows: the files
# exchanged, the exit codes, and that both stores print the same tickets.

echo "== 4. re-importing is a no-op"
for pair in "south:$SOUTH:n2.tlx" "north:$NORTH:s2.tlx"; do
    IFS=: read -r who store file <<<"$pair"
    before=$(state "$store")
    run "$store" import "$W/$file" --json
    rc=$RC
    save "reimport-$who.json"
    detail=$(last_output)
    after=$(state "$store")
    if ((rc == 0)); then pass "re-import of $file into $who exits 0"; else fail "re-import of $file into $who exits 0" "$detail"; fi
    check "re-import into $who reports applied 0" py "$W/reimport-$who.json" <<'PY'
import sys, h
r = h.load(sys.argv[1])
h.ensure(r.get("applied") == 0, f"report: {r}")
h.ensure(r.get("duplicates") == r.get("received") and r.get("received", 0) > 0, f"report: {r}")
PY
    check "re-import into $who leaves digest and vector unchanged" same "state of $who" "$before" "$after"
done

echo "== 5. bad input is refused and harms nothing"
# South writes more, so the files below hold blocks north really lacks: a refused import is then a
# real refusal, not a file of duplicates.
must "south creates ticket D" "$SOUTH" ticket create --subject "Projector flickers" --priority normal --tag av --json
D=$(field out id)
must "south comments on D" "$SOUTH" ticket comment "$D" --body "south-reply: cable swapped"
must "south updates D" "$SOUTH" ticket update "$D" --group field-tech --assignee carol
must "south tags A" "$SOUTH" ticket tag "$A" --add urgent-fix
must "south comments on B" "$SOUTH" ticket comment "$B" --body "south-reply: rebooted the VPN box"
must "north vector" "$NORTH" vector
save north-vector-2.json
must "south exports what north lacks" "$SOUTH" export --out "$W/delta.tlx" --since-vector "$W/north-vector-2.json" --json
save export-delta.json
check "the export holds several blocks" py "$W/export-delta.json" <<'PY'
import sys, h
e = h.load(sys.argv[1]); h.ensure(e.get("blocks", 0) >= 5, f"report: {e}")
PY
size=$(wc -c <"$W/delta.tlx")
head -c $((size / 2)) "$W/delta.tlx" >"$W/truncated.tlx"
python3 - "$W/delta.tlx" "$W/corrupted.tlx" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[len(data) // 2] ^= 0xFF
open(sys.argv[2], "wb").write(bytes(data))
PY
: >"$W/empty.tlx"
printf 'Dear help desk,\nthis is a plain letter, not an export of tierline.\n' >"$W/letter.txt"
FILE_ERR='damaged|corrupt|truncated|invalid|not an? |empty|export|zlib|format'
refused "import of a truncated file: refused, store unchanged" "$NORTH" nonzero "$FILE_ERR" import "$W/truncated.tlx"
refused "import of a corrupted file (one byte flipped): refused, store unchanged" "$NORTH" nonzero "$FILE_ERR" import "$W/corrupted.tlx"
refused "import of an empty file: refused, store unchanged" "$NORTH" nonzero "$FILE_ERR" import "$W/empty.tlx"
refused "import of a text file: refused, store unchanged" "$NORTH" nonzero "$FILE_ERR" import "$W/letter.txt"
refused "import of a missing file: refused, store unchanged" "$NORTH" nonzero 'missing\.tlx|no such|not found|cannot (read|open)|does not exist' \
    import "$W/missing.tlx"
refused "import --json of a truncated file: refused, store unchanged" "$NORTH" nonzero "$FILE_ERR" import "$W/truncated.tlx" --json
refused "ticket show of an unknown id exits 1" "$NORTH" 1 'NORTH-9999|no ticket|unknown|not found' ticket show NORTH-9999
refused "ticket show of an unknown UUID exits 1" "$NORTH" 1 'no ticket|unknown|not found' \
    ticket show 01900000-0000-7000-8000-000000000000 --json
refused "ticket update --status bogus exits 2" "$NORTH" 2 'bogus' ticket update "$A" --status bogus
refused "ticket update --priority apocalyptic exits 2" "$NORTH" 2 'apocalyptic' ticket update "$A" --priority apocalyptic
refused "an unknown flag exits 2" "$NORTH" 2 'frobnicate' ticket list --frobnicate
# A misspelt flag must be named, even when it is the only flag given.
refused "a misspelt flag on update (--subjct) exits 2 and names the flag" "$NORTH" 2 'subjct' \
    ticket update "$A" --subjct "Printer still on fire"
must "north closes C" "$NORTH" ticket update "$C" --status closed --json
refused "closed ticket -> open without reopen: refused, mentions reopen" "$NORTH" nonzero 'reopen' ticket update "$C" --status open
run "$NORTH" ticket show "$C" --json
save c-after-refusal.json
check "C is still closed after the refused update" py "$W/c-after-refusal.json" <<'PY'
import sys, h
t = h.load(sys.argv[1]); h.ensure(t["status"] == "closed", f"status {t['status']}")
PY
must "ticket reopen C" "$NORTH" ticket reopen "$C" --json
save c-reopened.json
check "reopen moves C out of closed" py "$W/c-reopened.json" <<'PY'
import sys, h
t = h.load(sys.argv[1]); h.ticket_keys(t, "reopen --json")
h.ensure(t["status"] not in ("closed", "solved"), f"status {t['status']}")
PY
NEVER=$W/never-initialized
for cmd in "ticket list" "digest" "vector" "ticket create --subject x" "import $W/delta.tlx"; do
    # shellcheck disable=SC2086
    name=${cmd//$W/\$TMP}
    refused "'$name' on a store never initialized exits 1, says tierline init" "$NEVER" 1 'tierline init' $cmd
    check "'$name' did not create the uninitialized store" test ! -e "$NEVER"
done
check "north still differs from south (the bad files carried real changes)" differ digests "$(digest_of "$NORTH")" "$(digest_of "$SOUTH")"
must "the intact file imports into north" "$NORTH" import "$W/delta.tlx" --json
save import-delta.json
check "the intact file applied all its blocks" py "$W/export-delta.json" "$W/import-delta.json" <<'PY'
import sys, h
e, i = h.load(sys.argv[1]), h.load(sys.argv[2])
h.ensure(i.get("applied") == e["blocks"], f"export {e}, import {i}")
PY
# North wrote (close, reopen C) after its vector was taken: send that back, then both must be equal.
must "south vector" "$SOUTH" vector
save south-vector-3.json
must "north exports what south lacks" "$NORTH" export --out "$W/n3.tlx" --since-vector "$W/south-vector-3.json"
must "south imports it" "$SOUTH" import "$W/n3.tlx"
check "digests equal again after the bad-input round" same digests "$(digest_of "$NORTH")" "$(digest_of "$SOUTH")"

echo "== 6. --json outputs"
json_ok() { # json_ok STORE ARGS...: exit 0 and stdout is one JSON document
    run "$@"
    if ((RC != 0)); then last_output; return 1; fi
    py "$W/out" <<'PY'
import sys, h
h.load(sys.argv[1])
PY
}
for args in "ticket list" "ticket list --status open" "ticket show $A" "ticket show $D" "vector" "digest" \
    "ticket update $D --priority high" "ticket comment $D --body json-check" "ticket tag $D --add json" \
    "export --out $W/json-check.tlx" "import $W/s2.tlx"; do
    # shellcheck disable=SC2086
    name=${args//$A/A}
    name=${name//$D/D}
    name=${name//$W/\$TMP}
    check "'$name --json' prints one JSON document" json_ok "$NORTH" $args --json
done
run "$NORTH" digest --json
save digest.json
check "digest --json carries the same digest as digest" py "$W/digest.json" "$(digest_of "$NORTH")" <<'PY'
import sys, h
d = h.load(sys.argv[1]); h.ensure(d.get("digest") == sys.argv[2], f"{d} vs {sys.argv[2]}")
PY
run "$NORTH" ticket list --json
save north-list-final.json
check "every ticket in list --json has every documented key (null when unset)" py "$W/north-list-final.json" <<'PY'
import sys, h
l = h.load(sys.argv[1])
h.ensure(isinstance(l, list) and len(l) == 4, f"want 4 tickets, got {len(l) if isinstance(l, list) else l!r}")
for t in l: h.ticket_keys(t, t.get("displayNumber", "?"))
unassigned = [t for t in l if t["group"] is None]
h.ensure(unassigned, "no ticket with an unset group to check null")
PY
for f in a-north-assigned a-north-untagged b-north-solved b-south-comment c-created c-reopened show-A-north show-B-south; do
    check "$f.json has every documented ticket key" py "$W/$f.json" "$f" <<'PY'
import sys, h
h.ticket_keys(h.load(sys.argv[1]), sys.argv[2])
PY
done

finish
