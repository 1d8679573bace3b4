#!/usr/bin/env bash
# Review (i24): a "PostgreSQL" that authenticates, says ReadyForQuery, then never answers a query.
# The mirror must give up or stay stoppable: --once must end (120 s step limit claimed), and SIGTERM
# must stop both `tierline mirror` and `serve` with a mirror section.
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
# 1. tierline mirror: SIGTERM after 5 s must stop it within 10 s.
PGPASSWORD=x "$BIN" mirror --store "$W/st" --postgres "postgres://m@127.0.0.1:$PORT/db?sslmode=disable" >"$W/m.out" 2>"$W/m.err" & MP=$!
sleep 5; kill -TERM $MP
for _ in $(seq 1 100); do kill -0 $MP 2>/dev/null || break; sleep 0.1; done
if kill -0 $MP 2>/dev/null; then echo "FAIL: tierline mirror ignores SIGTERM while PostgreSQL does not answer"; FAILS=$((FAILS+1)); else echo "PASS: mirror stopped"; fi
# 2. serve with a mirror section: SIGTERM must stop the node within 20 s.
echo x >"$W/pw"
printf '{"store": "%s", "listen": "127.0.0.1:0", "mirror": {"postgres": "postgres://m@127.0.0.1:%s/db?sslmode=disable", "passwordFile": "pw"}}\n' "$W/st" "$PORT" >"$W/node.json"
"$BIN" serve --config "$W/node.json" >"$W/s.out" 2>"$W/s.err" & SP=$!
sleep 6
# Never connected, nothing is mirrored: status must say the store's blocks are behind, not 0.
B=$("$BIN" status --store "$W/st" --json 2>/dev/null | python3 -c 'import json,sys; m = json.load(sys.stdin)["mirror"]; print(m["behindBlocks"] if m and not m["connected"] else -1)')
if [[ ${B:--1} -ge 3 ]]; then echo "PASS: before its first connection the mirror reports $B blocks behind"; else echo "FAIL: before its first connection status says behindBlocks=${B:-?}"; FAILS=$((FAILS+1)); fi
kill -TERM $SP
for _ in $(seq 1 200); do kill -0 $SP 2>/dev/null || break; sleep 0.1; done
if kill -0 $SP 2>/dev/null; then echo "FAIL: serve ignores SIGTERM while its mirror waits on PostgreSQL"; FAILS=$((FAILS+1)); else echo "PASS: serve stopped"; fi
exit $FAILS
