#!/usr/bin/env bash
# What the operator reads when a link or a setting is wrong (issue 22): `sync`, `serve`, `status`
# and `roster pin` on 127.0.0.1.
#
#   Tests/CLI/operator-messages.sh [PATH/TO/tierline]      (default: .build/debug/tierline)
#
#   a. `sync` to a closed port, to a node's --http port and to a name that does not resolve: exit 1,
#      a sentence on stderr saying what to do, and no summary on stdout (nor JSON with --json).
#   b. `serve` on a busy sync port and on a busy --http port, or on a name that does not resolve,
#      names the address and the flag;
#      a setting refused at run time (nothing to do) ends without the root usage line, and `sync`
#      with a certificate file that is not PEM without its usage line.
#   c. `roster pin` refuses the store's own key; a site's key pinned by mistake is explained at the
#      first session (which key signed the roster, with no summary of zeros on stdout) and may be
#      replaced until a roster is adopted.
#   d. `status` lists a dialed peer that never connected, with the reason; a node whose dialer waits
#      out a 10-minute backoff dials at once on SIGHUP; once connected, `status` shows the session
#      open and no stale LAST ERROR.
#   e. `config publish` of ladders or a matrix whose targets name a site the roster lacks warns
#      (a handoff there would stay pending) and still publishes (a site may join later).
#
# Every process runs in the background with its pid recorded and is killed by that pid on exit.
# Waits are bounded loops (60 s) that end as soon as their condition holds; nothing is timed.
set -euo pipefail

source "$(dirname "$0")/lib.sh" "$@"

workspace operator-messages
source "$(dirname "$0")/nodes.sh"

