#!/usr/bin/env bash
# A PostgreSQL outage under `serve` with a mirror section: blocks written meanwhile show as lag in
# /metrics (tierline_mirror_behind_blocks) and in `tierline status`, never as 0, and serve stops on SIGTERM.
#   Tests/CLI/mirror-lag-outage.sh [PATH/TO/tierline]
set -uo pipefail
T=$(realpath "${1:-.build/debug/tierline}")
source "$(dirname "$0")/pg-cluster.sh"
W=$(mktemp -d /tmp/tierline-lag.XXXXXX)
SP=""
trap '[[ -n $SP ]] && kill -9 $SP 2>/dev/null; pg_cluster_stop >/dev/null 2>&1; rm -rf "$W"' EXIT
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS+1)); }
HTTP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
metric() { curl -s --max-time 5 "127.0.0.1:$HTTP/metrics" | awk -v m="$1" '$1 == m { printf "%d\n", $2 }'; }
"$T" init --store "$W/g" --site hq >/dev/null 2>&1
pg_cluster_start >/dev/null 2>&1 || { echo "FAIL: the PostgreSQL test cluster does not start"; exit 1; }
pg_cluster_add_mirror_role pw reports tl >/dev/null
echo pw > "$W/gpw"
cat > "$W/g.json" <<J
{"store": "$W/g", "listen": "127.0.0.1:0", "http": "127.0.0.1:$HTTP", "mirror": {"postgres": "postgres://mirror@127.0.0.1:$PG_PORT/reports?sslmode=require", "schema": "tl", "passwordFile": "$W/gpw"}}
J
"$T" serve --config "$W/g.json" >"$W/gs.out" 2>"$W/gs.err" & SP=$!
for _ in $(seq 1 60); do [[ $(metric tierline_mirror_connected) == 1 ]] && break; sleep 0.5; done
[[ $(metric tierline_mirror_connected) == 1 ]] || fail "the mirror did not connect: $(tail -3 "$W/gs.err")"
pg_cluster_down >/dev/null 2>&1
for i in $(seq 1 20); do "$T" ticket create --store "$W/g" --subject "during outage $i" >/dev/null 2>&1; done
B=0
for _ in $(seq 1 60); do B=$(metric tierline_mirror_behind_blocks); [[ ${B:-0} -ge 20 ]] && break; sleep 1; done
if [[ ${B:-0} -ge 20 && $(metric tierline_mirror_connected) == 0 ]]; then echo "PASS: /metrics shows the outage's backlog ($B blocks, not connected)"
else fail "20 blocks written during a PostgreSQL outage, /metrics says behind_blocks=${B:-?}"; fi
[[ $(metric tierline_mirror_behind_seconds) -gt 0 ]] || fail "behind_seconds is 0 during the outage"
"$T" status --store "$W/g" 2>&1 | grep -q "not connected, [0-9]* blocks behind" || fail "status does not say how far behind a disconnected mirror is: $("$T" status --store "$W/g" 2>&1 | grep -i mirror)"
kill -TERM $SP
for _ in $(seq 1 200); do kill -0 $SP 2>/dev/null || break; sleep 0.1; done
if kill -0 $SP 2>/dev/null; then fail "serve ignores SIGTERM during the outage"; else SP=""; fi
B=$("$T" status --store "$W/g" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["mirror"]["behindBlocks"])')
if [[ ${B:-0} -ge 20 ]]; then echo "PASS: status shows the outage's backlog ($B)"; else fail "status --json says behindBlocks=${B:-?} after an outage of 20 blocks"; fi
exit $FAILS
