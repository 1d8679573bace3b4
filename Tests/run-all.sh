#!/usr/bin/env bash
# The test command of README.md: unit, property and store tests, then the CLI end-to-end script and
# the CLI contract check (when the shared checks are present next to the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build --parallel
bin=.build/debug/tierline
Tests/CLI/two-stores.sh "$bin"
python3 Tests/CLI/crash-writes.py "$bin" 40
contract=../shared/checks/cli_contract.py
if [ -f "$contract" ]; then
  python3 "$contract" "$bin"
else
  echo "note: $contract not found; CLI contract check skipped"
fi
