#!/usr/bin/env bash
# Review (i24): a "PostgreSQL" that authenticates, says ReadyForQuery, then never answers a query.
# The mirror must give up or stay stoppable: --once with --timeout-millis gives up, saying so, and
# SIGTERM must stop both `tierline mirror` and `serve` with a mirror section. A "PostgreSQL 11" (the
# same script, answering with that version) is refused, naming the version and the minimum.
#   Tests/CLI/mirror-hostile-pg.sh [PATH/TO/tierline]
set -uo pipefail
BIN=${1:-.build/debug/tierline}; BIN=$(realpath "$BIN")
W=$(mktemp -d /tmp/tierline-hostile.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$(dirname "$0")/hostile-pg.py" "$PORT" 2>"$W/pg.err" & PGP=$!
SP=""; MP=""
trap 'kill -9 $PGP $SP $MP 2>/dev/null; rm -rf "$W"' EXIT
FAILS=0
"$BIN" init --store "$W/st" --site hq >/dev/null 2>&1
for i in 1 2 3; do "$BIN" ticket create --store "$W/st" --subject "t $i" >/dev/null 2>&1; done
sleep 0.5
# 1. tierline mirror: SIGTERM after 5 s must stop it (within 60 s: a bound for a busy machine).
PGPASSWORD=x "$BIN" mirror --store "$W/st" --postgres "postgres://m@127.0.0.1:$PORT/db?sslmode=disable" >"$W/m.out" 2>"$W/m.err" & MP=$!
sleep 5; kill -TERM $MP
for _ in $(seq 1 600); do kill -0 $MP 2>/dev/null || break; sleep 0.1; done
if kill -0 $MP 2>/dev/null; then echo "FAIL: tierline mirror ignores SIGTERM while PostgreSQL does not answer"; FAILS=$((FAILS+1)); else echo "PASS: mirror stopped"; fi
# 2. serve with a mirror section: SIGTERM must stop the node (within 60 s).
echo x >"$W/pw"
printf '{"store": "%s", "listen": "127.0.0.1:0", "mirror": {"postgres": "postgres://m@127.0.0.1:%s/db?sslmode=disable", "passwordFile": "pw"}}\n' "$W/st" "$PORT" >"$W/node.json"
"$BIN" serve --config "$W/node.json" >"$W/s.out" 2>"$W/s.err" & SP=$!
# Until serve has written its first mirror report (bounded: a busy machine may take a while to start it).
for _ in $(seq 1 600); do
    "$BIN" status --store "$W/st" --json 2>/dev/null | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin).get("mirror") else 1)' 2>/dev/null && break
    sleep 0.1
done
# Never connected and no earlier report: what PostgreSQL holds is unknown, so is the lag (null), neither
# 0 (caught up) nor every block of the store.
B=$("$BIN" status --store "$W/st" --json 2>/dev/null | python3 -c 'import json,sys; m = json.load(sys.stdin)["mirror"]; print("null" if m and not m["connected"] and m["behindBlocks"] is None and m["behindSeconds"] is None else m and m["behindBlocks"])')
if [[ $B == null ]]; then echo "PASS: before its first connection the mirror reports its lag as unknown"; else echo "FAIL: before its first connection status says behindBlocks=${B:-?}"; FAILS=$((FAILS+1)); fi
if "$BIN" status --store "$W/st" 2>/dev/null | grep -q "lag unknown"; then echo "PASS: status says the lag is unknown"; else echo "FAIL: status does not say the lag is unknown: $("$BIN" status --store "$W/st" 2>&1 | grep -i mirror)"; FAILS=$((FAILS+1)); fi
kill -TERM $SP
for _ in $(seq 1 600); do kill -0 $SP 2>/dev/null || break; sleep 0.1; done
if kill -0 $SP 2>/dev/null; then echo "FAIL: serve ignores SIGTERM while its mirror waits on PostgreSQL"; FAILS=$((FAILS+1)); else echo "PASS: serve stopped"; fi
# 3. --once with a 2 s limit gives up with the reason (the outer timeout only bounds the test).
timeout -k 5 120 env PGPASSWORD=x "$BIN" mirror --store "$W/st" --postgres "postgres://m@127.0.0.1:$PORT/db?sslmode=disable" --once --quiet --timeout-millis 2000 >"$W/t.out" 2>"$W/t.err"
RC=$?
if [[ $RC == 1 ]] && grep -q "no answer from PostgreSQL within" "$W/t.err"; then echo "PASS: --once --timeout-millis 2000 gives up: $(head -c 200 "$W/t.err")"
else echo "FAIL: --once --timeout-millis 2000 against a silent server: exit $RC, $(head -c 300 "$W/t.err")"; FAILS=$((FAILS+1)); fi
"$BIN" mirror --store "$W/st" --postgres "postgres://m@127.0.0.1:$PORT/db" --once --timeout-millis 5 >/dev/null 2>"$W/v.err"
RC=$?
if [[ $RC == 2 ]] && grep -q -- "--timeout-millis takes 1000 to 3600000, not 5" "$W/v.err"; then echo "PASS: --timeout-millis 5 is a usage error"; else echo "FAIL: --timeout-millis 5: exit $RC, $(head -c 300 "$W/v.err")"; FAILS=$((FAILS+1)); fi
printf '{"store": "%s", "listen": "127.0.0.1:0", "mirror": {"postgres": "postgres://m@127.0.0.1:%s/db", "timeoutMillis": 10}}\n' "$W/st" "$PORT" >"$W/bad.json"
"$BIN" serve --config "$W/bad.json" --check >/dev/null 2>"$W/c.err"
RC=$?
if [[ $RC == 2 ]] && grep -q "mirror.timeoutMillis must be between 1000 and 3600000" "$W/c.err"; then echo "PASS: serve --check refuses mirror.timeoutMillis 10"; else echo "FAIL: serve --check with mirror.timeoutMillis 10: exit $RC, $(head -c 300 "$W/c.err")"; FAILS=$((FAILS+1)); fi
# 4. A server that says it is PostgreSQL 11.22: refused at connect, naming its version and the minimum.
OLD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$(dirname "$0")/hostile-pg.py" "$OLD" --version 110022 11.22 2>"$W/old.err" & OP=$!
trap 'kill -9 $PGP $OP $SP $MP 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 1 600); do python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $OLD), 1)" 2>/dev/null && break; sleep 0.1; done
timeout -k 5 120 env PGPASSWORD=x "$BIN" mirror --store "$W/st" --postgres "postgres://m@127.0.0.1:$OLD/db?sslmode=disable" --once --quiet --timeout-millis 10000 >"$W/o.out" 2>"$W/o.err"
RC=$?
if [[ $RC == 1 ]] && grep -q "runs PostgreSQL 11.22" "$W/o.err" && grep -q "needs PostgreSQL 12 or newer" "$W/o.err"; then echo "PASS: PostgreSQL 11 is refused: $(head -c 250 "$W/o.err")"
else echo "FAIL: a PostgreSQL 11.22: exit $RC, $(head -c 300 "$W/o.err")"; FAILS=$((FAILS+1)); fi
echo "$((8 - FAILS)) passed, $FAILS failed"
exit $FAILS
