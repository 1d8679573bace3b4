# Shared by the CLI scripts that run nodes: `source "$(dirname "$0")/nodes.sh"` after `workspace NAME`.
# Background processes (PIDS, killed by their own pid on exit, with the temporary folder removed),
# bounded waits, `serve` nodes on free 127.0.0.1 ports, and digest/vector/convergence checks.
PIDS=() # every background process this script started and has not yet reaped
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# ---- processes ----------------------------------------------------------------------------------
# alive PID: the process runs (not exited, not a zombie).
alive() {
    local st
    [[ -r /proc/$1/stat ]] || return 1
    st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z ]]
}
forget() { # forget PID: drop a reaped pid from PIDS
    local p keep=()
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
# reap PID TIMEOUT_S: waits (bounded) for PID to exit; sets RC to its exit code, or 124 if it is
# still running at the deadline (it is then left running).
reap() {
    local pid=$1 deadline=$(($(now_ms) + $2 * 1000))
    while alive "$pid" && (($(now_ms) < deadline)); do sleep 0.05; done
    if alive "$pid"; then RC=124; return 0; fi
    set +e
    wait "$pid" 2>/dev/null
    RC=$?
    set -e
    forget "$pid"
}
# bg NAME CMD...: starts CMD in the background (stdout $W/NAME.out, stderr $W/NAME.log); pid in BGPID.
bg() {
    local name=$1
    shift
    "$@" >"$W/$name.out" 2>"$W/$name.log" &
    BGPID=$!
    PIDS+=("$BGPID")
}
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
declare -A NODE_PID NODE_PORT
# start_node NAME STORE [ARGS...]: `serve --listen 127.0.0.1:PORT` (port in NODE_PORT[NAME], reused
# when set) and waits until the node logs that it listens: it returns as soon as it does (a node
# listens within a second); NODE_START_S (60 s) is a bound generous enough for a machine whose cores
# are all busy.
NODE_START_S=60
start_node() {
    local name=$1 store=$2
    shift 2
    if [[ -z ${NODE_PORT[$name]:-} ]]; then NODE_PORT[$name]=$(free_port); fi
    bg "node-$name" "$BIN" serve --store "$store" --listen "127.0.0.1:${NODE_PORT[$name]}" "$@"
    NODE_PID[$name]=$BGPID
    local deadline=$(($(now_ms) + NODE_START_S * 1000))
    while (($(now_ms) < deadline)); do
        if grep -q 'listening' "$W/node-$name.log" 2>/dev/null; then return 0; fi
        if ! alive "$BGPID"; then break; fi
        sleep 0.05
    done
    fail "node $name listens on 127.0.0.1:${NODE_PORT[$name]} within $NODE_START_S s" "$(node_log "$name")"
    echo "(stopping: later checks depend on this node)"
    finish
}
node_log() { echo "log of node $1:"; tail -n 15 "$W/node-$1.log" 2>/dev/null || true; }

# ---- commands -----------------------------------------------------------------------------------
quietly() { # quietly STORE ARGS...: a setup write; stops the script if it fails.
    run "$@"
    if ((RC != 0)); then
        fail "setup: $LAST" "$(last_output)"
        finish
    fi
}

cat >"$W/h.py" <<'PY'
import json, sys
from clijson import load, fail, ensure

PY

digest_of() { run "$1" digest; if ((RC != 0)); then echo "digest-failed-$RC:$(head -c 200 "$W/err")"; else cat "$W/out"; fi; }
vector_of() { run "$1" vector; if ((RC != 0)); then echo "vector-failed-$RC"; else tr -d ' \n' <"$W/out"; fi; }
# seq_of STORE SITE: SITE's entry in STORE's vector (0 when absent).
seq_of() {
    local v
    v=$(vector_of "$1")
    if [[ $v =~ \"$2\":([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; else echo 0; fi
}
# digests_equal STORE...: prints the digests; succeeds when all are equal and valid.
digests_equal() {
    local s d first="" ok=0
    for s in "$@"; do
        d=$(digest_of "$s")
        echo "$(basename "$s"): $d"
        [[ $d =~ ^[0-9a-f]{64}$ ]] || ok=1
        if [[ -z $first ]]; then first=$d; elif [[ $d != "$first" ]]; then ok=1; fi
    done
    return $ok
}
# converge TIMEOUT_S STORE...: polls until the stores' digests are equal; CONVERGE_MS is how long it took.
converge() {
    local t=$1 t0
    shift
    t0=$(now_ms)
    local deadline=$((t0 + t * 1000))
    while true; do
        if digests_equal "$@" >"$W/converge.txt"; then
            CONVERGE_MS=$(($(now_ms) - t0))
            return 0
        fi
        if (($(now_ms) >= deadline)); then
            cat "$W/converge.txt"
            return 1
        fi
        sleep 0.2
    done
}
