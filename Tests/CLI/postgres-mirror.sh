#!/usr/bin/env bash
# End-to-end check of `tierline mirror` against a real PostgreSQL (Debian's, a throw-away cluster of
# this run: pg-cluster.sh), with a demo fleet's hub store and a few thousand imported tickets.
#
#   Tests/CLI/postgres-mirror.sh [PATH/TO/tierline]      (default: .build/debug/tierline)
#
#   a. bad URLs exit 2 naming what is wrong; a plain-TCP connection the server refuses exits 1 with
#      PostgreSQL's reason, and writes nothing.
#   b. `mirror --once` over TLS (sslmode=require) as a role that is not a superuser, killed with
#      SIGKILL mid-catch-up, then resumed: every ticket, event, tag, conflict, customer and article
#      of the store is in PostgreSQL, and counts and a checksum over every mirrored table equal those
#      of a fresh mirror into another schema (sslmode=verify-full with the test CA).
#   c. re-running the caught-up mirror changes nothing.
#   d. the live mirror follows new tickets; PostgreSQL restarted mid-stream (pg_ctl restart): the
#      mirror reconnects; a roster change: the mirror starts over; it ends equal to a fresh mirror
#      again, its connections all TLS.
#   e. node.json's mirror section: serve --check refuses a wrong URL (exit 2); serve runs the mirror
#      (password from passwordFile, verify-full TLS), which catches up and follows new tickets, its
#      lag and connection in /metrics; the views' backlog (total, by status) and tickets created equal
#      the node's /api/metrics for the same period, and so does the whole document of the SQL
#      function metrics(…) over the mirrored dashboard facts, with and without filters.
#   f. every panel's SQL of Deploy/grafana-tierline.json runs against the mirror (as a read-only
#      role) and returns rows.
#   g. a role that may create in public (as PostgreSQL 12-14 allow) cannot change what metrics(…)
#      and the views compute, nor run its code as a superuser who calls them.
#   Every wait polls with a bound; the cluster is stopped by its pid and removed even on failure.
set -euo pipefail

source "$(dirname "$0")/lib.sh" "$@"
workspace postgres-mirror
source "$CLI_DIR/pg-cluster.sh"
MIRROR_PID=""
cleanup() {
    if [[ -n $MIRROR_PID ]]; then kill -9 "$MIRROR_PID" 2>/dev/null || true; fi
    pg_cluster_stop
    rm -rf "$W"
}
trap cleanup EXIT

echo "== setup: a demo fleet's hub, 3000 imported tickets, a PostgreSQL cluster with TLS"
set +e
timeout -k 2 600 "$BIN" demo --short --json --dashboard off --dir "$W/demo" >"$W/demo.json" 2>"$W/demo.err"
RC=$?
set -e
check "demo --short --dir keeps the fleet's stores" test "$RC" -eq 0 -a -e "$W/demo/hub/tierline.sqlite"
HUB=$W/demo/hub
make_csv() { # make_csv FILE FIRST COUNT
    python3 - "$@" <<'PY'
import csv, sys
path, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["subject", "priority", "customer", "channel", "tags", "first_message"])
    for i in range(first, first + count):
        w.writerow([f"Printer {i} jams", ["low", "normal", "high", "urgent"][i % 4], f"c{i % 97}@example.com",
                    "email", f"printer;site-{i % 5}", f"Paper jam number {i}, see attached; quotes ' and \" and a tab\there"])
PY
}
make_csv "$W/a.csv" 1 3000
must "import 3000 tickets into the hub" "$HUB" ticket import "$W/a.csv" --quiet --actor demo-manager
if ! pg_cluster_start >"$W/pg.err" 2>&1; then
    fail "start a PostgreSQL cluster" "$(cat "$W/pg.err")"
    finish
fi
pass "a throw-away PostgreSQL cluster on 127.0.0.1:$PG_PORT with ssl=on"
pg_cluster_add_mirror_role "s3cret-mirror" reports tl fresh fresh2 served >/dev/null
export PGPASSWORD=s3cret-mirror
URL="postgres://mirror@127.0.0.1:$PG_PORT/reports"
check "the mirror's role is not a superuser" test "$(pg_admin reports "SELECT rolsuper FROM pg_roles WHERE rolname = 'mirror'")" = f

