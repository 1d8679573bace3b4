#!/usr/bin/env bash
# tierline-bench --peers: the peers' figures are read and compared in the same run, and a missing
# harness or a failing peer is reported without stopping the run (exit 3).
#   Tests/CLI/bench-peers.sh Benchmarks/.build/debug/tierline-bench
# The harness here is a stand-in made in a temporary folder: four scripts that print fixed figures in
# the harness's shape, so the checks are about parsing, medians and ratios, never about speed. The
# Tierline sections run at a tiny scale (their figures mean nothing in a debug build).
set -uo pipefail
bench="${1:?usage: bench-peers.sh PATH/TO/tierline-bench}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() {  # check NAME COMMAND...: runs the command, counts the outcome
    local name="$1"; shift
    if "$@"; then passed=$((passed + 1)); echo "PASS: $name"; else failed=$((failed + 1)); echo "FAIL: $name"; fi
}

harness="$work/harness"
mkdir -p "$harness"
echo '# the stand-in harness needs no shared code' > "$harness/common.py"
peer() {  # peer SCRIPT NAME LINES...: a script printing the version and LINES as JSON objects
    local script="$1" name="$2"; shift 2
    {
        echo 'import json, os, sys'
        echo "assert os.environ['SCALE'] == '0.01' and os.path.isdir(os.environ['WORKDIR'])"
        echo "print(json.dumps({'peer': '$name', 'workload': 'meta', 'metric': 'version', 'value': '9.9', 'unit': ''}))"
        for line in "$@"; do
            IFS=: read -r workload metric value unit <<< "$line"
            echo "print(json.dumps({'peer': '$name', 'workload': '$workload', 'metric': '$metric', 'value': $value, 'unit': '$unit'}))"
        done
    } > "$harness/$script"
}
peer bench_sqlite_plain.py sqlite3-plain W1:create_ops_per_s:1000:tickets/s W1:update_ops_per_s:1000:ops/s
peer bench_sqlite_session.py sqlite-session W1:create_ops_per_s:500:tickets/s W1:update_ops_per_s:800:ops/s \
    W2:delta_a2b_bytes_zlib6:4000:bytes W2:apply_ms:5:ms
peer bench_pycrdt.py pycrdt W1:create_ops_per_s:100:tickets/s W1:update_ops_per_s:900:ops/s \
    W2:delta_a2b_bytes_zlib6:3000:bytes W2:apply_ms:4:ms
peer bench_loro.py loro W1:create_ops_per_s:200:tickets/s W1:update_ops_per_s:700:ops/s \
    W2:delta_a2b_bytes_zlib6:3500:bytes W2:apply_ms:8:ms

run() {  # run OUT ARGS...: the bench at a tiny scale; its exit status goes to OUT.rc
    local out="$1"; shift
    "$bench" --only w1,w2 --scale 0.01 --json-only --peers-python "$(command -v python3)" "$@" > "$work/$out.out" 2> "$work/$out.err"
    echo $? > "$work/$out.rc"
}
run ok --runs 2 --peers "$harness"
check "every peer gave its figures: exit 0" test "$(cat "$work/ok.rc")" = 0
check "the comparisons follow the peers' figures" python3 - "$work/ok.out" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def one(peer, workload, metric):
    found = [l for l in lines if (l["peer"], l["workload"], l["metric"]) == (peer, workload, metric)]
    assert len(found) == 1, (peer, workload, metric, found)
    return found[0]
# Two runs, one line each: the peers' figures are their medians, with their version and W1 ratio to plain.
assert one("sqlite-session", "W1", "create_ops_per_s")["value"] == 500
assert one("sqlite-session", "W1", "create_ops_per_s")["note"] == "9.9"
# W1 compares ratios to plain SQLite: Tierline's own ratio over the peer's (0.5 for the session peer).
ours = one("tierline", "W1", "create")["ratio"]
for peer, theirs in [("sqlite-session", 0.5), ("pycrdt", 0.1), ("loro", 0.2), ("sqlite3-plain", 1.0)]:
    value = one("tierline", "W1", "create_vs_" + peer)["value"]
    # The ratio printed has three decimals: within its rounding.
    assert abs(value - ours / theirs) <= 0.0006 / theirs, (peer, value, ours / theirs)
best = one("tierline", "W1", "create_vs_best_peer")
assert best["note"] == "sqlite-session", best
assert one("tierline", "W1", "update_one_transaction_vs_best_peer")["note"] == "pycrdt"
# W2 compares figures as they are; the best delta is the smallest, the best apply the fastest.
delta = one("tierline", "W2", "delta_bytes_zlib6")["value"]
best = one("tierline", "W2", "delta_bytes_zlib6_vs_best_peer")
assert best["note"] == "pycrdt" and abs(best["value"] - delta / 3000) <= 0.002 * best["value"] + 1e-6, best
assert one("tierline", "W2", "apply_ms_vs_best_peer")["note"] == "pycrdt"
# The apply rate is derived from the apply time and W2's update count at this scale (500).
assert abs(one("pycrdt", "W2", "apply_updates_per_s")["value"] - 500 / 0.004) < 1
assert not any("error" in l for l in lines)
EOF

# A peer that fails and one that outlives its time limit: reported, the others compared, exit 3.
printf 'import sys\nprint("loro broke", file=sys.stderr)\nsys.exit(4)\n' > "$harness/bench_loro.py"
printf 'import time\ntime.sleep(60)\n' > "$harness/bench_pycrdt.py"
run failing --peers "$harness" --peers-timeout 20
check "a failing peer: exit 3" test "$(cat "$work/failing.rc")" = 3
check "each failure is a JSON line saying why, and the rest is compared" python3 - "$work/failing.out" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
errors = {l["peer"]: l["error"] for l in lines if "error" in l}
assert set(errors) == {"loro", "pycrdt"}, errors
assert "status 4" in errors["loro"] and "loro broke" in errors["loro"], errors
assert "time limit" in errors["pycrdt"], errors
best = [l for l in lines if l["metric"] == "create_vs_best_peer"]
assert len(best) == 1 and best[0]["note"] == "sqlite-session", best
EOF
check "the failures are said on stderr" grep -q "peers: loro failed" "$work/failing.err"

run absent --peers "$work/no-such-harness"
check "no harness: exit 3" test "$(cat "$work/absent.rc")" = 3
check "no harness: said on stderr, Tierline's figures still printed" \
    bash -c "grep -q 'no peer harness at' '$work/absent.err' && grep -q '\"metric\":\"create\"' '$work/absent.out'"

echo "---- bench-peers: $passed passed, $failed failed"
[ "$failed" = 0 ]
