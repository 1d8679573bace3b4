#!/usr/bin/env bash
# The PostgreSQL mirror at a large store: catch-up rate (blocks and the dashboard's facts) and the
# query time of the reporting views and of metrics(…) over the mirrored facts.
#
#   Benchmarks/mirror-1m.sh [PATH/TO/tierline] [TICKETS]      (defaults: .build/release/tierline, 1000000)
#
# Imports TICKETS generated tickets (`tierline ticket import`), mirrors them with `tierline mirror
# --once` over TLS into a throw-away PostgreSQL cluster (Tests/CLI/pg-cluster.sh; fsync off), then
# times each view and metrics(…) three times through psql. Prints figures; asserts nothing.
set -euo pipefail
BIN=$(realpath "${1:-.build/release/tierline}")
TICKETS=${2:-1000000}
CLI_DIR=$(cd "$(dirname "$0")/../Tests/CLI" && pwd)
source "$CLI_DIR/pg-cluster.sh"
W=$(mktemp -d /tmp/tierline-mirror-1m.XXXXXX)
trap 'pg_cluster_stop >/dev/null 2>&1 || true; rm -rf "$W"' EXIT

python3 - "$W/t.csv" "$TICKETS" <<'PY'
import csv, sys
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["subject", "priority", "customer", "channel", "tags", "first_message"])
    for i in range(int(sys.argv[2])):
        w.writerow([f"Printer {i} jams", ["low", "normal", "high", "urgent"][i % 4], f"c{i % 997}@example.com",
                    ["email", "chat", "phone"][i % 3], f"printer;site-{i % 5}", f"Paper jam number {i}"])
PY
"$BIN" init --store "$W/hq" --site hq >/dev/null
echo "== import $TICKETS tickets"
/usr/bin/time -f "import: %e s, %M KiB peak" "$BIN" ticket import "$W/t.csv" --store "$W/hq" --quiet --actor bench >/dev/null
pg_cluster_start >"$W/pg.err" 2>&1 || { cat "$W/pg.err" >&2; exit 1; }
pg_cluster_add_mirror_role pw reports tl >/dev/null
echo "== mirror --once (blocks, then the dashboard's facts: derived, then copied)"
PGPASSWORD=pw /usr/bin/time -f "mirror: %e s, %M KiB peak, %U s user" "$BIN" mirror --store "$W/hq" --quiet --json --once \
    --postgres "postgres://mirror@127.0.0.1:$PG_PORT/reports?sslmode=require" --schema tl
pg_admin reports "ANALYZE" >/dev/null
for sql in "SELECT count(*) FROM tl.fact_ticket" \
           "SELECT sum(tickets) FROM tl.backlog" \
           "SELECT count(*) FROM tl.created_per_day" \
           "SELECT tl.metrics(now() - interval '30 days', now()) IS NOT NULL" \
           "SELECT tl.metrics(now() - interval '30 days', now(), p_priority => 'high') IS NOT NULL" \
           "SELECT tl.metrics(now() - interval '3650 days', now()) IS NOT NULL"; do
    for run in 1 2 3; do
        "$PG_BIN/psql" -X -At -h "$PG_DIR/data" -p "$PG_PORT" -U postgres -d reports -c '\timing on' -c "$sql" | grep '^Time' |
            sed "s|^|$sql  (run $run): |"
    done
done