HQ=$W/hq
NORTH=$W/north
SOUTH=$W/south
must "init hq (coordinator)" "$HQ" init --site hq --role coordinator
must "init north" "$NORTH" init --site north --role site
must "init south" "$SOUTH" init --site south --role site
HQ_KEY=$(status_field "$HQ" publicKey)
NORTH_KEY=$(status_field "$NORTH" publicKey)
SOUTH_KEY=$(status_field "$SOUTH" publicKey)
must "roster add north" "$HQ" roster add north --key "$NORTH_KEY" --role site
must "roster add south" "$HQ" roster add south --key "$SOUTH_KEY" --role site

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds or SECONDS pass.
wait_for() {
    local deadline=$(($(now_ms) + $1 * 1000))
    shift
    while (($(now_ms) < deadline)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

echo "== a. sync that reaches no node"
CLOSED=$(free_port)
run "$SOUTH" sync "127.0.0.1:$CLOSED"
check "sync to a closed port exits 1 and says connection refused, and where" \
    bash -c '[[ $0 -eq 1 ]] && grep -qF "could not connect to 127.0.0.1:$1: connection refused; is \`tierline serve\` listening there?" "$2"' "$RC" "$CLOSED" "$W/err"
check "sync to a closed port prints no summary (stdout empty)" test ! -s "$W/out"
check "its message is not NIO's raw text" bash -c '! grep -q "SingleConnectionFailure\|errno" "$0"' "$W/err"
run "$SOUTH" sync "127.0.0.1:$CLOSED" --json
check "sync --json to a closed port prints no JSON, exits 1" bash -c '[[ $0 -eq 1 ]] && [[ ! -s $1 ]]' "$RC" "$W/out"
run "$SOUTH" sync "no-such-host.invalid:7400"
check "sync to a name that does not resolve says so" \
    bash -c '[[ $0 -eq 1 ]] && grep -q "was not found" "$1" && [[ ! -s $2 ]]' "$RC" "$W/err" "$W/out"

HTTP_PORT=$(free_port)
start_node hq "$HQ" --http "127.0.0.1:$HTTP_PORT"
wait_for 60 grep -q "dashboard listening" "$W/node-hq.log" || true
run "$SOUTH" sync "127.0.0.1:$HTTP_PORT"
check "sync to a node's --http port says it answered HTTP and to use the sync port" \
    bash -c '[[ $0 -eq 1 ]] && grep -q "answered HTTP; that is a node.s dashboard/API port" "$1" && [[ ! -s $2 ]]' "$RC" "$W/err" "$W/out"

echo "== b. serve on busy ports; errors without the usage line"
run "$SOUTH" serve --listen "127.0.0.1:${NODE_PORT[hq]}"
check "serve on a busy sync port names the address and --listen" \
    bash -c '[[ $0 -eq 1 ]] && grep -qF "cannot listen on 127.0.0.1:$1: the address is already in use" "$2" && grep -q -- "--listen" "$2" && ! grep -q "errno" "$2"' \
    "$RC" "${NODE_PORT[hq]}" "$W/err"
run "$SOUTH" serve --http "127.0.0.1:$HTTP_PORT"
check "serve on a busy --http port names the address and --http" \
    bash -c '[[ $0 -eq 1 ]] && grep -qF "cannot listen on 127.0.0.1:$1: the address is already in use" "$2" && grep -q -- "--http" "$2"' \
    "$RC" "$HTTP_PORT" "$W/err"
run "$SOUTH" serve --listen "no-such-host.invalid:$(free_port)"
check "serve --listen on a name that does not resolve says so with --listen, not NIO's words" \
    bash -c '[[ $0 -eq 1 ]] && grep -q "the host no-such-host.invalid does not resolve" "$1" && grep -q -- "--listen" "$1" && ! grep -q "SocketAddressError" "$1"' "$RC" "$W/err"
run "$SOUTH" serve --http "no-such-host.invalid:$(free_port)"
check "serve --http on a name that does not resolve says so with --http, not NIO's words" \
    bash -c '[[ $0 -eq 1 ]] && grep -q "cannot listen on no-such-host.invalid:.*does not resolve" "$1" && grep -q -- "--http" "$1" && ! grep -q "SocketAddressError" "$1"' "$RC" "$W/err"
echo "not a certificate" >"$W/bad.pem"
run "$SOUTH" sync "127.0.0.1:${NODE_PORT[hq]}" --tls-cert "$W/bad.pem" --tls-key "$W/bad.pem" --tls-ca "$W/bad.pem"
check "sync with a certificate file that is not PEM exits 2 saying so, without the usage line" \
    bash -c '[[ $0 -eq 2 ]] && grep -q "is not a PEM file" "$1" && ! grep -qi "usage:" "$1" && [[ ! -s $2 ]]' "$RC" "$W/err" "$W/out"
run "$SOUTH" serve
check "serve with nothing to do exits 2 without the root usage line" \
    bash -c '[[ $0 -eq 2 ]] && grep -q "nothing to do" "$1" && ! grep -qi "usage:" "$1"' "$RC" "$W/err"
printf '{"listen": "127.0.0.1:1", "pollMillis": 1}' >"$W/bad-node.json"
run "$SOUTH" serve --config "$W/bad-node.json"
check "serve with a bad node.json exits 2 naming the setting, without the usage line" \
    bash -c '[[ $0 -eq 2 ]] && grep -q "pollMillis" "$1" && ! grep -qi "usage:" "$1"' "$RC" "$W/err"

echo "== c. roster pin"
run "$NORTH" roster pin "$NORTH_KEY"
check "roster pin refuses the store's own key" bash -c '[[ $0 -ne 0 ]] && grep -q "own key" "$1"' "$RC" "$W/err"
must "north pins south's key by mistake" "$NORTH" roster pin "$SOUTH_KEY"
run "$NORTH" sync "127.0.0.1:${NODE_PORT[hq]}"
check "the first sync says the pinned key is probably wrong and the start of the key that signed the roster, never the whole key to pin" \
    bash -c '[[ $0 -eq 1 ]] && grep -q "probably wrong" "$1" && grep -q "${2:0:16}" "$1" && ! grep -q "$2" "$1"' "$RC" "$W/err" "$HQ_KEY"
check "that refused session prints no summary of zeros (stdout empty)" test ! -s "$W/out"
run "$NORTH" sync "127.0.0.1:${NODE_PORT[hq]}" --json
check "nor JSON with --json, and exits 1" bash -c '[[ $0 -eq 1 ]] && [[ ! -s $1 ]]' "$RC" "$W/out"
must "north pins the hub's key instead (no roster adopted yet)" "$NORTH" roster pin "$HQ_KEY"
must "north syncs with the hub" "$NORTH" sync "127.0.0.1:${NODE_PORT[hq]}"
run "$NORTH" status --json
check "after a good sync, status keeps no stale auth-failed for the hub" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); p=[p for p in d["peers"] if p["site"]=="hq"]; sys.exit(0 if p and p[0]["lastError"] is None else 1)' "$W/out"
run "$NORTH" roster pin "$SOUTH_KEY"
check "with a roster held, a site's key is refused with that reason" bash -c '[[ $0 -ne 0 ]] && grep -q "key of site south" "$1"' "$RC" "$W/err"

echo "== d. status and SIGHUP"
must "south pins the hub's key" "$SOUTH" roster pin "$HQ_KEY"
# South dials a port where nothing listens yet, with a 10-minute backoff: only SIGHUP can bring its
# second attempt within this script's bounds.
HUB2_PORT=$(free_port)
printf '{"peers": ["127.0.0.1:%s"], "reconnectMinMillis": 600000, "reconnectMaxMillis": 600000}' "$HUB2_PORT" >"$W/south.json"
bg node-south "$BIN" serve --store "$SOUTH" --config "$W/south.json"
SOUTH_PID=$BGPID
dialed_waiting() { run "$SOUTH" status --json; py "$W/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
links = d["dialed"]
sys.exit(0 if d["nodeRunning"] and links and links[0]["state"] == "waiting" else 1)
PY
}
check "south's node reports its dialer waiting within 60 s" wait_for 60 dialed_waiting
check "SIGHUP is handled (the node says so when it starts)" wait_for 60 grep -q "SIGHUP dials every peer now" "$W/node-south.log"
run "$SOUTH" status
check "status lists the dialed peer that never connected, with why" \
    bash -c 'grep -q "127.0.0.1:$0 .*never connected .*connection refused" "$1"' "$HUB2_PORT" "$W/out"
NODE_PORT[hq2]=$HUB2_PORT
kill -TERM "${NODE_PID[hq]}"
reap "${NODE_PID[hq]}" 60
start_node hq2 "$HQ"
kill -HUP "$SOUTH_PID"
session_open() { run "$SOUTH" status --json; py "$W/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if any(p["site"] == "hq" and p["session"] == "open" for p in d["peers"]) else 1)
PY
}
check "after SIGHUP south dials the hub at once (within 60 s, its backoff being 10 min)" wait_for 60 session_open
check "south is still running after SIGHUP" alive "$SOUTH_PID"
run "$SOUTH" status
check "status shows the idle session open and no LAST ERROR" \
    bash -c 'grep -E "^hq .* open +now \(session open\)" "$0" | grep -qv "connection refused"' "$W/out"
check "the never-connected row is gone once the peer connected" bash -c '! grep -q "never connected" "$0"' "$W/out"

echo "== e. configuration naming a site the roster lacks"
# Deploy/escalation.json's matrix hands tickets to central, which this fleet (hq, north, south) lacks.
run "$HQ" config publish "$CLI_DIR/../../Deploy/escalation.json" --actor ops
check "config publish warns on stderr of each matrix target at a site the roster lacks, and still publishes" \
    bash -c '[[ $0 -eq 0 ]] && grep -q "^published" "$1" && grep -q "names sites the roster does not list" "$2" && grep -q "matrix tier 2 (site \*, category \*): tier2@central" "$2"' \
    "$RC" "$W/out" "$W/err"
printf '{"ladders": [{"name": "local", "version": 1, "loops": 0, "levels": [{"delay": "1h", "targets": ["tier2@north"], "assignment": "transfer_site"}]}]}' >"$W/local.json"
run "$HQ" config publish "$W/local.json" --actor ops
check "a file whose sites the roster lists publishes without the warning" bash -c '[[ $0 -eq 0 ]] && ! grep -q "warning" "$1"' "$RC" "$W/err"

finish
