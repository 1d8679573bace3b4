#!/usr/bin/env bash
# Checks the real intake API against Docs/intake-openapi.yaml with schemathesis (property-based: the
# schema's examples, then boundary values, then random valid and invalid requests).
#
#   Tests/CLI/intake-schemathesis.sh [PATH/TO/tierline]      (default: .build/debug/tierline)
#
# Makes a store (site north), an all-channel API token, and serves the store with
# `tierline serve --http 127.0.0.1:0` (the port is read from the log line
# `address=http://127.0.0.1:PORT/ ... dashboard listening`). Before schemathesis runs, it seeds what
# the schema's examples name, so their success and redelivery paths are reached, not only 404s:
#   - NORTH-1, opened by POSTing the `email` example of createTicket itself: the examples phase sends
#     it again and must get 200 with `duplicate: true`; the appendMessage examples reach NORTH-1 by
#     number, by thread id and by the `[NORTH-1]` in a subject;
#   - NORTH-2, solved with `tierline ticket update --status solved --json`: its survey token goes into
#     the answerSurvey example of a copy of the schema (the only change to it), so that example gets
#     201 (and any later answer with it 409); and a knowledge article written from it with
#     `tierline kb add`, so that searches answer results to check, not only empty lists.
# Then `schemathesis run` with every check of schemathesis 4.32.5 except unsupported_method (see
# below), EXAMPLES generated cases per operation and each phase (examples, coverage, fuzzing,
# stateful), bounded by RUN_SECONDS in all. Afterwards the node must still run, NORTH-2 must hold the
# example's CSAT answer and NORTH-1 the example messages. The node is stopped by its pid.
#
# Needs python3 and schemathesis 4.32.5 (`pip install schemathesis==4.32.5`, as .ci/run does). Prints
# PASS/FAIL lines and schemathesis' report; exits 1 if any check or schemathesis failed. Environment:
# SCHEMATHESIS_EXAMPLES (default 40), SCHEMATHESIS_SEED (default: random; the report prints the seed).
set -euo pipefail

source "$(dirname "$0")/lib.sh" "$@"

workspace intake-schemathesis
source "$CLI_DIR/schemathesis-lib.sh"
SPEC=$CLI_DIR/../../Docs/intake-openapi.yaml
STORE=$W/north
require_schemathesis "$SPEC"

must "init a store (site north)" "$STORE" init --site north --role site
must "intake token add schemathesis --json" "$STORE" intake token add schemathesis --json
TOKEN=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$W/out" 2>/dev/null || true)
if [[ $TOKEN =~ ^tl_[A-Za-z0-9_-]{43}$ ]]; then
    pass "the token is tl_ and 43 base64url characters"
else
    fail "the token is tl_ and 43 base64url characters" "$(last_output)"
    finish
fi

serve_http "$STORE"

# Seeds NORTH-1 with the createTicket `email` example and NORTH-2 (chat); prints nothing but errors.
if py "$BASE" "$TOKEN" "$SPEC" >"$W/seed.out" 2>&1 <<'PY'; then
import json, sys, urllib.error, urllib.request
import yaml  # PyYAML comes with schemathesis

base, token, spec = sys.argv[1:4]
doc = yaml.safe_load(open(spec))
examples = doc["paths"]["/api/intake/tickets"]["post"]["requestBody"]["content"]["application/json"]["examples"]