# mirror SCHEMA URL-QUERY ARGS...: tierline mirror --once, bounded by 300 s; output in $W/out, $W/err.
mirror_once() {
    local schema=$1 query=$2
    shift 2
    set +e
    timeout -k 2 300 "$BIN" mirror --store "$HUB" --postgres "$URL?$query" --schema "$schema" --once "$@" >"$W/out" 2>"$W/err"
    RC=$?
    set -e
    LAST="tierline mirror --schema $schema ?$query $*"
}

# checksum SCHEMA: per mirrored table, its row count and the md5 of its rows in order.
checksum() {
    local s=$1 t out=""
    for t in ticket ticket_element ticket_event ticket_conflict customer article fact_ticket fact_clock fact_handoff; do
        out+="$t $(pg_admin reports "SELECT count(*) || ' ' || COALESCE(md5(string_agg(x::text, '|' ORDER BY x::text)), '-') FROM $s.$t x")"$'\n'
    done
    out+="cursor $(pg_admin reports "SELECT string_agg(origin || ':' || seq, ',' ORDER BY origin) FROM $s.cursor")"
    printf '%s\n' "$out"
}
# store_counts: the same tables' row counts read from the store's SQLite file, read-only.
store_counts() {
    python3 - "$HUB/tierline.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for pg, lite in [("ticket", "ticket"), ("ticket_element", "ticketElement"), ("ticket_event", "ticketEvent"),
                 ("ticket_conflict", "ticketConflict"), ("customer", "customer"), ("article", "article"),
                 ("fact_ticket", "metricTicket"), ("fact_clock", "metricClock"), ("fact_handoff", "metricHandoff")]:
    print(pg, db.execute(f"SELECT count(*) FROM {lite}").fetchone()[0])
print("cursor", ",".join(f"{s}:{q}" for s, q in db.execute("SELECT site, seq FROM versionEntry ORDER BY site")))
PY
}
# stop_mirror: SIGTERM to the background mirror (or serve), waiting at most 30 s; its exit code in RC.
stop_mirror() {
    kill -TERM "$MIRROR_PID"
    set +e
    wait_exit "$MIRROR_PID" 300
    kill -9 "$MIRROR_PID" 2>/dev/null
    wait "$MIRROR_PID"
    RC=$?
    set -e
    MIRROR_PID=""
}
# facts_caught_up SCHEMA: no ticket waits for its facts in the store, and the schema's fact cursor
# is the store's newest feed number.
facts_caught_up() {
    local head
    head=$(python3 -c "import sqlite3; db = sqlite3.connect('file:$HUB/tierline.sqlite?mode=ro', uri=True); print(db.execute('SELECT COALESCE(max(seq), 0) FROM metricFeed').fetchone()[0] if db.execute('SELECT count(*) FROM metricDirty').fetchone()[0] == 0 else -1)" 2>/dev/null || echo -1)
    [[ $head != -1 && $(pg_admin reports "SELECT seq FROM $1.fact_cursor" 2>/dev/null) == "$head" ]]
}
wait_facts() { for _ in $(seq 1 1200); do facts_caught_up "$1" && return 0; sleep 0.1; done; return 1; }
counts_of() { awk '{ if ($1 == "cursor") print $0; else print $1, $2 }' <<<"$1"; }
cursor_total() { pg_admin reports "SELECT COALESCE(sum(seq), 0) FROM $1.cursor" 2>/dev/null || echo 0; }
store_total() { python3 -c "import sqlite3,sys; print(sqlite3.connect('file:$HUB/tierline.sqlite?mode=ro', uri=True).execute('SELECT sum(seq) FROM versionEntry').fetchone()[0])"; }

echo "== a. refusals"
mirror_once tl "sslmode=sometimes"
check "an unknown sslmode exits 2 naming the values" grep -q "sslmode 'sometimes' is not one of" "$W/err"
check "... with exit code 2" test "$RC" -eq 2
mirror_once tl "sslmode=verify-full"
check "verify-full without sslrootcert exits 2 saying what it needs" grep -q "needs sslrootcert=FILE" "$W/err"
set +e
timeout 60 "$BIN" mirror --store "$HUB" --postgres "mysql://x@y/z" --once >"$W/out" 2>"$W/err"
RC=$?
set -e
check "a URL that is not postgres:// exits 2" test "$RC" -eq 2
mirror_once tl "sslmode=disable"
check "plain TCP, which the server refuses for this role, exits 1 with PostgreSQL's reason" \
    bash -c "test $RC -eq 1 && grep -q 'no encryption' '$W/err'"
