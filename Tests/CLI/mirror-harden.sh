#!/usr/bin/env bash
# The mirror's rules against a real PostgreSQL (a throw-away cluster: pg-cluster.sh):
#   a. one writer per schema: while `tierline mirror` follows the store into schema tl, a second
#      `mirror --once` of tl exits 1 saying another mirror writes it, and writes nothing; `serve` with
#      a mirror section of tl writes nothing either, says so in `status`, and takes over once the first
#      one stops.
#   b. the lag before the first connection: unknown (no samples in /metrics, null in status) without
#      an earlier report, and counted from the last report's cursors after a node restart during a
#      PostgreSQL outage; /metrics stays valid Prometheus text (promtool check metrics).
#   c. a schema made by the previous version, with rows, is upgraded to the latest
#      (MirrorUpgradeTests, run here with TIERLINE_TEST_POSTGRES).
#   Tests/CLI/mirror-harden.sh [PATH/TO/tierline]
# Every wait polls with a bound; processes are stopped by their own pid; the cluster is removed.
set -euo pipefail
source "$(dirname "$0")/lib.sh" "$@"
workspace mirror-harden
source "$CLI_DIR/pg-cluster.sh"
REPO=$(cd "$CLI_DIR/../.." && pwd)
A_PID=""
S_PID=""
cleanup() {
    for pid in $A_PID $S_PID; do kill -9 "$pid" 2>/dev/null || true; done
    pg_cluster_stop >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT

if ! pg_cluster_start >"$W/pg.err" 2>&1; then
    fail "start a PostgreSQL cluster" "$(cat "$W/pg.err")"
    finish
fi
pass "a throw-away PostgreSQL cluster on 127.0.0.1:$PG_PORT with ssl=on"
pg_cluster_add_mirror_role "pw-harden" reports tl upgrade_old upgrade_new >/dev/null
export PGPASSWORD=pw-harden
URL="postgres://mirror@127.0.0.1:$PG_PORT/reports?sslmode=require"
ST=$W/st
must "init a store" "$ST" init --site hq
for i in $(seq 1 10); do run "$ST" ticket create --subject "ticket $i"; done
tickets_in() { pg_admin reports "SELECT count(*) FROM $1.ticket" 2>/dev/null || echo 0; }
has_tickets() { [[ $(tickets_in "$1") == "$2" ]]; }
wait_for() { # wait_for TRIES CMD...: polls CMD every 0.5 s, at most TRIES times.
    local tries=$1
    shift
    for _ in $(seq 1 "$tries"); do "$@" && return 0; sleep 0.5; done
    return 1
}

echo "== a. one writer per schema"
"$BIN" mirror --store "$ST" --postgres "$URL" --schema tl --quiet >"$W/a.out" 2>"$W/a.err" &
A_PID=$!
check "the first mirror catches up" wait_for 120 has_tickets tl 10
run "$ST" ticket create --subject "ticket 11"
check "... and follows the store" wait_for 120 has_tickets tl 11
set +e
timeout -k 2 120 "$BIN" mirror --store "$ST" --postgres "$URL" --schema tl --once >"$W/b.out" 2>"$W/b.err"
RC=$?
set -e
if [[ $RC == 1 ]] && grep -q "another mirror is writing schema tl" "$W/b.err"; then pass "a second mirror --once of the schema exits 1: $(head -c 200 "$W/b.err")"
else fail "a second mirror --once of the schema" "exit $RC: $(head -c 600 "$W/b.err")"; fi
check "... and the first still runs" kill -0 "$A_PID"

HTTP=$(pg_free_port)
echo pw-harden >"$W/pw"
cat >"$W/node.json" <<J
{"store": "$ST", "listen": "127.0.0.1:0", "http": "127.0.0.1:$HTTP",
 "mirror": {"postgres": "$URL", "schema": "tl", "passwordFile": "$W/pw", "timeoutMillis": 20000}}
J
metrics() { curl -s --max-time 5 "127.0.0.1:$HTTP/metrics" >"$W/metrics.txt" && grep -q '^tierline_mirror_connected' "$W/metrics.txt"; }
metric() { awk -v m="$1" '$1 == m { printf "%d\n", $2 }' "$W/metrics.txt"; }
status_mirror() { "$BIN" status --store "$ST" --json 2>/dev/null | python3 -c "import json,sys; m = json.load(sys.stdin)['mirror']; print(json.dumps(m))"; }
"$BIN" serve --config "$W/node.json" >"$W/s.out" 2>"$W/s.err" &
S_PID=$!
busy() { status_mirror | python3 -c 'import json,sys; m = json.load(sys.stdin); sys.exit(0 if m and not m["connected"] and "another mirror is writing schema tl" in (m["lastError"] or "") else 1)'; }
check "serve's mirror writes nothing while another holds the schema, and status says why" wait_for 60 busy
check "... its lag is unknown (null), neither 0 nor every block" bash -c "'$BIN' status --store '$ST' --json | python3 -c 'import json,sys; m = json.load(sys.stdin)[\"mirror\"]; sys.exit(0 if m[\"behindBlocks\"] is None and m[\"behindSeconds\"] is None else 1)'"
check "... and the status table says so" bash -c "'$BIN' status --store '$ST' | grep 'PostgreSQL mirror' | grep -q 'lag unknown.*another mirror is writing schema tl'"
check "/metrics answers" wait_for 60 metrics
check "/metrics has no lag samples while the lag is unknown" bash -c "! grep -Eq '^tierline_mirror_behind_(blocks|seconds)' '$W/metrics.txt' && grep -q '^tierline_mirror_connected 0' '$W/metrics.txt'"
if command -v promtool >/dev/null; then
    check "... and is valid Prometheus text (promtool check metrics exits 0)" bash -c "timeout 60 promtool check metrics <'$W/metrics.txt'"
else
    fail "promtool is missing (Debian's prometheus package)"
fi
check "... while the first mirror still runs" kill -0 "$A_PID"
kill -TERM "$A_PID"
wait_exit "$A_PID"
if kill -0 "$A_PID" 2>/dev/null; then fail "the first mirror stops on SIGTERM"; else A_PID=""; pass "the first mirror stops on SIGTERM"; fi
took_over() { metrics && [[ $(metric tierline_mirror_connected) == 1 && $(metric tierline_mirror_behind_blocks) == 0 ]]; }
check "serve's mirror takes the schema over once the first stops (connected, 0 blocks behind)" wait_for 120 took_over
check "... and /metrics, now with lag samples, is still valid Prometheus text" bash -c "timeout 60 promtool check metrics <'$W/metrics.txt'"
run "$ST" ticket create --subject "ticket 12"
check "... and follows the store" wait_for 120 has_tickets tl 12

echo "== b. a node restarted during a PostgreSQL outage counts its lag from its last report"
check "status has the caught-up report" wait_for 60 bash -c "'$BIN' status --store '$ST' --json | python3 -c 'import json,sys; m = json.load(sys.stdin)[\"mirror\"]; sys.exit(0 if m[\"connected\"] and m[\"behindBlocks\"] == 0 else 1)'"
kill -TERM "$S_PID"
wait_exit "$S_PID"
if kill -0 "$S_PID" 2>/dev/null; then fail "serve stops on SIGTERM"; kill -9 "$S_PID"; fi
S_PID=""
pg_cluster_down >/dev/null 2>&1
for i in 1 2 3 4 5; do run "$ST" ticket create --subject "during the outage $i"; done
"$BIN" serve --config "$W/node.json" >"$W/s2.out" 2>"$W/s2.err" &
S_PID=$!
outage_lag() { metrics && [[ $(metric tierline_mirror_connected) == 0 && $(metric tierline_mirror_behind_blocks) == 5 ]]; }
check "/metrics: 5 blocks behind (those of the outage), not every block" wait_for 60 outage_lag
check "... behind_seconds has a sample" grep -q '^tierline_mirror_behind_seconds ' "$W/metrics.txt"
check "status --json: not connected, 5 blocks behind" wait_for 60 bash -c "'$BIN' status --store '$ST' --json | python3 -c 'import json,sys; m = json.load(sys.stdin)[\"mirror\"]; sys.exit(0 if not m[\"connected\"] and m[\"behindBlocks\"] == 5 else 1)'"
pg_cluster_up >/dev/null 2>&1
caught_up() { metrics && [[ $(metric tierline_mirror_connected) == 1 && $(metric tierline_mirror_behind_blocks) == 0 ]]; }
check "PostgreSQL back: the mirror catches up" wait_for 120 caught_up
check "... with every ticket" has_tickets tl 17
kill -TERM "$S_PID"
wait_exit "$S_PID"
if kill -0 "$S_PID" 2>/dev/null; then fail "serve stops on SIGTERM"; kill -9 "$S_PID"; fi
S_PID=""

echo "== c. a schema of the previous version upgraded to the latest"
XCTEST=$(ls -d "$REPO"/.build/debug/*PackageTests.xctest 2>/dev/null | head -n 1 || true)
if [[ -z $XCTEST ]]; then
    fail "the test bundle is not built (swift build --build-tests)"
else
    set +e
    (cd "$REPO" && TIERLINE_TEST_POSTGRES="postgres://mirror@127.0.0.1:$PG_PORT/reports?sslmode=require" timeout -k 5 600 swift test --skip-build --filter MirrorUpgradeTests) >"$W/up.out" 2>&1
    RC=$?
    set -e
    if [[ $RC == 0 ]] && grep -q "upgradesASchemaOfThePreviousVersionAndKeepsItsRowsAndCursors() passed" "$W/up.out"; then pass "MirrorUpgradeTests against the cluster"
    else fail "MirrorUpgradeTests against the cluster (exit $RC)" "$(grep -v '^\[' "$W/up.out" | tail -n 25)"; fi
fi
finish
