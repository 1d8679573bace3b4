#!/usr/bin/env bash
# End-to-end check of the outbox's sender: `tierline notify test`, `outbox send|list|retry` and
# `serve` against a real SMTP server and real webhook receivers on 127.0.0.1.
#
#   Tests/CLI/notify.sh [PATH/TO/tierline]      (default: .build/debug/tierline)
#
#   a. e-mail: a test notice reaches an aiosmtpd server that requires STARTTLS and AUTH (its
#      self-signed certificate, made here with openssl, trusted through smtp.caFile), with the right
#      envelope, To, Subject and Message-ID <KEY@tierline>.
#      The same over TLS from the first byte (security "tls"), and with AUTH LOGIN where PLAIN is not offered.
#   b. a server that offers no STARTTLS gets nothing: the delivery fails naming STARTTLS.
#      A relay whose certificate is not trusted (no caFile) gets nothing either.
#   c. a wrong password: the delivery fails naming AUTH.
#   d. webhooks: a delivery verifies at a receiver that checks the Standard Webhooks signature; one
#      signed with another secret is refused (401) and is dead at once with the status.
#      An intake integration's reply webhook: `intake token reply-url` prints the secret, the
#      integration's receiver verifies a delivery with it.
#   e. a webhook the settings do not name: dead, listed by `outbox list --state dead`, put back by
#      `outbox retry`, then sent.
#   f. kill -9 of `serve` mid-burst: 200 test notices to a receiver that fails every third request;
#      the node is killed by its pid while sending, restarted, and the outbox drains: every key
#      arrived at least once, none is dead; the number of repeats is printed. `status` and /metrics
#      show the outbox.
#   h. serve --log-level debug: the log names the services but holds no password, webhook key or
#      site key.
#   i. `outbox prune` deletes sent deliveries, and dead ones only with --dead.
#   g. measure (printed, not asserted): deliveries per second to a local webhook receiver, and of
#      e-mails to the local SMTP server.
#
# Every process runs in the background with its pid recorded; the EXIT trap kills exactly those
# pids. Every wait is a bounded loop. Needs python3 with aiosmtpd, openssl and coreutils `timeout`.
set -euo pipefail

source "$(dirname "$0")/lib.sh" "$@"

workspace notify
source "$(dirname "$0")/nodes.sh"
source "$(dirname "$0")/notify/servers.sh"

python3 -c 'import aiosmtpd' 2>/dev/null || { echo "FAIL: python3 has no aiosmtpd (pip install aiosmtpd, as .ci/run does)"; exit 1; }

S=$W/store
# A coordinator, so that it can publish the manager who reads its dashboard (step g).
must "init the store (north, a coordinator)" "$S" init --site north --role coordinator
must "north publishes a manager ops (the dashboard needs one signed in)" "$S" agent add ops --site north --role manager
must "north issues ops an API token" "$S" agent token ops --label notify-test
OPS_TOKEN=$(cat "$W/out")
# With an agent published, every ticket write must be recorded as an active agent.
export TIERLINE_ACTOR=ops

echo "== setup: a certificate, secrets, an SMTP server with STARTTLS and AUTH required, webhook receivers"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/smtp-key.pem" -out "$W/smtp-cert.pem" -days 1 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>"$W/openssl.log" \
    || { fail "openssl makes the SMTP server's certificate" "$(cat "$W/openssl.log")"; finish; }