def post(path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")

for path, body, want in [
    ("/api/intake/tickets", examples["email"]["value"], "NORTH-1"),
    ("/api/intake/tickets", {"channel": "chat", "subject": "Seeded for the survey example", "message": "Please close this.",
                             "customer": {"id": "crm-seed-2"}, "externalMessageId": "seed-chat-2"}, "NORTH-2"),
]:
    status, answer = post(path, body)
    number = answer.get("ticket", {}).get("displayNumber") if isinstance(answer, dict) else None
    if status != 201 or number != want:
        sys.exit(f"POST {path} ({body['channel']}): want 201 opening {want}, got {status}: {str(answer)[:600]}")
PY
    pass "seeded NORTH-1 (the createTicket email example) and NORTH-2 over HTTP (201 each)"
else
    fail "seeded NORTH-1 (the createTicket email example) and NORTH-2 over HTTP (201 each)" "$(cat "$W/seed.out")"
    finish
fi

must "ticket update NORTH-2 --status solved --json issues a survey token" "$STORE" ticket update NORTH-2 --status solved --json
cp "$W/out" "$W/solved.json"
# A knowledge article, so that searches have results to check against the schema.
must "kb add NORTH-2 (an article for searchKnowledge to find)" "$STORE" kb add NORTH-2 --title "Refund a card charged twice" \
    --summary "One invoice was charged twice; the second charge is refunded." \
    --root-cause "The payment gateway retried a capture that had timed out." \
    --steps "Find the second capture in the gateway, refund it, and send the customer the refund id."
if py "$BASE" "$TOKEN" >"$W/kb.out" 2>&1 <<'PY'; then
import json, sys, urllib.request

base, token = sys.argv[1:3]
request = urllib.request.Request(base + "/api/kb/search?q=refund", headers={"Authorization": "Bearer " + token})
with urllib.request.urlopen(request, timeout=60) as r:
    answer = json.loads(r.read())
if len(answer.get("results", [])) != 1:
    sys.exit(f"want 1 result, got: {json.dumps(answer)[:600]}")
PY
    pass "GET /api/kb/search?q=refund finds the article"
else
    fail "GET /api/kb/search?q=refund finds the article" "$(cat "$W/kb.out")"
fi
# The schema's copy whose answerSurvey example carries that token (written as JSON; YAML is a superset).
if py "$W/solved.json" "$SPEC" "$W/intake-openapi.json" >"$W/spec.out" 2>&1 <<'PY'; then
import json, sys
import yaml

updated, spec, copy = sys.argv[1:4]
token = json.load(open(updated)).get("surveyToken")
if not isinstance(token, str) or not token:
    sys.exit(f"no surveyToken in the update's JSON: {open(updated).read()[:600]}")
doc = yaml.safe_load(open(spec))
example = doc["paths"]["/api/intake/csat"]["post"]["requestBody"]["content"]["application/json"]["examples"]["happy"]["value"]
example["token"] = token
example["score"] = 5
json.dump(doc, open(copy, "w"), indent=1)
PY
    pass "a copy of the schema carries NORTH-2's survey token in the answerSurvey example"
else
    fail "a copy of the schema carries NORTH-2's survey token in the answerSurvey example" "$(cat "$W/spec.out")"
    finish
fi

# Every check of schemathesis 4.32.5 except unsupported_method (schemathesis-lib.sh says why).
run_schemathesis "the 5 operations" "$W/intake-openapi.json" "$TOKEN"
check_node_runs

# The seeded paths were reached: the survey example answered NORTH-2, the message examples reached NORTH-1.
run "$STORE" ticket show NORTH-2 --json
check "the answerSurvey example recorded NORTH-2's answer (customFields csat_score 5)" \
    python3 -c '
import json, sys
fields = json.load(open(sys.argv[1])).get("customFields") or {}
sys.exit(0 if fields.get("csat_score") == "5" else f"customFields: {fields}")' "$W/out"
run "$STORE" ticket show NORTH-1 --json
check "the appendMessage examples reached NORTH-1 by number, by thread and by subject" \
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
bodies = [e.get("body") for e in d.get("events", []) if e.get("kind") == "customer_message"]
want = ["The second charge is still on my statement this morning.", "Here is the bank statement you asked for.", "Any news on the refund?"]
missing = [w for w in want if w not in bodies]
sys.exit(0 if not missing else f"missing {missing}; customer messages: {bodies}")' "$W/out"

stop_server
check_node_stopped
finish