check "... and the password is never printed" bash -c "! grep -q s3cret '$W/err' '$W/out'"
check "... and nothing was written" test "$(pg_admin reports "SELECT count(*) FROM pg_tables WHERE schemaname = 'tl'")" = 0

echo "== b. kill -9 mid-catch-up, resume, compare with a fresh mirror"
TOTAL=$(store_total)
"$BIN" mirror --store "$HUB" --postgres "$URL?sslmode=require" --schema tl --once --batch-blocks 1 >"$W/killed.out" 2>"$W/killed.err" &
MIRROR_PID=$!
for _ in $(seq 1 600); do
    done_so_far=$(cursor_total tl)
    if ((done_so_far > 0)) || ! kill -0 "$MIRROR_PID" 2>/dev/null; then break; fi
    sleep 0.05
done
kill -9 "$MIRROR_PID" 2>/dev/null || true
wait "$MIRROR_PID" 2>/dev/null || true
MIRROR_PID=""
PARTIAL=$(cursor_total tl)
check "the mirror was killed mid-catch-up (cursor $PARTIAL of $TOTAL blocks)" test "$PARTIAL" -gt 0 -a "$PARTIAL" -lt "$TOTAL"
mirror_once tl "sslmode=require" --json
check "the resumed mirror exits 0, caught up" py "$W/out" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
assert o["caughtUp"] is True and o["behindBlocks"] == 0, o
assert o["blocks"] > 0, o
PY
A=$(checksum tl)
check "every ticket, event, tag, conflict, customer, article and dashboard fact of the store is mirrored" \
    test "$(counts_of "$A")" = "$(store_counts)"
KINDS=$(python3 -c "import sqlite3; print(','.join(r[0] for r in sqlite3.connect('file:$HUB/tierline.sqlite?mode=ro', uri=True).execute('SELECT DISTINCT kind FROM ticketEvent ORDER BY kind')))")
check "every kind of event of the store is mirrored ($KINDS)" test "$(pg_admin reports "SELECT string_agg(DISTINCT kind, ',' ORDER BY kind) FROM tl.ticket_event")" = "$KINDS"
check "... among them messages, notes and escalation records" bash -c "[[ ,$KINDS, == *,customer_message,* && ,$KINDS, == *,escalation,* && ,$KINDS, == *,internal_note,* ]]"
check "the ticket ids are the store's" test \
    "$(pg_admin reports "SELECT md5(string_agg(id, ',' ORDER BY id)) FROM tl.ticket")" = \
    "$(python3 -c "import sqlite3,hashlib; print(hashlib.md5(','.join(r[0] for r in sqlite3.connect('file:$HUB/tierline.sqlite?mode=ro', uri=True).execute('SELECT id FROM ticket ORDER BY id')).encode()).hexdigest())")"
mirror_once fresh "sslmode=verify-full&sslrootcert=$PG_CA" --batch-blocks 5000
check "a fresh mirror over verify-full TLS exits 0" test "$RC" -eq 0
B=$(checksum fresh)
check "killed-and-resumed and fresh mirrors: equal counts and checksums" test "$A" = "$B"
check "the sites and their sync health are mirrored" test "$(pg_admin reports "SELECT count(*) FROM tl.site WHERE site IN ('hub', 'north', 'south')")" = 3

echo "== c. idempotent"
mirror_once tl "sslmode=require" --json
check "a caught-up mirror run again mirrors no block" py "$W/out" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
assert o["blocks"] == 0 and o["batches"] == 0, o
PY
check "... and the rows are unchanged" test "$(checksum tl)" = "$A"

