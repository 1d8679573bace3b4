#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for SECONDS_PER_TARGET seconds (default 600), one
# after the other on one core. See Fuzz/README.md.
#
#   Fuzz/run.sh [SECONDS_PER_TARGET]
#
# FUZZ_TARGETS   targets to run (default: FuzzFrame FuzzChangeSet FuzzColumnar FuzzBlock)
# FUZZ_WORK      where seeds, corpora, crash artifacts and logs go (default: Fuzz/work, gitignored)
# FUZZ_SANITIZE  sanitizers to build with (default: fuzzer,address)
# FUZZ_ARGS      extra libFuzzer flags, e.g. "-seed=1 -detect_leaks=0"
set -euo pipefail

seconds=${1:-600}
# Leave crashes to libFuzzer's handler, which writes the input to the artifacts folder. Swift's
# own backtracer would take the signal first, and under AddressSanitizer it can hang.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
here=$(cd "$(dirname "$0")" && pwd)
work=${FUZZ_WORK:-$here/work}
read -r -a targets <<< "${FUZZ_TARGETS:-FuzzFrame FuzzChangeSet FuzzColumnar FuzzBlock}"
read -r -a extra <<< "${FUZZ_ARGS:-}"
build=(swift build -c release --package-path "$here" --scratch-path "$here/.build"
       -Xswiftc "-sanitize=${FUZZ_SANITIZE:-fuzzer,address}" -Xswiftc -parse-as-library)

"${build[@]}"
bin=$("${build[@]}" --show-bin-path)

rm -rf "$work/seeds"
python3 "$here/seeds.py" "$work/seeds"
mkdir -p "$work/logs"

# Largest input each target generates. A frame or a change set of 16 KiB can already inflate to
# megabytes; a block of 8 KiB reaches every field.
max_len() {
    case $1 in
        FuzzBlock) echo 8192 ;;
        *) echo 16384 ;;
    esac
}

summary=()
status=0
for target in "${targets[@]}"; do
    corpus=$work/corpus/$target
    artifacts=$work/artifacts/$target
    log=$work/logs/$target.log
    mkdir -p "$corpus" "$artifacts"
    dict=()
    [[ -f $here/dict/$target.dict ]] && dict=(-dict="$here/dict/$target.dict")
    echo "== $target: $seconds s, corpus $corpus, crashes to $artifacts/"
    started=$(date +%s)
    set +e
    "$bin/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len="$(max_len "$target")" \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "${extra[@]}" \
        "$corpus" "$work/seeds/$target" 2>&1 | tee "$log"
    code=${PIPESTATUS[0]}
    set -e
    elapsed=$(( $(date +%s) - started ))
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    crashes=$(find "$artifacts" -type f | wc -l)
    [[ $code -eq 0 ]] || status=1
    summary+=("$(printf '%-14s exit %-3s %6s s  %12s executions  %6s corpus files  %3s crash artifacts' \
        "$target" "$code" "$elapsed" "${executions:-?}" "$(find "$corpus" -type f | wc -l)" "$crashes")")
done

echo
echo "== summary (logs in $work/logs)"
printf '%s\n' "${summary[@]}"
exit $status
