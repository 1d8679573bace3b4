set -uo pipefail
source /work/wt/review-m/Tests/CLI/pg-cluster.sh
W=$(mktemp -d /tmp/tierline-lag.XXXXXX)
T=/work/wt/review-m/.build/debug/tierline
SP=""
trap '[[ -n $SP ]] && kill -9 $SP 2>/dev/null; pg_cluster_stop; rm -rf $W' EXIT
$T init --store $W/g --site hq >/dev/null 2>&1
pg_cluster_start >/dev/null 2>&1 || { echo "cluster failed"; exit 1; }
pg_cluster_add_mirror_role pw reports tl >/dev/null
echo pw > $W/gpw
cat > $W/g.json <<J
{"store": "$W/g", "listen": "127.0.0.1:0", "http": "127.0.0.1:57422", "mirror": {"postgres": "postgres://mirror@127.0.0.1:$PG_PORT/reports?sslmode=require", "schema": "tl", "passwordFile": "$W/gpw"}}
J
$T serve --config $W/g.json >$W/gs.out 2>$W/gs.err & SP=$!
sleep 6
echo "before outage: $(curl -s 127.0.0.1:57422/metrics | grep '^tierline_mirror' | tr '\n' ' ')"
pg_cluster_down
for i in $(seq 1 20); do $T ticket create --store $W/g --subject "during outage $i" >/dev/null 2>&1; done
sleep 25
echo "20 blocks + 25 s into the outage: $(curl -s 127.0.0.1:57422/metrics | grep '^tierline_mirror' | tr '\n' ' ')"
$T status --store $W/g 2>&1 | grep -i "mirror"
$T status --store $W/g --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["mirror"])'
kill -TERM $SP; wait $SP; SP=""
B=$($T status --store $W/g --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["mirror"]["behindBlocks"])')
if [[ $B -ge 20 ]]; then echo "PASS: status shows the outage's backlog ($B)"; else echo "FAIL: 20 blocks unmirrored during a PostgreSQL outage, status/metrics say behindBlocks=$B"; exit 1; fi