echo "== d. live: new tickets follow; PostgreSQL restarted mid-stream"
"$BIN" mirror --store "$HUB" --postgres "$URL?sslmode=require" --schema tl --batch-blocks 2 >"$W/live.out" 2>"$W/live.err" &
MIRROR_PID=$!
make_csv "$W/b.csv" 5001 1500
make_csv "$W/c.csv" 7001 1500
must "import 1500 more tickets while the mirror runs" "$HUB" ticket import "$W/b.csv" --quiet --actor demo-manager
check "the mirror's connection is TLS" bash -c "for i in \$(seq 1 100); do
    r=\$(\"$PG_BIN/psql\" -X -At -h '$PG_DIR/data' -p $PG_PORT -U postgres -d reports -c \"SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'tierline-mirror' AND a.usename = 'mirror'\")
    [[ \$r == t ]] && exit 0; sleep 0.1; done; exit 1"
pg_cluster_down
pg_cluster_up
pass "PostgreSQL restarted while the mirror streams"
must "import 1500 more tickets after the restart" "$HUB" ticket import "$W/c.csv" --quiet --actor demo-manager
TOTAL=$(store_total)
for _ in $(seq 1 1200); do
    if [[ $(cursor_total tl) == "$TOTAL" ]] || ! kill -0 "$MIRROR_PID" 2>/dev/null; then break; fi
    sleep 0.1
done
check "the live mirror reconnected and caught up with the store ($TOTAL blocks)" test "$(cursor_total tl)" = "$TOTAL"
check "... and said it was retrying" grep -q "retrying" "$W/live.err"
# A roster change may fold tickets again without a new block: the mirror starts over, and ends equal.
must "a new site's store" "$W/east" init --site east --role site
must "the hub adds east to its roster (a new roster version)" "$HUB" roster add east --key "$(status_field "$W/east" publicKey)" --role site
ROSTER=$(python3 -c "import sqlite3; print(sqlite3.connect('file:$HUB/tierline.sqlite?mode=ro', uri=True).execute('SELECT version FROM roster').fetchone()[0])")
TOTAL=$(store_total)
for _ in $(seq 1 1200); do
    if [[ $(pg_admin reports "SELECT roster_version FROM tl.source") == "$ROSTER" && $(cursor_total tl) == "$TOTAL" ]] && facts_caught_up tl; then break; fi
    if ! kill -0 "$MIRROR_PID" 2>/dev/null; then break; fi
    sleep 0.1
done
check "after the roster change the mirror started over and caught up again (roster $ROSTER)" \
    test "$(pg_admin reports "SELECT roster_version || ':' || (SELECT sum(seq) FROM tl.cursor) FROM tl.source")" = "$ROSTER:$TOTAL"
stop_mirror
check "SIGTERM stops the live mirror with exit 0" test "$RC" -eq 0
check "... printing the run's summary" grep -q "^mirrored into postgres://mirror@127.0.0.1" "$W/live.out"
mirror_once fresh2 "sslmode=require" --batch-blocks 5000
C=$(checksum tl)
check "after the restart: the live mirror equals a fresh mirror" test "$C" = "$(checksum fresh2)"
check "... and holds every row of the store" test "$(counts_of "$C")" = "$(store_counts)"

echo "== e. serve runs the mirror of node.json's mirror section"
printf '%s\n' "$PGPASSWORD" >"$W/pg-password"
HTTP_PORT=$(pg_free_port)
cat >"$W/bad.json" <<JSON
{"http": "127.0.0.1:$HTTP_PORT", "mirror": {"postgres": "mysql://mirror@127.0.0.1/reports"}}
JSON
set +e
env -u PGPASSWORD timeout 60 "$BIN" serve --store "$HUB" --config "$W/bad.json" --check >"$W/out" 2>"$W/err"
RC=$?
set -e
check "serve --check refuses a mirror URL that is not postgres:// (exit 2)" bash -c "test $RC -eq 2 && grep -q 'mirror.postgres' '$W/err'"
# passwordFile wins over the URL's (wrong) password. No escalation ticker: its SLA records would change the store between a wait and a comparison.
cat >"$W/node.json" <<JSON
{"http": "127.0.0.1:$HTTP_PORT", "escalationMillis": 0,
 "mirror": {"postgres": "postgres://mirror:not-this-one@localhost:$PG_PORT/reports?sslmode=verify-full&sslrootcert=$PG_CA", "schema": "served", "passwordFile": "pg-password"}}
JSON
env -u PGPASSWORD "$BIN" serve --store "$HUB" --config "$W/node.json" >"$W/serve.out" 2>"$W/serve.err" &
MIRROR_PID=$!
# served_caught_up: /metrics says the mirror is connected and 0 blocks behind, and its cursor covers the store.
served_caught_up() {
    python3 - "$HTTP_PORT" <<'PY' && [[ $(cursor_total served) == "$(store_total)" ]]
import sys, urllib.request
try:
    text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
except Exception:
    sys.exit(1)
values = {l.split()[0]: float(l.split()[1]) for l in text.splitlines() if l.startswith("tierline_mirror_")}
sys.exit(0 if values.get("tierline_mirror_connected") == 1 and values.get("tierline_mirror_behind_blocks") == 0 else 1)
PY
}
wait_served() { for _ in $(seq 1 1200); do served_caught_up && return 0; kill -0 "$MIRROR_PID" 2>/dev/null || return 1; sleep 0.1; done; return 1; }
check "serve's mirror caught up: /metrics shows it connected and 0 blocks behind" wait_served
make_csv "$W/d.csv" 9001 500
must "import 500 more tickets while serve runs" "$HUB" ticket import "$W/d.csv" --quiet --actor demo-manager
check "serve's mirror follows them" wait_served
check "... and their dashboard facts" wait_facts served
check "... and its rows equal the store's" test "$(counts_of "$(checksum served)")" = "$(store_counts)"
status_mirror() { "$BIN" status --json --store "$HUB" | python3 -c 'import json,sys; m = json.load(sys.stdin)["mirror"]; sys.exit(0 if m and m["running"] and m["connected"] and m["behindBlocks"] == 0 and "localhost" in m["target"] else 1)'; }
wait_status_mirror() { for _ in $(seq 1 100); do status_mirror && return 0; sleep 0.1; done; return 1; }
check "tierline status --json shows the node's mirror running, connected and 0 blocks behind" wait_status_mirror
check "... and its table says so" bash -c "'$BIN' status --store '$HUB' | grep -q 'PostgreSQL mirror postgres://mirror@localhost.*: 0 blocks behind'"
# The views' figures against the dashboard's /api/metrics of the same node, signed in with an API token.
TOKEN=$("$BIN" agent token demo-manager --label mirror-test --json --store "$HUB" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
pg_admin reports "SELECT json_build_object('total', COALESCE((SELECT sum(tickets) FROM served.backlog), 0),
    'byStatus', COALESCE((SELECT json_object_agg(status, n) FROM (SELECT status, sum(tickets) AS n FROM served.backlog GROUP BY status) b), '{}'),
    'created', (SELECT count(*) FROM served.ticket_report WHERE created_at >= now() - interval '30 days'))" >"$W/views.json"
check "the views' backlog (total, by status) and tickets created equal /api/metrics for the last 30 days" python3 - "$HTTP_PORT" "$TOKEN" "$W/views.json" <<'PY'
import json, sys, time, urllib.request
port, token, views = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
for _ in range(600):  # the dashboard derives its facts in the background: wait until none is pending
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/metrics?days=30", headers={"Authorization": f"Bearer {token}"})
    reply = json.load(urllib.request.urlopen(request, timeout=10))
    if reply["pendingFacts"] == 0:
        break
    time.sleep(0.2)
m = reply["metrics"]
api = {"total": m["backlog"]["total"], "byStatus": {k: v for k, v in m["backlog"]["byStatus"].items() if v}, "created": m["created"]}
assert api == views, ("api", api, "views", views)
PY
check "serve's mirror copies the dashboard's facts as the dashboard derives them" wait_facts served
# The whole /api/metrics document against served.metrics(…), for periods that ended 2 s before
# the requests (so no figure of the period depends on the API's exact `now`) and several filters.
# The figures of "now" (backlog and its ages, at risk and breached now, open past 30 days) are
# compared with SQL run at a second before and after the API's generatedAt, which has whole seconds.
check "served.metrics(…) equals /api/metrics: no filter, and filtered by site, priority, channel and tier" python3 - "$HTTP_PORT" "$TOKEN" "$PG_BIN/psql" "$PG_DIR/data" "$PG_PORT" <<'PY'
import datetime, json, subprocess, sys, time, urllib.parse, urllib.request
port, token, psql, host, pgport = sys.argv[1:6]
NOW = ("backlog.", "sla.atRiskNow", "sla.breachedNow", "quality.resolutionGoal30d.openOver30d", "quality.resolutionGoal30d.final")
def iso(t): return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
def api(query):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/metrics?{urllib.parse.urlencode(query)}", headers={"Authorization": f"Bearer {token}"})
    return json.load(urllib.request.urlopen(request, timeout=30))
def sql(reply, query, shift_ms):
    m = reply["metrics"]
    now = datetime.datetime.strptime(reply["generatedAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=shift_ms)
    args = [f"'{m['from']}'::timestamptz", f"'{m['to']}'::timestamptz", f"'{now.isoformat()}'::timestamptz"]
    names = {"site": "p_site", "priority": "p_priority", "channel": "p_channel", "tier": "p_tier"}
    for key, value in query.items():
        if key in names:
            args.append(f"{names[key]} => " + (str(int(value)) if key == "tier" else "'" + value.replace("'", "''") + "'"))
    out = subprocess.run([psql, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", pgport, "-U", "postgres", "-d", "reports",
                          "-c", f"SELECT served.metrics({', '.join(args)})"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
def same(a, at, before, after, path):
    if isinstance(a, dict):
        for k in set(a) | set(at or {}) | set(before or {}) | set(after or {}):
            assert k in a, ("missing in the API", path + k)
            same(a[k], (at or {}).get(k), (before or {}).get(k), (after or {}).get(k), path + k + ".")
        return
    if not path.startswith(NOW):
        if isinstance(a, float) or isinstance(at, float):
            assert at is not None and abs(a - at) <= 1e-12 * max(1, abs(a)), (path, a, at)
        else:
            assert a == at, (path, a, at)
        return
    if isinstance(a, (bool, str)) or a is None:
        assert a in (before, after), (path, a, before, after)
    else:
        assert before is not None and after is not None and min(before, after) <= a <= max(before, after), (path, a, before, after)
end = int(time.time()) - 2
periods = {"30 days": iso(end - 30 * 86400), "ten years": iso(end - 3650 * 86400)}
queries = [({}, "30 days"), ({}, "ten years"), ({"site": "north"}, "30 days"), ({"priority": "high"}, "30 days"),
           ({"channel": "email"}, "ten years"), ({"tier": "0"}, "30 days"), ({"tier": "1"}, "ten years")]
for filters, period in queries:
    query = dict(filters, **{"from": periods[period], "to": iso(end)})
    reply = api(query)
    assert reply["pendingFacts"] == 0, reply["pendingFacts"]
    same(reply["metrics"], sql(reply, query, 0), sql(reply, query, -1000), sql(reply, query, 1000), "")
m = api({"from": periods["30 days"], "to": iso(end)})["metrics"]
# The demo fleet exercises the figures compared: SLA runs, first responses, escalations.
assert m["created"] > 0 and m["sla"]["overall"]["achieved"] + m["sla"]["overall"]["breached"] > 0, m["sla"]
assert m["speed"]["firstResponse"]["calendar"]["count"] > 0 and m["escalation"]["rate"]["part"] > 0, m
print(f"{len(queries)} documents equal")
PY
# Days are UTC days, as the dashboard's: the session's TimeZone changes neither the buckets nor their counts.
days_in() { pg_admin reports "SET TIME ZONE '$1'; SELECT string_agg(to_char(day AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' ' || site || ' ' || created, ',' ORDER BY day, site) FROM served.created_per_day"; }
check "created_per_day buckets by UTC day whatever the session's TimeZone (UTC vs Pacific/Kiritimati)" \
    bash -c '[[ -n $1 && $1 == "$2" && $1 != *" "0[1-9]:* && $1 != *" "[1-2][0-9]:* ]]' _ "$(days_in UTC)" "$(days_in Pacific/Kiritimati)"
stop_mirror
check "SIGTERM stops serve and its mirror with exit 0" test "$RC" -eq 0

echo "== f. the example Grafana dashboard's panels"
pg_admin reports "CREATE ROLE reader LOGIN PASSWORD 'r3ader'; GRANT CONNECT ON DATABASE reports TO reader; GRANT USAGE ON SCHEMA tl TO reader; GRANT SELECT ON ALL TABLES IN SCHEMA tl TO reader" >/dev/null
check "every panel's SQL returns rows" python3 - "$CLI_DIR/../../Deploy/grafana-tierline.json" "$PG_BIN/psql" "host=127.0.0.1 port=$PG_PORT user=reader password=r3ader dbname=reports sslmode=require" <<'PY'
import json, re, subprocess, sys
dashboard, psql, conninfo = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
count = 0
for panel in dashboard["panels"]:
    for target in panel["targets"]:
        sql = target["rawSql"].replace("${schema}", "tl")
        # Grafana's time macro, for a window that holds the test's tickets.
        sql = re.sub(r"\$__timeFilter\(([^)]+)\)", r"\1 BETWEEN now() - interval '400 days' AND now() + interval '1 day'", sql)
        sql = sql.replace("$__timeFrom()", "(now() - interval '400 days')").replace("$__timeTo()", "(now() + interval '1 day')")
        assert "$" not in sql, ("an unexpanded macro", panel["title"], sql)
        out = subprocess.run([psql, "-X", "-At", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (panel["title"], out.stderr)
        rows = [line for line in out.stdout.splitlines() if line.strip()]
        assert rows and rows[0].strip("|"), ("no rows", panel["title"], out.stdout)
        count += 1
assert count == len(dashboard["panels"]) >= 10, count
print(f"{count} panels returned rows")
PY

echo "== g. a reader who may create in public cannot change the figures, nor run code as their caller"
# As PostgreSQL 12-14 leave it: every role may create in public. The reader adds closer matches for
# built-ins the functions and views use (an aggregate taking text and bigint, to_timestamp(numeric)).
pg_admin reports "GRANT CREATE ON SCHEMA public TO PUBLIC; CREATE ROLE hijacker LOGIN; GRANT USAGE ON SCHEMA tl TO hijacker" >/dev/null
honest=$(pg_admin reports "SELECT tl.metrics(now() - interval '400 days', now() + interval '1 day') -> 'backlog' -> 'byStatus'")
times=$(pg_admin reports "SELECT min(created_at) || ' ' || min(first_response_at) || ' ' || (SELECT min(created_at) FROM tl.ticket_report) || ' ' || (SELECT min(at) FROM tl.event_report) FROM tl.ticket_facts")
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR/data" -p "$PG_PORT" -U hijacker -d reports >/dev/null <<'SQL'
CREATE FUNCTION public.hijack(state jsonb, k text, v bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN EXECUTE 'ALTER ROLE hijacker SUPERUSER'; END IF;
  RETURN COALESCE(state, '{}'::jsonb) || jsonb_build_object(k, v + 1000);
END $$;
CREATE AGGREGATE public.jsonb_object_agg(text, bigint) (sfunc = public.hijack, stype = jsonb);
CREATE FUNCTION public.to_timestamp(numeric) RETURNS timestamptz LANGUAGE sql AS $$ SELECT '1999-01-01'::timestamptz $$;
SQL
check "metrics() called by a superuser ignores the reader's public.jsonb_object_agg(text, bigint)" \
    test "$(pg_admin reports "SELECT tl.metrics(now() - interval '400 days', now() + interval '1 day') -> 'backlog' -> 'byStatus'")" = "$honest"
check "... and did not run the reader's code as the superuser" test "$(pg_admin reports "SELECT rolsuper FROM pg_roles WHERE rolname = 'hijacker'")" = f
check "the views' times ignore the reader's public.to_timestamp(numeric)" \
    test "$(pg_admin reports "SELECT min(created_at) || ' ' || min(first_response_at) || ' ' || (SELECT min(created_at) FROM tl.ticket_report) || ' ' || (SELECT min(at) FROM tl.event_report) FROM tl.ticket_facts")" = "$times"
check "... nor does hlc_time(…)" test "$(pg_admin reports "SELECT tl.hlc_time(1 << 16) = '1970-01-01T00:00:00.001Z'::timestamptz")" = t

finish
