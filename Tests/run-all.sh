#!/usr/bin/env bash
# The test command of README.md: unit and property tests, then the CLI end-to-end checks.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build --parallel
