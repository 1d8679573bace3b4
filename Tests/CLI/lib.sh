# Shared by the CLI scripts: `source "$(dirname "$0")/lib.sh" "$@"` right after `set -euo pipefail`.
# Sets BIN (the tierline binary: the script's first argument, else .build/debug/tierline) and
# CLI_DIR, and defines the PASS/FAIL bookkeeping and the `run`/`must`/`check` helpers. The script
# calls `workspace NAME` (which sets W, its temporary folder) before calling any of them.

BIN=${1:-.build/debug/tierline}
if [[ $# -eq 0 && ! -x $BIN ]]; then BIN=$(dirname "$0")/../../.build/debug/tierline; fi
if [[ ! -x $BIN ]]; then
    echo "FAIL: no executable tierline at '$BIN' (build it with 'swift build', or pass its path)" >&2
    exit 1
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# workspace NAME: a temporary folder W for the script, removed on exit unless the script traps EXIT
# itself later, and a private copy of the binary, so a `swift build` relinking it meanwhile cannot
# disturb the run.
workspace() {
    W=$(mktemp -d "${TMPDIR:-/tmp}/tierline-$1.XXXXXX")
    trap 'rm -rf "$W"' EXIT
    cp "$BIN" "$W/tierline"
    echo "tierline: $BIN"
    BIN=$W/tierline
    unset TIERLINE_STORE
}
CLI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
START_NS=$(date +%s%N)

PASSED=0
FAILED=0
pass() { echo "PASS: $1"; PASSED=$((PASSED + 1)); }
fail() {
    echo "FAIL: $1"
    if [[ -n ${2:-} ]]; then printf '%s\n' "$2" | head -n 30 | sed 's/^/      /'; fi
    FAILED=$((FAILED + 1))
}
wait_exit() { # wait_exit PID [TENTHS]: until PID has ended, at most TENTHS tenths of a second (200).
    for _ in $(seq 1 "${2:-200}"); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
elapsed_ms() { echo $((($(date +%s%N) - START_NS) / 1000000)); }
finish() {
    echo "---- $PASSED passed, $FAILED failed ($(elapsed_ms) ms)"
    if ((FAILED > 0)); then exit 1; fi
    exit 0
}

# run STORE ARGS...: tierline ARGS --store STORE, bounded by 60 s; stdout $W/out, stderr $W/err, RC.
RC=0
run() {
    local store=$1
    shift
    set +e
    timeout -k 2 60 "$BIN" "$@" --store "$store" >"$W/out" 2>"$W/err"
    RC=$?
    set -e
    LAST="tierline $* --store $store"
}
last_output() { printf 'command: %s\nexit: %s\nstdout: %s\nstderr: %s' "$LAST" "$RC" "$(head -c 1500 "$W/out")" "$(tail -c 1500 "$W/err")"; }
must() { # must NAME STORE ARGS...: a step the rest depends on; on failure, report and stop.
    local name=$1
    shift
    run "$@"
    if ((RC == 0)); then
        pass "$name"
    else
        fail "$name" "$(last_output)"
        echo "(stopping: later checks depend on this step)"
        finish
    fi
}
check() { # check NAME CMD...: PASS if CMD succeeds, else FAIL with what it printed.
    local name=$1 detail
    shift
    if detail=$("$@" 2>&1); then pass "$name"; else fail "$name" "$detail"; fi
}
save() { cp "$W/out" "$W/$1"; }
# py ARGS... <<'PY' ... PY: a python3 snippet that can `import h` ($W/h.py) and `clijson`.
py() { PYTHONPATH=$W:$CLI_DIR python3 - "$@"; }

# admit COORDINATOR_STORE STORE...: makes the stores one fleet, as an operator would at setup. The
# coordinator store is made (site hq) if the folder has none; each store goes into its roster with
# the site and role it was made with (`roster add`), pins the coordinator's key (`roster pin`) and
# takes the roster file (`roster export`/`import`), so sites can sync with each other before either
# has met the coordinator.
admit() {
    local coordinator=$1 store site key role pinned
    shift
    if [[ ! -e $coordinator/tierline.sqlite ]]; then
        must "init the fleet's coordinator" "$coordinator" init --site hq --role coordinator
    fi
    pinned=$(status_field "$coordinator" publicKey)
    for store in "$@"; do
        read -r site key role < <("$BIN" status --json --store "$store" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["site"], d["publicKey"], d["role"])')
        if [[ $role == coordinator ]]; then continue; fi
        must "roster add $site" "$coordinator" roster add "$site" --key "$key" --role "$role"
        must "$site pins the coordinator's key" "$store" roster pin "$pinned"
    done
    must "export the roster" "$coordinator" roster export --out "$W/roster.json"
    for store in "$@"; do
        must "import the roster into $(basename "$store")" "$store" roster import "$W/roster.json"
    done
}

# status_field STORE KEY: one top-level member of `tierline status --json`.
status_field() {
    "$BIN" status --json --store "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
