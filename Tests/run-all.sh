#!/usr/bin/env bash
# The test command of README.md: unit, property, codec, store and node tests, then the CLI
# end-to-end scripts (files, nodes over 127.0.0.1, raw wire errors, crash writes, a sync killed mid-apply,
# a node flooded with garbage while it serves a peer, 200 strangers that never authenticate while
# members sync, a copied laptop store found out and stopped, a session's bytes on the wire, a resumed TLS session, the dashboard in headless
# Chromium (signed in through /login), whose screenshot lands in Tests/artifacts/dashboard.png, the node's
# HTTP server under 1,000 held connections and a slowloris, the intake API over HTTP and
# against its OpenAPI file with schemathesis, the workspace's ticket actions against theirs, the outbox sent to a real SMTP server and webhook
# receivers, through a kill -9) and the CLI contract check (when the shared checks
# are present next to the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests
swift test --skip-build --parallel
# The benchmark, a package of its own (Benchmarks/) that the build above does not compile, at a tiny
# size: its figures mean nothing in a debug build, but every section checks its own result (counts,
# convergence) and exits non-zero if one is wrong. A flag it does not know is a usage error (exit 2).
# Without --disable-build-manifest-caching SwiftPM keeps its plan of the root package's files as a
# dependency, so a file added to or removed from Sources/ since the last build is missed.
swift build --package-path Benchmarks --disable-build-manifest-caching
bench=Benchmarks/.build/debug/tierline-bench
"$bench" --help > /dev/null
status=0
"$bench" --no-such-flag > /dev/null 2>&1 || status=$?
[ "$status" = 2 ] || { echo "tierline-bench --no-such-flag exited $status, not 2" >&2; exit 1; }
"$bench" --only w1,w2,sync,rss --scale 0.01 --changes 2000 --rss-changes 20000 --json-only > /dev/null
# The dashboard section (a flag of its own, not in --only): its hub must admit the sites whose blocks
# it applies, derive every ticket's facts and have the summary add up (a few seconds at 2,000 tickets).
"$bench" --dashboard --sizes 2000 --json-only > /dev/null
# The intake section (concurrent clients over 127.0.0.1; it checks every ticket was stored), and the
# peers read, compared and reported when they fail, through a stand-in harness of fixed figures.
"$bench" --only intake --intake-clients 4 --intake-requests 5 --json-only > /dev/null
Tests/CLI/bench-peers.sh "$bench"
bin=.build/debug/tierline
Tests/CLI/two-stores.sh "$bin"
Tests/CLI/sync-nodes.sh "$bin"
Tests/CLI/operator-messages.sh "$bin"
Tests/CLI/backup-restore.sh "$bin"
Tests/CLI/demo.sh "$bin"
Tests/CLI/escalation.sh "$bin"
Tests/CLI/agents.sh "$bin"
Tests/CLI/notify.sh "$bin"
Tests/CLI/notices.sh "$bin"
Tests/CLI/postgres-mirror.sh "$bin"
Tests/CLI/mirror-hostile-pg.sh "$bin"
Tests/CLI/mirror-lag-outage.sh "$bin"
Tests/CLI/mirror-harden.sh "$bin"
python3 Tests/CLI/wire-errors.py "$bin"
python3 Tests/CLI/crash-writes.py "$bin" 40
python3 Tests/CLI/crash-sync.py "$bin" 25
python3 Tests/CLI/garbage-peer.py "$bin"
python3 Tests/CLI/stranger-flood.py "$bin"
python3 Tests/CLI/copied-store.py "$bin"
python3 Tests/CLI/damaged-store.py "$bin"
python3 Tests/CLI/wire-capture.py "$bin"
python3 Tests/CLI/tls-resumption.py "$bin"
python3 Tests/CLI/json-keys.py "$bin"
python3 Tests/CLI/ticket-list.py "$bin"
python3 Tests/CLI/bulk-import.py "$bin"
python3 Tests/CLI/public-api.py
python3 Tests/CLI/target-deps.py
python3 Tests/CLI/dashboard-browser.py "$bin"
python3 Tests/CLI/workspace-browser.py "$bin"
python3 Tests/CLI/intake-api.py "$bin"
python3 Tests/CLI/http-hardening.py "$bin"
Tests/CLI/intake-schemathesis.sh "$bin"
Tests/CLI/workspace-schemathesis.sh "$bin"
Tests/CLI/deploy-check.sh "$bin"
python3 Tests/Multihost/netns.py "$bin" .build/debug/tierline-faultproxy
contract=../shared/checks/cli_contract.py
if [ -f "$contract" ]; then
  python3 "$contract" "$bin"
else
  echo "note: $contract not found; CLI contract check skipped"
fi
