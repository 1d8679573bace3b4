#!/usr/bin/env bash
# How far behind the PostgreSQL mirror runs while the intake API takes tickets as fast as it can.
#
#   Benchmarks/mirror-lag.sh [PATH/TO/tierline] [SECONDS] [CLIENTS]
#       (defaults: .build/release/tierline, 60 s, 16 clients)
#
# A node (`serve`) with the intake API and a `mirror` section, over TLS into a throw-away PostgreSQL
# cluster (Tests/CLI/pg-cluster.sh). CLIENTS processes post new tickets over kept-alive connections
# for SECONDS; meanwhile a probe posts one ticket a second and times how long after its 201 the
# ticket's row is in PostgreSQL (polled every 20 ms), and /metrics is sampled every second
# (tierline_mirror_behind_blocks, _seconds, _facts). Prints the intake rate and the lag's
# distribution. Figures, not assertions: run it on a quiet machine, with a release build.
set -euo pipefail
BIN=$(realpath "${1:-.build/release/tierline}")
SECONDS_RUN=${2:-60}
CLIENTS=${3:-16}
CLI_DIR=$(cd "$(dirname "$0")/../Tests/CLI" && pwd)
source "$CLI_DIR/pg-cluster.sh"
W=$(mktemp -d /tmp/tierline-mirror-lag.XXXXXX)
SERVE_PID=""
cleanup() {
    if [[ -n $SERVE_PID ]]; then kill -TERM "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; fi
    pg_cluster_stop >/dev/null 2>&1 || true
    rm -rf "$W"
}
trap cleanup EXIT

"$BIN" init --store "$W/hq" --site hq >/dev/null
TOKEN=$("$BIN" intake token add loadgen --channel email --json --store "$W/hq" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
pg_cluster_start >"$W/pg.err" 2>&1 || { cat "$W/pg.err" >&2; exit 1; }
pg_cluster_add_mirror_role pw reports tl >/dev/null
echo pw >"$W/pgpw"
HTTP=$(pg_free_port)
cat >"$W/node.json" <<JSON
{"store": "$W/hq", "listen": "127.0.0.1:0", "http": "127.0.0.1:$HTTP", "escalationMillis": 0,
 "mirror": {"postgres": "postgres://mirror@127.0.0.1:$PG_PORT/reports?sslmode=require", "schema": "tl", "passwordFile": "$W/pgpw"}}
JSON
"$BIN" serve --config "$W/node.json" >"$W/serve.out" 2>"$W/serve.err" &
SERVE_PID=$!
for _ in $(seq 1 100); do
    curl -s --max-time 2 "127.0.0.1:$HTTP/metrics" | grep -q '^tierline_mirror_connected 1' && break
    sleep 0.2
done
curl -s --max-time 2 "127.0.0.1:$HTTP/metrics" | grep -q '^tierline_mirror_connected 1' || { echo "the mirror did not connect" >&2; tail "$W/serve.err" >&2; exit 1; }

python3 - "$HTTP" "$TOKEN" "$SECONDS_RUN" "$CLIENTS" "$PG_BIN/psql" "$PG_DIR/data" "$PG_PORT" <<'PY'
import http.client, json, multiprocessing, statistics, subprocess, sys, threading, time
port, token, seconds, clients, psql, pghost, pgport = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:8]
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

def post(conn, n, tag):
    body = json.dumps({"channel": "email", "subject": f"{tag} {n}", "message": f"Message {n} of {tag}",
                       "customer": {"email": f"c{n % 500}@example.com"}})
    conn.request("POST", "/api/intake/tickets", body=body, headers=headers)
    answer = conn.getresponse()
    data = answer.read()
    return answer.status, data

def client(index, until, counts):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
    done = errors = n = 0
    while time.time() < until:
        n += 1
        try:
            status, _ = post(conn, n, f"load{index}")
            if status == 201: done += 1
            else: errors += 1
        except Exception:
            errors += 1
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
    counts.put((done, errors))

def in_postgres(ticket):
    out = subprocess.run([psql, "-X", "-At", "-h", pghost, "-p", pgport, "-U", "postgres", "-d", "reports",
                          "-c", f"SELECT count(*) FROM tl.ticket WHERE id = '{ticket}'"], capture_output=True, text=True)
    return out.stdout.strip() == "1"

def metrics():
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    return {l.split()[0]: float(l.split()[1]) for l in text.splitlines() if l.startswith("tierline_mirror_")}

start = time.time()
until = start + seconds
counts = multiprocessing.Queue()
workers = [multiprocessing.Process(target=client, args=(i, until, counts)) for i in range(clients)]
for w in workers: w.start()
lags, samples = [], []
def sampler():
    while time.time() < until + 30:
        try: samples.append(metrics())
        except Exception: pass
        time.sleep(1)
threading.Thread(target=sampler, daemon=True).start()
probe = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
n = 0
while time.time() < until:
    n += 1
    status, data = post(probe, n, "probe")
    answered = time.time()
    if status != 201: continue
    ticket = json.loads(data)["ticket"]["id"].lower()
    while time.time() - answered < 120 and not in_postgres(ticket): time.sleep(0.02)
    lags.append(time.time() - answered)
    time.sleep(max(0, 1 - (time.time() - answered)))
done = errors = 0
for w in workers:
    w.join()
for _ in workers:
    d, e = counts.get()
    done += d; errors += e
elapsed = time.time() - start
lags.sort()
def q(p): return lags[min(len(lags) - 1, int(p * len(lags)))]
print(f"intake: {done} tickets in {elapsed:.1f} s = {done / elapsed:,.0f}/s by {clients} clients ({errors} refused or failed)")
print(f"lag, 201 to row in PostgreSQL, {len(lags)} probes: median {q(0.5):.2f} s, p90 {q(0.9):.2f} s, max {lags[-1]:.2f} s")
behind = [s.get("tierline_mirror_behind_blocks", 0) for s in samples]
seconds_behind = [s.get("tierline_mirror_behind_seconds", 0) for s in samples]
facts = [s.get("tierline_mirror_behind_facts", 0) for s in samples]
print(f"/metrics each second: behind_blocks max {max(behind):.0f}, behind_seconds max {max(seconds_behind):.2f}, behind_facts max {max(facts):.0f}")
PY