printf 'correct horse battery staple\n' >"$W/smtp-password"
printf 'wrong\n' >"$W/wrong-password"
python3 -c 'import os, base64; print("whsec_" + base64.b64encode(os.urandom(32)).decode())' >"$W/hook.whsec"
python3 -c 'import os, base64; print("whsec_" + base64.b64encode(os.urandom(32)).decode())' >"$W/other.whsec"
chmod 600 "$W"/*.whsec "$W"/*password

helper smtp smtp_server.py --out "$W/mail.jsonl" --cert "$W/smtp-cert.pem" --key "$W/smtp-key.pem" \
    --user tierline --password-file "$W/smtp-password"
SMTP_PORT=$HELPER_PORT
helper smtp-tls smtp_server.py --out "$W/tls-mail.jsonl" --implicit-tls --cert "$W/smtp-cert.pem" --key "$W/smtp-key.pem" \
    --user tierline --password-file "$W/smtp-password"
TLS_PORT=$HELPER_PORT
helper smtp-login smtp_server.py --out "$W/login-mail.jsonl" --login-only --cert "$W/smtp-cert.pem" --key "$W/smtp-key.pem" \
    --user tierline --password-file "$W/smtp-password"
LOGIN_PORT=$HELPER_PORT
helper smtp-plain smtp_server.py --out "$W/plain-mail.jsonl" --no-starttls --user tierline --password-file "$W/smtp-password"
PLAIN_PORT=$HELPER_PORT
helper hook webhook_receiver.py --secret-file "$W/hook.whsec"
HOOK_PORT=$HELPER_PORT
helper burst webhook_receiver.py --secret-file "$W/hook.whsec" --fail-every 3 --delay-ms 20
BURST_PORT=$HELPER_PORT
helper fast webhook_receiver.py --secret-file "$W/hook.whsec"
FAST_PORT=$HELPER_PORT
pass "SMTP servers on $SMTP_PORT (STARTTLS+AUTH) and $PLAIN_PORT (no STARTTLS), receivers on $HOOK_PORT, $BURST_PORT, $FAST_PORT"

# config FILE SMTP_PORT PASSWORD_FILE WEBHOOKS_JSON [SECURITY]: a node.json with a notifications section.
config() {
    python3 - "$@" <<'PY'
import json, sys
path, port, password, hooks = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
security = sys.argv[5] if len(sys.argv) > 5 else "starttls"
json.dump({"notifications": {
    "smtp": {"host": "127.0.0.1", "port": port, "security": security, "username": "tierline", "passwordFile": password,
             "from": "Help desk <help@example.org>", "caFile": "smtp-cert.pem", "timeoutMillis": 5000},
    "webhooks": hooks, "maxAttempts": 8, "backoffMinMillis": 50, "backoffMaxMillis": 400, "pollMillis": 100}}, open(path, "w"))
PY
}
hook() { printf '{"name": "%s", "url": "http://127.0.0.1:%s/hook", "secretFile": "%s"}' "$1" "$2" "$3"; }
config "$W/node.json" "$SMTP_PORT" smtp-password "[$(hook hook "$HOOK_PORT" hook.whsec)]"
config "$W/plain.json" "$PLAIN_PORT" smtp-password "[]"
config "$W/tls.json" "$TLS_PORT" smtp-password "[]" tls
config "$W/login.json" "$LOGIN_PORT" smtp-password "[]"
config "$W/wrong.json" "$SMTP_PORT" wrong-password "[]"
config "$W/other-secret.json" "$SMTP_PORT" smtp-password "[$(hook hook "$HOOK_PORT" other.whsec)]"
config "$W/spare.json" "$SMTP_PORT" smtp-password "[$(hook hook "$HOOK_PORT" hook.whsec), $(hook spare "$HOOK_PORT" hook.whsec)]"
config "$W/burst.json" "$SMTP_PORT" smtp-password "[$(hook burst "$BURST_PORT" hook.whsec)]"
config "$W/fast.json" "$SMTP_PORT" smtp-password "[$(hook fast "$FAST_PORT" hook.whsec)]"

# enqueue NAME CONFIG ARGS...: `notify test --json`; the keys, one a line, in $W/NAME.keys.
enqueue() {
    local name=$1 config=$2
    shift 2
    must "$name: notify test $*" "$S" notify test --config "$config" "$@" --json
    python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["keys"]))' "$W/out" >"$W/$name.keys"
}
# entry KEY FIELD: a field of the outbox row with KEY (outbox list --json).
entry() {
    "$BIN" outbox list --json --store "$S" | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["key"] == sys.argv[1]]
print(rows[0][sys.argv[2]] if rows and rows[0][sys.argv[2]] is not None else "")' "$1" "$2"
}
stats() { python3 -c 'import json,sys,urllib.request; print(json.dumps(json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/stats", timeout=10))))' "$1"; }

echo "== a. e-mail over STARTTLS and AUTH"
for bad in 'x(y)@example.org' 'a"b@example.org' 'a;b@example.org' 'jörg@example.org'; do
    run "$S" notify test --config "$W/node.json" --email "$bad"
    check "notify test --email $bad is refused with exit 2 (the sender would refuse it), nothing queued" \
        bash -c '(( $1 == 2 )) && grep -q "not an address the sender takes" "$2" && [[ $3 == 0 ]]' _ "$RC" "$W/err" \
        "$("$BIN" outbox list --json --store "$S" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
done
enqueue mail "$W/node.json" --email anna@example.org
KEY=$(cat "$W/mail.keys")
must "outbox send delivers it" "$S" outbox send --config "$W/node.json" --json
check "the delivery is sent (outbox list)" test "$(entry "$KEY" state)" = sent
check "the SMTP server received it in TLS, authenticated, with the right envelope and headers" python3 - "$W/mail.jsonl" "$KEY" <<'PY'
import email, json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
assert len(records) == 1, f"{len(records)} messages"
r = records[0]
assert r["tls"] and r["authenticated"], r
assert r["mail_from"] == "help@example.org" and r["rcpt_tos"] == ["anna@example.org"], r
m = email.message_from_string(r["data"])
assert m["To"] == "anna@example.org", m["To"]
assert m["Subject"] == "Tierline test notice 1 of 1 from site north", m["Subject"]
assert m["Message-ID"] == f"<{sys.argv[2]}@tierline>", m["Message-ID"]
assert sys.argv[2] in m.get_payload(decode=True).decode(), "the body names the key"
PY

enqueue tls "$W/tls.json" --email dave@example.org
must "outbox send over implicit TLS (security tls)" "$S" outbox send --config "$W/tls.json"
check "the implicit-TLS server received it in TLS, authenticated" python3 -c '
import json, sys
r = [json.loads(line) for line in open(sys.argv[1])]
assert len(r) == 1 and r[0]["tls"] and r[0]["authenticated"] and r[0]["rcpt_tos"] == ["dave@example.org"], r' "$W/tls-mail.jsonl"

enqueue login "$W/login.json" --email frank@example.org
must "outbox send to a relay that offers only AUTH LOGIN" "$S" outbox send --config "$W/login.json"
check "the LOGIN-only server received it in TLS, authenticated" python3 -c '
import json, sys
r = [json.loads(line) for line in open(sys.argv[1])]
assert len(r) == 1 and r[0]["tls"] and r[0]["authenticated"] and r[0]["rcpt_tos"] == ["frank@example.org"], r' "$W/login-mail.jsonl"

echo "== b. a server without STARTTLS gets nothing"
enqueue plain "$W/plain.json" --email anna@example.org
must "outbox send (no STARTTLS) runs" "$S" outbox send --config "$W/plain.json"
ERR=$(entry "$(cat "$W/plain.keys")" lastError)
check "the delivery failed naming STARTTLS, and is not sent" bash -c '[[ $1 == *STARTTLS* && $2 == pending ]]' _ "$ERR" "$(entry "$(cat "$W/plain.keys")" state)"
echo "      lastError: $ERR"
check "the server without STARTTLS received no message" test ! -s "$W/plain-mail.jsonl"

echo "== b2. a certificate the node does not trust (no caFile: the system's CAs) gets nothing"
python3 -c 'import json,sys; c = json.load(open(sys.argv[1])); del c["notifications"]["smtp"]["caFile"]; json.dump(c, open(sys.argv[2], "w"))' "$W/node.json" "$W/untrusted.json"
enqueue untrusted "$W/untrusted.json" --email erin@example.org
must "outbox send (untrusted certificate) runs" "$S" outbox send --config "$W/untrusted.json"
ERR=$(entry "$(cat "$W/untrusted.keys")" lastError)
check "the delivery failed in the TLS handshake, naming the certificate" bash -c '[[ $1 == *"TLS handshake"* && $1 == *certificate* && $2 == pending ]]' _ "$ERR" "$(entry "$(cat "$W/untrusted.keys")" state)"
echo "      lastError: $ERR"
check "the server received nothing more" test "$(wc -l <"$W/mail.jsonl")" = 1

echo "== c. a wrong password"
enqueue wrong "$W/wrong.json" --email bob@example.org
must "outbox send (wrong password) runs" "$S" outbox send --config "$W/wrong.json"
ERR=$(entry "$(cat "$W/wrong.keys")" lastError)
check "the delivery failed naming AUTH" bash -c '[[ $1 == *AUTH* && $1 == *535* ]]' _ "$ERR"
echo "      lastError: $ERR"
run "$S" outbox retry --all-dead
"$BIN" outbox list --json --store "$S" >"$W/all.json"

echo "== d. a signed webhook"
enqueue hook "$W/node.json" --webhook hook
must "outbox send delivers it" "$S" outbox send --config "$W/node.json"
check "the receiver verified it, once" python3 -c '
import json, sys
s = json.loads(sys.argv[1]); key = open(sys.argv[2]).read().strip()
assert s["ids"] == {key: 1} and s["rejected"] == 0, s' "$(stats "$HOOK_PORT")" "$W/hook.keys"
enqueue forged "$W/other-secret.json" --webhook hook
must "outbox send with another secret runs" "$S" outbox send --config "$W/other-secret.json"
KEY=$(cat "$W/forged.keys")
check "the receiver refused the wrongly signed delivery (401), which is dead at once" python3 -c '
import json, sys
s = json.loads(sys.argv[1])
assert s["rejected"] == 1 and sys.argv[2] not in s["ids"], s
assert sys.argv[3] == "dead" and "HTTP 401" in sys.argv[4], sys.argv[3:]' "$(stats "$HOOK_PORT")" "$KEY" "$(entry "$KEY" state)" "$(entry "$KEY" lastError)"

echo "== d2. an intake integration's reply webhook"
helper reply webhook_receiver.py --secret-file "$W/reply.whsec"
REPLY_PORT=$HELPER_PORT
must "intake token add chat" "$S" intake token add chat
run "$S" notify test --integration chat
check "notify test --integration without a reply webhook exits 2 naming reply-url" bash -c '(( $1 == 2 )) && grep -q "intake token reply-url chat URL" "$2"' _ "$RC" "$W/err"
must "intake token reply-url chat URL" "$S" intake token reply-url chat "http://127.0.0.1:$REPLY_PORT/replies" --json
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret"])' "$W/out" >"$W/reply.whsec"
check "the reply webhook's secret is a whsec_ secret" grep -q '^whsec_' "$W/reply.whsec"
enqueue reply "$W/node.json" --integration chat
must "outbox send delivers it" "$S" outbox send --config "$W/node.json"
check "the integration's receiver verified it with the secret reply-url printed" python3 -c '
import json, sys
s = json.loads(sys.argv[1]); key = open(sys.argv[2]).read().strip()
assert s["ids"] == {key: 1} and s["rejected"] == 0, s' "$(stats "$REPLY_PORT")" "$W/reply.keys"

echo "== e. a webhook the settings do not name"
enqueue spare "$W/spare.json" --webhook spare
KEY=$(cat "$W/spare.keys")
must "outbox send without the webhook in its settings runs" "$S" outbox send --config "$W/node.json"
must "outbox list --state dead" "$S" outbox list --state dead
check "outbox list --state dead shows it with the setting to add" bash -c 'grep -q "webhook:spare" "$1" && grep -q "notifications.webhooks" "$1"' _ "$W/out"
ID=$(entry "$KEY" id)
must "outbox retry $ID" "$S" outbox retry "$ID"
check "it is pending again" test "$(entry "$KEY" state)" = pending
run "$S" outbox retry 999999
check "outbox retry of an unknown id fails, naming it" bash -c '(( $1 != 0 )) && grep -q 999999 "$2"' _ "$RC" "$W/err"
must "outbox send with the webhook in its settings" "$S" outbox send --config "$W/spare.json"
check "then it is sent" test "$(entry "$KEY" state)" = sent

echo "== f. kill -9 of serve mid-burst, restart: nothing lost"
HTTP_PORT=$(free_port)
enqueue burst "$W/burst.json" --webhook burst --count 200
bg serve-1 "$BIN" serve --config "$W/burst.json" --http "127.0.0.1:$HTTP_PORT" --store "$S"
SERVE=$BGPID
taken() { stats "$BURST_PORT" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ids"]))'; }
deadline=$(($(now_ms) + 60000))
while (($(taken) < 40)) && alive "$SERVE" && (($(now_ms) < deadline)); do sleep 0.05; done
kill -9 "$SERVE" 2>/dev/null || true
reap "$SERVE" 10
MID=$(taken)
if ((MID >= 40 && MID < 200)); then
    pass "serve killed (SIGKILL) mid-burst, after $MID of 200 keys arrived"
else
    fail "serve killed (SIGKILL) mid-burst" "$MID of 200 keys had arrived; $(tail -c 600 "$W/serve-1.log")"
fi
bg serve-2 "$BIN" serve --config "$W/burst.json" --http "127.0.0.1:$HTTP_PORT" --store "$S"
SERVE=$BGPID
deadline=$(($(now_ms) + 120000))
pending() { "$BIN" status --json --store "$S" | python3 -c 'import json,sys; print(json.load(sys.stdin)["outbox"]["pending"])'; }
while (($(pending) > 0)) && alive "$SERVE" && (($(now_ms) < deadline)); do sleep 0.2; done
check "the restarted node drained the outbox" test "$(pending)" = 0
check "every one of the 200 keys arrived at least once, none is dead" python3 - "$(stats "$BURST_PORT")" "$W/burst.keys" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); keys = open(sys.argv[2]).read().split()
missing = [k for k in keys if k not in s["ids"]]
assert len(keys) == 200 and not missing, f"{len(missing)} keys never arrived: {missing[:5]}"
PY
python3 - "$(stats "$BURST_PORT")" "$W/burst.keys" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); keys = open(sys.argv[2]).read().split()
print(f"      repeats: {sum(max(s['ids'].get(k, 0) - 1, 0) for k in keys)} deliveries of the 200 keys arrived a second time (sent, not yet marked, at the kill); {s['failed']} requests answered 500 by design")
PY
check "every one of the burst's deliveries is marked sent, none dead" python3 -c '
import json, subprocess, sys
rows = json.loads(subprocess.run([sys.argv[1], "outbox", "list", "--json", "--limit", "1000", "--store", sys.argv[2]], capture_output=True, check=True).stdout)
keys = set(open(sys.argv[3]).read().split())
states = [r["state"] for r in rows if r["key"] in keys]
assert len(states) == 200 and set(states) == {"sent"}, {s: states.count(s) for s in set(states)}' "$BIN" "$S" "$W/burst.keys"
enqueue live "$W/burst.json" --webhook burst
deadline=$(($(now_ms) + 30000))
arrived() { stats "$BURST_PORT" | python3 -c 'import json,sys; print(1 if sys.argv[1] in json.load(sys.stdin)["ids"] else 0)' "$(cat "$W/live.keys")"; }
until (($(arrived) == 1)) || (($(now_ms) >= deadline)); do sleep 0.05; done
check "a notice the CLI writes while serve runs is sent by serve (picked up within pollMillis)" test "$(arrived)" = 1
# The receiver counts a delivery before the node marks it sent.
while (($(pending) > 0)) && (($(now_ms) < deadline)); do sleep 0.05; done
run "$S" status
check "status shows the outbox (0 pending, the one dead delivery of d.)" grep -q "^outbox: 0 pending, 1 dead" "$W/out"
METRICS=$(python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=10).read().decode())' "$HTTP_PORT" 2>&1 || true)
check "/metrics has tierline_outbox_deliveries by state" bash -c 'grep -q "^tierline_outbox_deliveries{state=\"pending\"} 0" <<<"$1" && grep -q "^tierline_outbox_deliveries{state=\"dead\"} 1" <<<"$1" && grep -q "^tierline_outbox_deliveries{state=\"sent\"} [1-9]" <<<"$1"' _ "$METRICS"
PAGE=$(python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/", headers={"Authorization": "Bearer " + sys.argv[2]}), timeout=30).read().decode())' "$HTTP_PORT" "$OPS_TOKEN" 2>&1 || true)
check "the dashboard page shows the dead delivery" bash -c 'grep -q "id=\"outbox-dead\"><strong>1 dead delivery</strong>" <<<"$1"' _ "$PAGE"
kill -TERM "$SERVE"
reap "$SERVE" 30
check "serve stops on SIGTERM with exit 0" test "$RC" = 0

echo "== h. serve --log-level debug prints no secret (ServiceLifecycle logs every service it starts)"
HTTP_PORT=$(free_port)
bg serve-debug "$BIN" serve --config "$W/node.json" --http "127.0.0.1:$HTTP_PORT" --store "$S" --log-level debug
SERVE=$BGPID
deadline=$(($(now_ms) + 30000))
until grep -q "outbox: sending" "$W/serve-debug.log" || ! alive "$SERVE" || (($(now_ms) >= deadline)); do sleep 0.05; done
kill -TERM "$SERVE" 2>/dev/null || true
reap "$SERVE" 30
check "the debug log names the services it starts" grep -q "NotificationDispatcher(smtp 127.0.0.1" "$W/serve-debug.log"
check "the debug log holds neither the SMTP password, the webhook key nor the site key (hex, base64 or bytes)" python3 - "$W/serve-debug.log" "$W/smtp-password" "$W/hook.whsec" "$S/site.key" <<'PY'
import base64, sys
log = open(sys.argv[1]).read()
password = open(sys.argv[2]).read().strip()
secret = open(sys.argv[3]).read().strip()
hook = base64.b64decode(secret[len("whsec_"):])
site = bytes.fromhex(open(sys.argv[4]).read().strip())
def forms(b): return [b.hex(), str(list(b))[:-1], ", ".join(map(str, b[:8]))]
for name, texts in [("the SMTP password", [password]), ("the webhook secret", [secret, secret[6:]] + forms(hook)), ("the site key", forms(site))]:
    for text in texts:
        assert text not in log, f"{name} is in the log ({len(log)} bytes)"
PY

echo "== g. measure: deliveries per second to a local receiver"
enqueue fast "$W/fast.json" --webhook fast --count 500
must "outbox send 500 webhooks (until none is pending: a delivery that timed out on a busy machine is retried)" "$S" outbox send --config "$W/fast.json" --until-empty --json
python3 - "$W/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"      MEASURE: {r['sent']} webhooks in {r['seconds']:.2f} s = {r['sent'] / max(r['seconds'], 1e-9):.0f} deliveries/s (tierline outbox send to one local Python receiver: at most 2 in flight per destination; debug build unless given a release binary)")
PY
check "all 500 were sent" python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); assert r["sent"] == 500, r' "$W/out"
enqueue mails "$W/node.json" --email carol@example.org --count 50
must "outbox send 50 e-mails (until none is pending)" "$S" outbox send --config "$W/node.json" --until-empty --json
python3 - "$W/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"      MEASURE: {r['sent']} e-mails in {r['seconds']:.2f} s = {r['sent'] / max(r['seconds'], 1e-9):.0f} deliveries/s (one SMTP session each: STARTTLS, AUTH, to a local aiosmtpd)")
PY
check "all 50 e-mails were sent" python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); assert r["sent"] == 50, r' "$W/out"

echo "== i. outbox prune: sent deliveries go, dead ones stay unless --dead"
must "outbox prune --older-than-days 0" "$S" outbox prune --older-than-days 0 --json
check "it deleted the sent deliveries, kept the dead one" python3 - "$W/out" "$BIN" "$S" <<'PY'
import json, subprocess, sys
r = json.load(open(sys.argv[1]))
rows = json.loads(subprocess.run([sys.argv[2], "outbox", "list", "--json", "--limit", "5000", "--store", sys.argv[3]], capture_output=True, check=True).stdout)
states = [row["state"] for row in rows]
assert r["deleted"] >= 700 and "sent" not in states and states.count("dead") == 1, (r, {s: states.count(s) for s in set(states)})
PY
must "outbox prune --older-than-days 0 --dead" "$S" outbox prune --older-than-days 0 --dead --json
check "with --dead it deleted the dead one too" python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); assert r["deleted"] == 1, r' "$W/out"

finish
