#!/usr/bin/env bash
# Checks the real workspace ticket API against Docs/workspace-openapi.yaml with schemathesis
# (property-based: the schema's examples, then boundary values, then random valid and invalid
# requests), signed in with an agent's API token.
#
#   Tests/CLI/workspace-schemathesis.sh [PATH/TO/tierline]      (default: .build/debug/tierline)
#
# Makes a coordinator store (site north) with south in its roster, and publishes three agents: maria
# (manager, tier1 and tier2 at north, so every operation is hers to do), ana (agent, tier1 at north)
# and sol (tier2 at south, a site to escalate to). Issues maria an API token with `tierline agent
# token maria --json`, opens NORTH-1 (tier1) and NORTH-3, solves NORTH-2 and writes a knowledge
# article from it (`kb add`), and serves the store with `tierline serve --http 127.0.0.1:0`.
#
# schemathesis runs on a copy of the schema that differs in what only this node's data decides:
#   - the names the agent directory must know are narrowed to the ones published here (`assignee`
#     and `group` of updateFields, `group` of transfer, `to` of escalate): the API refuses any other
#     with 400 by design, which schemathesis would read as valid data refused;
#   - the linkArticle example names the article written from NORTH-2, so linking succeeds.
# The path parameter's example is NORTH-1, so the examples phase reaches a real ticket.
#
# Every operation is checked: the two reads (GET /api/tickets, GET /api/tickets/{ref}) and the 13
# ticket actions.
#
# Then `schemathesis run` with every check of schemathesis 4.32.5 except unsupported_method (see
# Tests/CLI/schemathesis-lib.sh), EXAMPLES generated cases per operation and each phase, bounded by
# RUN_SECONDS in all. Afterwards the node must still run and NORTH-1 must hold the reply and note
# examples, written as maria. The node is stopped by its pid.
#
# Needs python3 and schemathesis 4.32.5 (`pip install schemathesis==4.32.5`, as .ci/run does). Prints
# PASS/FAIL lines and schemathesis' report; exits 1 if any check or schemathesis failed. Environment:
# SCHEMATHESIS_EXAMPLES (default 40), SCHEMATHESIS_SEED (default: random; the report prints the seed).
set -euo pipefail

source "$(dirname "$0")/lib.sh" "$@"


workspace workspace-schemathesis
source "$CLI_DIR/schemathesis-lib.sh"
SPEC=$CLI_DIR/../../Docs/workspace-openapi.yaml
STORE=$W/north
require_schemathesis "$SPEC"

must "init a store (site north, the coordinator)" "$STORE" init --site north --role coordinator
must "init a store (site south)" "$W/south" init --site south --role site
admit "$STORE" "$W/south"   # south in north's roster, so that an agent may work there
must "agent add maria (manager, tier1 and tier2 at north)" "$STORE" agent add maria --site north --group tier1 --group tier2 --role manager --actor root
must "agent add ana (agent, tier1 at north)" "$STORE" agent add ana --site north --group tier1 --actor root
must "agent add sol (tier2 at south)" "$STORE" agent add sol --site south --group tier2 --actor root
must "agent token maria --json" "$STORE" agent token maria --label schemathesis --json
TOKEN=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$W/out" 2>/dev/null || true)
if [[ $TOKEN =~ ^tla_[A-Za-z0-9_-]{43}$ ]]; then
    pass "the token is tla_ and 43 base64url characters"
else
    fail "the token is tla_ and 43 base64url characters" "$(last_output)"
    finish
fi

must "ticket create NORTH-1 (tier1)" "$STORE" ticket create --subject "Invoice 2291 charged twice" --group tier1 --actor maria --json
must "ticket create NORTH-2" "$STORE" ticket create --subject "Refund for a cancelled subscription" --group tier1 --actor maria --json
must "ticket create NORTH-3" "$STORE" ticket create --subject "Cannot log in after password reset" --actor maria --json
must "ticket update NORTH-2 --status solved" "$STORE" ticket update NORTH-2 --status solved --actor maria
must "kb add NORTH-2 (an article for linkArticle's example)" "$STORE" kb add NORTH-2 --title "Refund a card charged twice" \
    --summary "One invoice was charged twice; the second charge is refunded." \
    --root-cause "The payment gateway retried a capture that had timed out." \
    --steps "Find the second capture in the gateway, refund it, and send the customer the refund id." --actor maria --json
ARTICLE=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ref"])' "$W/out" 2>/dev/null || true)
if [[ $ARTICLE =~ ^KB-[0-9a-f]{8}$ ]]; then
    pass "kb add wrote $ARTICLE"
else
    fail "kb add --json gives the article's ref" "$(last_output)"
    finish
fi

# The schema's copy (written as JSON; YAML is a superset): directory names narrowed, the article example real.
if py "$SPEC" "$W/workspace-openapi.json" "$ARTICLE" >"$W/spec.out" 2>&1 <<'PY'; then
import json, sys
import yaml  # PyYAML comes with schemathesis

spec, copy, article = sys.argv[1:4]
doc = yaml.safe_load(open(spec))
schemas = doc["components"]["schemas"]
def names(values, description):
    return {"type": "string", "enum": values, "description": description}
fields = schemas["FieldChanges"]["properties"]
fields["assignee"] = names(["maria", "ana", ""], "an agent of this node's directory, or empty")
fields["group"] = names(["tier1", "tier2", ""], "a group of this node's directory at north, or empty")
schemas["Transfer"]["properties"]["group"] = names(["tier1", "tier2"], "a group of this node's directory at north")
schemas["Escalation"]["properties"]["to"] = names(["tier2@north", "tier2@south"], "a group of this node's directory at a site")
link = doc["paths"]["/api/tickets/{ref}/articles"]["post"]["requestBody"]["content"]["application/json"]["examples"]["link"]["value"]
link["article"] = article
json.dump(doc, open(copy, "w"), indent=1)
PY
    pass "a copy of the schema names this node's directory and article $ARTICLE"
else
    fail "a copy of the schema names this node's directory and article $ARTICLE" "$(cat "$W/spec.out")"
    finish
fi

serve_http "$STORE"

# Every check of schemathesis 4.32.5 except unsupported_method (schemathesis-lib.sh says why).
run_schemathesis "the ticket API's reads and 13 actions" "$W/workspace-openapi.json" "$TOKEN"
check_node_runs

# The examples reached NORTH-1, written as the token's agent.
run "$STORE" ticket show NORTH-1 --json
check "the reply and note examples are on NORTH-1, by maria" \
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
want = {("agent_reply", "The second charge is refunded; you will see it on your statement within five days."),
        ("internal_note", "Gateway shows two captures of the same invoice; refunded the second.")}
found = {(e.get("kind"), e.get("body")) for e in d.get("events", []) if e.get("actor") == "maria"}
missing = want - found
sys.exit(0 if not missing else f"missing {missing}")' "$W/out"

stop_server
check_node_stopped
finish
